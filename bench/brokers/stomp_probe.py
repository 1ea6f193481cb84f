#!/usr/bin/python3
"""Tiny dependency-free STOMP 1.2 probe for the benchmark broker scripts (system python, stdlib only).

Usage:
  stomp_probe.py connect   URL [--login guest --passcode guest --host / --timeout 5]
      CONNECT, expect CONNECTED, DISCONNECT. Exit 0 on CONNECTED, 1 otherwise.
  stomp_probe.py roundtrip URL [--dest /queue/probe] [...]
      CONNECT, SUBSCRIBE to --dest, SEND one message with a receipt, expect the RECEIPT and the MESSAGE back.
  stomp_probe.py conns     URL N [--pid PID] [...]
      Open N connections (each CONNECT -> CONNECTED), hold them, print the broker's RSS growth per connection
      (from /proc/PID/status) when --pid is given, close them. A quick stand-in for `stompload --scenario conns`.

URL is tcp://127.0.0.1:PORT, ws://127.0.0.1:PORT/PATH, or a bare PORT (= tcp://127.0.0.1:PORT).
WebSocket: RFC 6455 client with subprotocols v12.stomp,v11.stomp,v10.stomp, no extensions.
"""
import argparse
import base64
import os
import socket
import struct
import sys
import time
import urllib.parse


class Conn:
    def __init__(self, url, timeout):
        if url.isdigit():
            url = "tcp://127.0.0.1:" + url
        u = urllib.parse.urlsplit(url)
        self.ws = u.scheme == "ws"
        if u.scheme not in ("tcp", "ws"):
            raise SystemExit("unsupported URL scheme: " + url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""      # raw bytes from the socket
        self.stomp = b""    # STOMP bytes (after WebSocket unframing)
        if self.ws:
            self._handshake(u)

    # ---- WebSocket -----------------------------------------------------------------------
    def _handshake(self, u):
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path or "/"
        req = (f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Protocol: v12.stomp, v11.stomp, v10.stomp\r\n\r\n")
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            self._recv_raw()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise IOError("WebSocket upgrade refused: " + status.decode(errors="replace"))

    def _recv_raw(self):
        d = self.sock.recv(65536)
        if not d:
            raise IOError("connection closed by the broker")
        self.buf += d

    def _ws_send(self, payload, opcode=0x2):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(hdr + mask + masked)

    def _ws_pump(self):
        """Move complete WebSocket frames from buf to stomp; read more when none is complete."""
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                n, off = b1 & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, off = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
                elif n >= 126:
                    n = None
                if n is not None and len(self.buf) >= off + n:
                    payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
                    op = b0 & 0x0F
                    if op == 0x8:
                        raise IOError("WebSocket closed by the broker")
                    if op == 0x9:
                        self._ws_send(payload, 0xA)
                        continue
                    if op in (0x0, 0x1, 0x2):
                        self.stomp += payload
                        return
                    continue
            self._recv_raw()

    # ---- STOMP ----------------------------------------------------------------------------
    def send_frame(self, command, headers, body=b""):
        data = command.encode() + b"\n"
        for k, v in headers.items():
            data += f"{k}:{v}\n".encode()
        data += b"\n" + body + b"\0"
        if self.ws:
            self._ws_send(data)
        else:
            self.sock.sendall(data)

    def _more(self):
        if self.ws:
            self._ws_pump()
        else:
            self._recv_raw()
            self.stomp, self.buf = self.stomp + self.buf, b""

    def read_frame(self):
        while True:
            self.stomp = self.stomp.lstrip(b"\r\n")   # heart-beats
            if b"\n\n" in self.stomp or b"\r\n\r\n" in self.stomp:
                i = self.stomp.find(b"\n\n")
                head = self.stomp[:i].replace(b"\r", b"")
                lines = head.decode().split("\n")
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers.setdefault(k, v)
                start = i + 2
                if "content-length" in headers:
                    end = start + int(headers["content-length"])
                    if len(self.stomp) > end:
                        body, self.stomp = self.stomp[start:end], self.stomp[end + 1:]
                        return lines[0], headers, body
                else:
                    j = self.stomp.find(b"\0", start)
                    if j >= 0:
                        body, self.stomp = self.stomp[start:j], self.stomp[j + 1:]
                        return lines[0], headers, body
            self._more()

    def connect(self, a):
        hdrs = {"accept-version": "1.2", "host": a.host, "heart-beat": "0,0"}
        if a.login is not None:
            hdrs["login"] = a.login
            hdrs["passcode"] = a.passcode
        self.send_frame("CONNECT", hdrs)
        cmd, headers, body = self.read_frame()
        if cmd != "CONNECTED":
            raise IOError(f"expected CONNECTED, got {cmd} {headers} {body[:200]!r}")
        return headers

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    p = argparse.ArgumentParser(description="STOMP probe")
    p.add_argument("mode", choices=["connect", "roundtrip", "conns"])
    p.add_argument("url")
    p.add_argument("count", nargs="?", type=int, default=0)
    p.add_argument("--login", default="guest")
    p.add_argument("--passcode", default="guest")
    p.add_argument("--host", default="/")
    p.add_argument("--dest", default="/queue/probe")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--pid", type=int)
    p.add_argument("--quiet", "-q", action="store_true")
    a = p.parse_args()

    try:
        if a.mode == "connect":
            c = Conn(a.url, a.timeout)
            h = c.connect(a)
            c.send_frame("DISCONNECT", {})
            c.close()
            if not a.quiet:
                print(f"CONNECTED version={h.get('version')} server={h.get('server', '?')}")
        elif a.mode == "roundtrip":
            c = Conn(a.url, a.timeout)
            c.connect(a)
            c.send_frame("SUBSCRIBE", {"id": "0", "destination": a.dest, "ack": "auto", "receipt": "sub"})
            cmd, h, _ = c.read_frame()
            if cmd != "RECEIPT":
                raise IOError(f"expected RECEIPT for SUBSCRIBE, got {cmd} {h}")
            body = f"probe {time.time()}".encode()
            c.send_frame("SEND", {"destination": a.dest, "content-type": "text/plain",
                                  "content-length": str(len(body)), "receipt": "send"}, body)
            got_receipt = got_msg = False
            while not (got_receipt and got_msg):
                cmd, h, b = c.read_frame()
                if cmd == "RECEIPT" and h.get("receipt-id") == "send":
                    got_receipt = True
                elif cmd == "MESSAGE" and b == body:
                    got_msg = True
                    if not a.quiet:
                        print(f"MESSAGE destination={h.get('destination')} body={b.decode()!r}")
                elif cmd == "ERROR":
                    raise IOError(f"ERROR {h} {b[:200]!r}")
            c.send_frame("DISCONNECT", {})
            c.close()
            if not a.quiet:
                print("roundtrip ok")
        else:
            n = a.count
            before = rss_bytes(a.pid) if a.pid else 0
            conns, t0 = [], time.monotonic()
            for i in range(n):
                c = Conn(a.url, a.timeout)
                c.connect(a)
                conns.append(c)
                if not a.quiet and (i + 1) % 1000 == 0:
                    print(f"  {i + 1} connections", flush=True)
            took = time.monotonic() - t0
            time.sleep(2)
            after = rss_bytes(a.pid) if a.pid else 0
            msg = f"{n} connections open in {took:.1f}s"
            if a.pid:
                msg += f"; broker RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB, " \
                       f"{(after - before) / max(n, 1):.0f} B/connection"
            print(msg)
            for c in conns:
                c.close()
    except (OSError, IOError, ValueError) as e:
        if not a.quiet:
            print(f"probe failed: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
