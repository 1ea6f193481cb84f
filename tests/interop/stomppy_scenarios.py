#!/usr/bin/python3
"""Interop scenarios driven by stomp.py (Debian package python3-stomp) over plain TCP.

Run with the SYSTEM interpreter (python3-stomp is installed for it, not for pyenv's python3):

    /usr/bin/python3 stomppy_scenarios.py --host 127.0.0.1 --port PORT --scenario NAME [--prefix UNIQUE]
        [--login USER] [--passcode PASS] [--vhost HOST] [--timeout SECONDS] [--verbose]

NAME: connect | pubsub | queue | receipt | client-ack | transaction | binary | large | heartbeat | all

Output contract: exactly one JSON line on stdout,
    {"ok": true,  "scenario": NAME, ...}                exit code 0
    {"ok": false, "scenario": NAME, "error": "..."}     exit code 1   (2 for bad usage)
Diagnostics go to stderr. Each scenario has a hard timeout (default 15 s); every connection is
always closed, and a watchdog ends the process if anything still hangs.

Defaults: login/passcode guest/guest, vhost "/" (sent as the CONNECT `host` header; RabbitMQ maps
it to the virtual host, and stomp.py would otherwise send the TCP host name, e.g. 127.0.0.1).
"""

import argparse
import json
import os
import queue
import secrets
import sys
import threading
import time

try:
    import stomp
    from stomp.exception import StompException
except ImportError as e:  # pragma: no cover
    print(json.dumps({"ok": False, "scenario": None,
                      "error": "stomp.py not importable (%s); apt-get install -y python3-stomp and run "
                               "with /usr/bin/python3" % e}))
    sys.exit(1)

SCENARIOS = ["connect", "pubsub", "queue", "receipt", "client-ack", "transaction", "binary", "large",
             "heartbeat"]


class ScenarioError(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise ScenarioError(msg)


def describe(frame):
    if frame is None:
        return "(none)"
    body = frame.body
    if isinstance(body, (bytes, bytearray)):
        shown = repr(bytes(body[:60])) + ("... (%d bytes)" % len(body) if len(body) > 60 else "")
    else:
        shown = repr(body[:60])
    return "headers=%s body=%s" % (json.dumps(frame.headers), shown)


class Collector(stomp.ConnectionListener):
    """Routes frames from stomp.py's receiver thread to the Session."""

    def __init__(self, session):
        self.s = session

    def on_connected(self, frame):
        self.s.connected_frame = frame
        self.s.connected_event.set()

    def on_message(self, frame):
        sub = frame.headers.get("subscription")
        inbox = self.s.inboxes.get(sub)
        if inbox is None:
            self.s.fail("MESSAGE for unknown subscription %r: %s" % (sub, describe(frame)))
        else:
            inbox.put(frame)

    def on_receipt(self, frame):
        rid = frame.headers.get("receipt-id")
        with self.s.lock:
            self.s.receipts[rid] = frame
            ev = self.s.receipt_events.get(rid)
        if ev:
            ev.set()

    def on_error(self, frame):
        body = frame.body.decode("utf-8", "replace") if isinstance(frame.body, bytes) else frame.body
        self.s.fail("ERROR frame from broker: message=%r body=%r" % (frame.headers.get("message", ""), body))

    def on_disconnected(self):
        if not self.s.closing:
            self.s.fail("connection closed unexpectedly")

    def on_heartbeat(self):
        self.s.heartbeats_received += 1

    def on_heartbeat_timeout(self):
        if not self.s.closing:
            self.s.heartbeat_lost = True
            self.s.fail("stomp.py reports the broker's heart-beats timed out")


class Session:
    """One stomp.py Connection12 (one TCP connection / STOMP session)."""

    def __init__(self, args, name, deadline, heartbeats=(0, 0)):
        self.args = args
        self.name = name
        self.deadline = deadline
        self.closing = False
        self.error = None
        self.lock = threading.Lock()
        self.inboxes = {}
        self.receipts = {}
        self.receipt_events = {}
        self.connected_event = threading.Event()
        self.connected_frame = None
        self.heartbeats_received = 0
        self.heartbeat_lost = False
        self.conn = stomp.Connection12(
            [(args.host, args.port)],
            heartbeats=heartbeats,
            auto_decode=False,            # bodies stay bytes: needed for the binary scenario
            vhost=args.vhost,
            timeout=5,
            reconnect_attempts_max=1,
            try_loopback_connect=False,
            heart_beat_receive_scale=2.0,
        )
        self.conn.set_listener("collector", Collector(self))
        self._sub_seq = 0

    # -- plumbing ---------------------------------------------------------------------------------
    def fail(self, msg):
        if self.error is None:
            self.error = "[%s] %s" % (self.name, msg)

    def raise_if_failed(self):
        if self.error is not None:
            raise ScenarioError(self.error)

    def remaining(self, limit):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ScenarioError("[%s] hard timeout: scenario ran out of time" % self.name)
        return min(limit, left)

    def timed_out(self, waited, limit, what):
        why = "" if waited >= limit else " (scenario hard timeout reached)"
        return ScenarioError("[%s] timed out after %.1f s waiting for %s%s" % (self.name, waited, what, why))

    def wait_event(self, ev, limit, what):
        waited = self.remaining(limit)
        end = time.monotonic() + waited
        while True:
            self.raise_if_failed()
            if ev.wait(0.05):
                self.raise_if_failed()
                return
            if time.monotonic() >= end:
                raise self.timed_out(waited, limit, what)

    def open(self):
        try:
            self.conn.connect(self.args.login, self.args.passcode, wait=False)
        except StompException as e:
            raise ScenarioError("[%s] could not connect to %s:%s: %r" % (self.name, self.args.host, self.args.port, e))
        except OSError as e:
            raise ScenarioError("[%s] could not connect to %s:%s: %s" % (self.name, self.args.host, self.args.port, e))
        self.wait_event(self.connected_event, 5, "CONNECTED")
        return self.connected_frame

    def close(self):
        self.closing = True
        try:
            if self.conn.is_connected():
                rid = self.receipt_id("disconnect")
                # DISCONNECT with receipt: stomp.py waits for it and then closes the socket
                t = threading.Thread(target=self._disconnect, args=(rid,), daemon=True)
                t.start()
                t.join(3)
        except Exception:
            pass
        try:
            self.conn.transport.stop()
        except Exception:
            pass

    def _disconnect(self, rid):
        try:
            self.conn.disconnect(receipt=rid)
        except Exception:
            pass

    def receipt_id(self, tag):
        return "%s-%s-%s" % (self.args.prefix, tag, secrets.token_hex(3))

    def expect_receipt(self, rid):
        with self.lock:
            ev = self.receipt_events.setdefault(rid, threading.Event())
            if rid in self.receipts:
                ev.set()
        return ev

    def await_receipt(self, rid, what, limit=5):
        ev = self.expect_receipt(rid)
        self.wait_event(ev, limit, "RECEIPT for %s" % what)
        frame = self.receipts[rid]
        check(frame.headers.get("receipt-id") == rid, "receipt-id %r != %r" % (frame.headers.get("receipt-id"), rid))
        return frame

    def subscribe(self, destination, ack="auto", headers=None):
        """SUBSCRIBE and wait for its RECEIPT, so that later sends cannot race the subscription."""
        self._sub_seq += 1
        sub_id = "%s-sub-%d" % (self.name.replace("/", "-"), self._sub_seq)
        inbox = Inbox(self, sub_id, destination)
        self.inboxes[sub_id] = inbox
        rid = self.receipt_id("sub")
        self.expect_receipt(rid)
        self.conn.subscribe(destination, sub_id, ack=ack, headers=dict(headers or {}, receipt=rid))
        self.await_receipt(rid, "SUBSCRIBE %s" % destination)
        return inbox

    def unsubscribe(self, inbox):
        rid = self.receipt_id("unsub")
        self.expect_receipt(rid)
        self.conn.unsubscribe(inbox.sub_id, headers={"receipt": rid})
        self.await_receipt(rid, "UNSUBSCRIBE %s" % inbox.destination)
        self.inboxes.pop(inbox.sub_id, None)

    def send(self, destination, body, headers=None, receipt=False, what="SEND", **kw):
        headers = dict(headers or {})
        rid = None
        if receipt:
            rid = self.receipt_id("send")
            self.expect_receipt(rid)
            headers["receipt"] = rid
        self.raise_if_failed()
        self.conn.send(destination, body, headers=headers, **kw)
        if rid:
            return self.await_receipt(rid, what)
        return None


class Inbox:
    def __init__(self, session, sub_id, destination):
        self.s = session
        self.sub_id = sub_id
        self.destination = destination
        self.q = queue.Queue()

    def put(self, frame):
        self.q.put(frame)

    def next(self, what, limit=5):
        waited = self.s.remaining(limit)
        end = time.monotonic() + waited
        while True:
            self.s.raise_if_failed()
            try:
                return self.q.get(timeout=0.05)
            except queue.Empty:
                pass
            if time.monotonic() >= end:
                raise self.s.timed_out(waited, limit, "%s on %s" % (what, self.destination))

    def none(self, seconds, what):
        end = time.monotonic() + self.s.remaining(seconds)
        while time.monotonic() < end:
            self.s.raise_if_failed()
            time.sleep(0.05)
        check(self.q.empty(), "%s: unexpected MESSAGE on %s: %s"
              % (what, self.destination, describe(self.q.queue[0] if self.q.queue else None)))


def text(frame):
    return frame.body.decode("utf-8") if isinstance(frame.body, (bytes, bytearray)) else frame.body


def dest(args, kind, tag):
    return "/%s/%s.%s" % (kind, args.prefix, tag)


# ------------------------------------------------------------------------------------------------
# scenarios

def sc_connect(args, use):
    s = use("connect")
    f = s.open()
    check(f.cmd == "CONNECTED", "expected CONNECTED, got %s" % f.cmd)
    version = f.headers.get("version")
    check(version == "1.2", "CONNECTED version is %r, expected '1.2'" % version)
    server = f.headers.get("server", "")
    check(server.strip() != "", "CONNECTED has no server header (headers: %s)" % json.dumps(f.headers))
    return {"version": version, "server": server, "session": f.headers.get("session")}


def sc_pubsub(args, use):
    s = use("pubsub")
    s.open()
    d = dest(args, "topic", "pubsub")
    inbox = s.subscribe(d)
    tricky = "a:b\\c\nd\\n \u00e9\u2713"   # STOMP 1.2 header escaping: \c \\ \n, plus UTF-8
    for i in (1, 2, 3):
        s.send(d, ("pubsub message %d \u00e9\u2713" % i).encode("utf-8"),
               headers={"x-seq": str(i), "x-scenario": "pubsub", "x-escaped": tricky},
               content_type="text/plain")
    for i in (1, 2, 3):
        m = inbox.next("pubsub message %d" % i)
        check(text(m) == "pubsub message %d \u00e9\u2713" % i, "message %d: body %r" % (i, m.body))
        check(m.headers.get("x-seq") == str(i),
              "message %d: x-seq header %r (out of order or missing)" % (i, m.headers.get("x-seq")))
        check(m.headers.get("x-scenario") == "pubsub", "message %d: x-scenario %r" % (i, m.headers.get("x-scenario")))
        check(m.headers.get("x-escaped") == tricky,
              "message %d: x-escaped header %r, expected %r" % (i, m.headers.get("x-escaped"), tricky))
        check(m.headers.get("destination") == d, "message %d: destination %r" % (i, m.headers.get("destination")))
        check(m.headers.get("message-id"), "message %d: no message-id header" % i)
        check(m.headers.get("subscription") == inbox.sub_id,
              "message %d: subscription %r != %r" % (i, m.headers.get("subscription"), inbox.sub_id))
    inbox.none(0.2, "after 3 pubsub messages")
    return {"messages": 3}


def sc_queue(args, use):
    s = use("queue")
    s.open()
    d = dest(args, "queue", "queue")
    body = ("queued before any subscriber %s" % args.prefix).encode()
    s.send(d, body, headers={"x-scenario": "queue"}, receipt=True, what="SEND to queue")
    inbox = s.subscribe(d)
    m = inbox.next("the queued message")
    check(m.body == body, "body %r" % m.body)
    check(m.headers.get("x-scenario") == "queue", "x-scenario %r" % m.headers.get("x-scenario"))
    inbox.none(0.2, "after the queued message")
    return {}


def sc_receipt(args, use):
    s = use("receipt")
    s.open()
    d = dest(args, "topic", "receipt")
    rid = "%s-receipt-1" % args.prefix
    s.expect_receipt(rid)
    s.conn.send(d, b"receipt please", headers={"receipt": rid})
    f = s.await_receipt(rid, "SEND")
    check(f.cmd == "RECEIPT", "expected RECEIPT, got %s" % f.cmd)
    inbox = s.subscribe(d)          # SUBSCRIBE with receipt
    s.unsubscribe(inbox)            # UNSUBSCRIBE with receipt
    return {"receipts": 3}


def sc_client_ack(args, use):
    # Whether an ACK took effect is checked on a NEW connection after the consuming one closed:
    # what happens to un-ACKed messages on UNSUBSCRIBE is unspecified (RabbitMQ keeps them with the
    # connection until it closes), while after the connection is gone they must be back.

    # 1) client-individual: three messages; ACK #3 then #1, leave #2 un-ACKed. Afterwards exactly
    #    #2 must come back: each ACK covered only its own message.
    d1 = dest(args, "queue", "ack-individual")
    s1 = use("individual")
    s1.open()
    inbox1 = s1.subscribe(d1, ack="client-individual")
    for body in (b"ci-1", b"ci-2", b"ci-3"):
        s1.send(d1, body)
    got = [inbox1.next("client-individual message %d" % i) for i in (1, 2, 3)]
    check([m.body for m in got] == [b"ci-1", b"ci-2", b"ci-3"],
          "client-individual bodies %r" % [m.body for m in got])
    for m in got:
        check(m.headers.get("ack"), "client-individual MESSAGE has no ack header: %s" % describe(m))
    s1.conn.ack(got[2].headers["ack"])
    rid = s1.receipt_id("ack")
    s1.expect_receipt(rid)
    s1.conn.ack(got[0].headers["ack"], receipt=rid)
    s1.await_receipt(rid, "ACK")
    inbox1.none(0.2, "after the ACKs")
    s1.close()

    v1 = use("individual-verify")
    v1.open()
    v1.send(d1, b"ci-marker", receipt=True, what="SEND marker")
    again1 = v1.subscribe(d1)
    back = [again1.next("the un-ACKed ci-2 and the marker (1/2)"),
            again1.next("the un-ACKed ci-2 and the marker (2/2)")]
    check(sorted(m.body for m in back) == [b"ci-2", b"ci-marker"],
          "after reconnect expected exactly the un-ACKed ci-2 and the marker, got: %s"
          % " ; ".join(describe(m) for m in back))
    again1.none(0.3, "after ci-2 and the marker (an ACKed message came back?)")
    ci2 = next(m for m in back if m.body == b"ci-2")

    # 2) client: NACK with requeue -> redelivered with redelivered:true -> ACK -> gone for good
    d2 = dest(args, "queue", "ack-client")
    s2 = use("client")
    s2.open()
    inbox2 = s2.subscribe(d2, ack="client")
    s2.send(d2, b"nack-me", headers={"x-scenario": "client-ack"})
    m1 = inbox2.next("message to NACK")
    check(m1.body == b"nack-me", "body %r" % m1.body)
    check(m1.headers.get("redelivered") in (None, "false"),
          "first delivery already has redelivered=%r" % m1.headers.get("redelivered"))
    s2.conn.nack(m1.headers["ack"], requeue="true")
    m2 = inbox2.next("redelivery after NACK")
    check(m2.body == b"nack-me", "redelivered body %r" % m2.body)
    check(m2.headers.get("redelivered") == "true",
          "redelivered header is %r, expected 'true'" % m2.headers.get("redelivered"))
    check(m2.headers.get("x-scenario") == "client-ack", "redelivery lost custom header: %s" % describe(m2))
    rid = s2.receipt_id("ack2")
    s2.expect_receipt(rid)
    s2.conn.ack(m2.headers["ack"], receipt=rid)
    s2.await_receipt(rid, "ACK of the redelivery")
    inbox2.none(0.3, "after ACK of the redelivered message")
    s2.close()

    v2 = use("client-verify")
    v2.open()
    v2.send(d2, b"c-marker", receipt=True, what="SEND marker")
    again2 = v2.subscribe(d2)
    first2 = again2.next("the marker after ACK")
    check(first2.body == b"c-marker", "ACKed message came back: %s" % describe(first2))
    again2.none(0.3, "after the marker")
    return {"redeliveredAfterNack": m2.headers.get("redelivered"),
            "redeliveredAfterReconnect": ci2.headers.get("redelivered")}


def sc_transaction(args, use):
    s = use("transaction")
    s.open()
    d = dest(args, "queue", "tx")
    inbox = s.subscribe(d)

    tx = "%s-tx-commit" % args.prefix
    s.conn.begin(transaction=tx)
    s.send(d, b"tx-1", headers={"transaction": tx})
    s.send(d, b"tx-2", headers={"transaction": tx})
    # a non-transactional marker sent afterwards must overtake the uncommitted ones
    s.send(d, b"marker-before-commit")
    first = inbox.next("the non-transactional marker")
    check(first.body == b"marker-before-commit",
          "uncommitted transactional message delivered before COMMIT: %s" % describe(first))
    inbox.none(0.3, "before COMMIT")
    rid = s.receipt_id("commit")
    s.expect_receipt(rid)
    s.conn.commit(transaction=tx, headers={"receipt": rid})
    s.await_receipt(rid, "COMMIT")
    c1 = inbox.next("committed message tx-1")
    c2 = inbox.next("committed message tx-2")
    check(c1.body == b"tx-1" and c2.body == b"tx-2", "committed bodies %r, %r" % (c1.body, c2.body))

    tx2 = "%s-tx-abort" % args.prefix
    s.conn.begin(transaction=tx2)
    s.send(d, b"aborted-1", headers={"transaction": tx2})
    rid = s.receipt_id("abort")
    s.expect_receipt(rid)
    s.conn.abort(tx2, headers={"receipt": rid})
    s.await_receipt(rid, "ABORT")
    s.send(d, b"marker-after-abort", receipt=True, what="SEND marker after ABORT")
    nxt = inbox.next("the marker after ABORT")
    check(nxt.body == b"marker-after-abort", "aborted transaction delivered: %s" % describe(nxt))
    inbox.none(0.3, "after ABORT")
    return {}


BINARY_BODY = (bytes([0x00, 0x01, 0x02, 0x00, 0xff, 0xfe, 0xfd, 0x80, 0x81, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28,
                      0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0x0a, 0x0d, 0x0a, 0x00, 0x3a, 0x5c, 0x00, 0xed, 0xa0, 0x80,
                      0xc0, 0xaf])
               + bytes(range(256)) + b"\x00")


def sc_binary(args, use):
    s = use("binary")
    s.open()
    d = dest(args, "queue", "binary")
    body = BINARY_BODY
    # stomp.py adds content-length (byte count) itself; the NULs make it mandatory
    s.send(d, body, content_type="application/octet-stream", receipt=True, what="binary SEND")
    # a UTF-8 text body whose byte length differs from its character count
    utf8 = "h\u00e9llo w\u00f6rld \u2713 \U0001F600".encode("utf-8")
    s.send(d, utf8, content_type="text/plain;charset=utf-8", receipt=True, what="UTF-8 SEND")
    inbox = s.subscribe(d)
    m = inbox.next("the binary message")
    check(isinstance(m.body, (bytes, bytearray)), "body is %s, not bytes" % type(m.body).__name__)
    if bytes(m.body) != body:
        i = next((k for k in range(min(len(m.body), len(body))) if m.body[k] != body[k]), min(len(m.body), len(body)))
        raise ScenarioError("binary body differs (got %d bytes, expected %d) at byte %d: %r"
                            % (len(m.body), len(body), i, bytes(m.body[i:i + 16])))
    cl = m.headers.get("content-length")
    check(cl is not None, "binary MESSAGE has no content-length header (required for a body with NULs)")
    check(int(cl) == len(body), "binary MESSAGE content-length %s, expected %d" % (cl, len(body)))
    m2 = inbox.next("the UTF-8 message")
    check(bytes(m2.body) == utf8, "UTF-8 body %r, expected %r" % (m2.body, utf8))
    cl2 = m2.headers.get("content-length")
    if cl2 is not None:
        check(int(cl2) == len(utf8), "UTF-8 MESSAGE content-length %s, expected %d bytes" % (cl2, len(utf8)))
    return {"bytes": len(body), "contentLength": int(cl), "contentType": m.headers.get("content-type")}


def sc_large(args, use):
    s = use("large")
    s.open()
    d = dest(args, "queue", "large")
    size = 1024 * 1024
    filler = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    body = b"".join(b"%08d:" % i + filler[:64 - 10] + b"\n" for i in range(size // 64))
    check(len(body) == size, "internal: body is %d bytes" % len(body))
    s.send(d, body, receipt=True, what="1 MiB SEND")
    inbox = s.subscribe(d)
    m = inbox.next("the 1 MiB message", limit=10)
    check(len(m.body) == size, "large body length %d, expected %d" % (len(m.body), size))
    check(bytes(m.body) == body, "large body content differs")
    return {"bytes": size}


def sc_heartbeat(args, use):
    s = use("heartbeat", heartbeats=(1000, 1000))
    f = s.open()
    hb = f.headers.get("heart-beat")
    check(hb, "CONNECTED has no heart-beat header although the client asked for 1000,1000")
    sx, sy = (int(v) for v in hb.replace(" ", "").split(","))
    check(sx > 0, "broker will not send heart-beats (CONNECTED heart-beat:%s)" % hb)
    check(sy > 0, "broker does not want the client's heart-beats (CONNECTED heart-beat:%s)" % hb)
    hold = 3.5
    end = time.monotonic() + s.remaining(hold)
    while time.monotonic() < end:
        s.raise_if_failed()
        time.sleep(0.05)
    s.raise_if_failed()
    check(s.conn.is_connected(), "connection dropped during %.1f s idle" % hold)
    check(s.heartbeats_received >= 1, "no heart-beat received from the broker in %.1f s (heart-beat:%s)" % (hold, hb))
    s.send(dest(args, "topic", "heartbeat"), b"still alive", receipt=True, what="SEND after idle period")
    return {"serverHeartBeat": hb, "heartbeatsReceived": s.heartbeats_received, "idleSeconds": hold}


FUNCS = {
    "connect": sc_connect, "pubsub": sc_pubsub, "queue": sc_queue, "receipt": sc_receipt,
    "client-ack": sc_client_ack, "transaction": sc_transaction, "binary": sc_binary, "large": sc_large,
    "heartbeat": sc_heartbeat,
}


# ------------------------------------------------------------------------------------------------
# runner

def run_scenario(args, name):
    started = time.monotonic()
    deadline = started + args.timeout
    sessions = []

    def use(tag, heartbeats=(0, 0)):
        s = Session(args, "%s/%s" % (name, tag), deadline, heartbeats=heartbeats)
        sessions.append(s)
        return s

    try:
        details = FUNCS[name](args, use) or {}
        res = {"ok": True, "scenario": name}
        res.update(details)
    except ScenarioError as e:
        res = {"ok": False, "scenario": name, "error": str(e)}
    except Exception as e:  # a bug in the script or an unexpected client exception
        res = {"ok": False, "scenario": name, "error": "%s: %s" % (type(e).__name__, e)}
    finally:
        elapsed = int((time.monotonic() - started) * 1000)
        for s in sessions:
            s.close()
    res["ms"] = elapsed
    return res


def main():
    p = argparse.ArgumentParser(description="stomp.py interop scenarios")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--scenario", required=True, choices=SCENARIOS + ["all"])
    p.add_argument("--prefix")
    p.add_argument("--login", default="guest")
    p.add_argument("--passcode", default="guest")
    p.add_argument("--vhost", default="/")
    p.add_argument("--timeout", type=float, default=15.0, help="hard timeout per scenario, seconds")
    p.add_argument("--verbose", action="store_true")
    try:
        args = p.parse_args()
    except SystemExit as e:
        if e.code not in (0, None):
            print(json.dumps({"ok": False, "scenario": None, "error": "usage error (see stderr)"}), flush=True)
        raise
    raw = args.prefix or "spy-%d-%s" % (os.getpid(), secrets.token_hex(4))
    args.prefix = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "_" for c in raw)

    if args.verbose:
        import logging
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        import logging
        logging.getLogger("stomp.py").setLevel(logging.CRITICAL)

    names = SCENARIOS if args.scenario == "all" else [args.scenario]

    out_lock = threading.Lock()
    printed = []

    def emit(obj):
        with out_lock:
            if printed:
                return
            printed.append(True)
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    budget = len(names) * (args.timeout + 5) + 5

    def watchdog():
        emit({"ok": False, "scenario": args.scenario, "error": "watchdog: run exceeded %.0f s" % budget})
        os._exit(1)

    wd = threading.Timer(budget, watchdog)
    wd.daemon = True
    wd.start()

    if len(names) == 1:
        result = run_scenario(args, names[0])
    else:
        results, errors = {}, []
        for n in names:
            r = run_scenario(args, n)
            results[n] = "ok" if r["ok"] else "FAILED: " + r["error"]
            if not r["ok"]:
                errors.append("%s: %s" % (n, r["error"]))
            print("[stomppy_scenarios] %s: %s" % (n, results[n]), file=sys.stderr, flush=True)
        result = {"ok": not errors, "scenario": "all", "results": results}
        if errors:
            result["error"] = " | ".join(errors)
    wd.cancel()
    result["prefix"] = args.prefix
    emit(result)
    # stomp.py leaves non-daemon threads behind on some failure paths: don't wait for them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
