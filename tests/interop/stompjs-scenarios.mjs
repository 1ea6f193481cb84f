#!/usr/bin/env node
// Interop scenarios driven by the real @stomp/stompjs Client over WebSocket (the `ws` package),
// i.e. what a browser using stomp.js does. Run by the broker's C# integration tests.
//
//   node stompjs-scenarios.mjs --url ws://127.0.0.1:PORT/ws --scenario NAME [--prefix UNIQUE]
//        [--login USER] [--passcode PASS] [--vhost HOST] [--timeout SECONDS] [--verbose]
//        [--ca PEM_FILE | --insecure]
//
// NAME: connect | pubsub | queue | receipt | client-ack | transaction | binary | large | heartbeat | all
//       (each uses its own destinations under the prefix), or
//       receive --destination DEST [--destination DEST ...] [--count N] [--expect BODY ...] [--ready-file PATH]:
//       subscribes to the given destinations (each SUBSCRIBE confirmed by a RECEIPT), then creates PATH (JSON with
//       the CONNECTED frame's server and session) so that another client may start sending, then waits for N
//       messages in all (default: as many as --expect values) and for 300 ms more (no extra or duplicate message).
//       With --expect, the bodies received must be exactly those (in any order). Not part of `all`.
//
// Output contract: exactly one JSON line on stdout,
//   {"ok":true,"scenario":NAME,...}                 exit code 0
//   {"ok":false,"scenario":NAME,"error":"..."}      exit code 1   (2 for bad usage)
// Diagnostics (and, with --verbose, the stomp.js debug log) go to stderr.
// Every scenario has a hard timeout (default 15 s); the client is always deactivated.
//
// Defaults: login/passcode guest/guest (RabbitMQ Web-STOMP's defaults); no `host` header is sent
// unless --vhost is given (stomp.js does not send one by default, and browsers rarely set it).
// wss:// URLs: --ca trusts the certificate(s) in PEM_FILE (e.g. a test's self-signed one) instead of the system's;
// --insecure accepts any server certificate (ws's rejectUnauthorized:false).

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const SCENARIOS = ['connect', 'pubsub', 'queue', 'receipt', 'client-ack', 'transaction', 'binary', 'large', 'heartbeat'];
// Scenarios driven by their own arguments (destinations chosen by the caller): not part of `all`.
const PARAMETRIZED = ['receive'];
const SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

// ------------------------------------------------------------------------------------------------
// CLI

function usage(msg) {
  const scenario = cliScenario ?? null;
  process.stdout.write(JSON.stringify({ ok: false, scenario, error: `usage: ${msg}` }) + '\n');
  process.stderr.write(
    'usage: node stompjs-scenarios.mjs --url ws://127.0.0.1:PORT/ws --scenario NAME [--prefix UNIQUE]\n' +
      '         [--login USER] [--passcode PASS] [--vhost HOST] [--timeout SECONDS] [--verbose]\n' +
      '         [--ca PEM_FILE | --insecure]\n' +
      `       NAME: ${SCENARIOS.join(' | ')} | all\n` +
      '       or: --scenario receive --destination DEST [--destination DEST ...] [--count N] [--expect BODY ...]\n' +
      '         [--ready-file PATH]\n',
  );
  process.exit(2);
}

let cliScenario;
function parseArgs(argv) {
  const args = {
    login: 'guest', passcode: 'guest', vhost: undefined, timeout: 15, verbose: false, ca: undefined, insecure: false,
    destinations: [], count: undefined, expect: [], readyFile: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--url': args.url = value(); break;
      case '--scenario': args.scenario = cliScenario = value(); break;
      case '--prefix': args.prefix = value(); break;
      case '--login': args.login = value(); break;
      case '--passcode': args.passcode = value(); break;
      case '--vhost': args.vhost = value(); break;
      case '--timeout': args.timeout = Number(value()); break;
      case '--verbose': args.verbose = true; break;
      case '--ca': args.ca = value(); break;
      case '--insecure': args.insecure = true; break;
      case '--destination': args.destinations.push(value()); break;
      case '--count': args.count = Number(value()); break;
      case '--expect': args.expect.push(value()); break;
      case '--ready-file': args.readyFile = value(); break;
      case '-h': case '--help': usage('help requested'); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!args.url) usage('--url is required');
  if (!/^wss?:\/\//.test(args.url)) usage('--url must be a ws:// or wss:// URL');
  if (!args.scenario) usage('--scenario is required');
  if (args.ca !== undefined && args.insecure) usage('--ca and --insecure exclude each other');
  // TLS options for ws (passed to tls.connect): only for wss:// URLs.
  args.tls = args.ca !== undefined ? { ca: readFileSync(args.ca) } : args.insecure ? { rejectUnauthorized: false } : {};
  if (args.scenario !== 'all' && !SCENARIOS.includes(args.scenario) && !PARAMETRIZED.includes(args.scenario)) usage(`unknown scenario ${args.scenario}`);
  if (args.scenario === 'receive') {
    if (args.destinations.length === 0) usage('receive needs at least one --destination');
    args.count ??= args.expect.length;
    if (!Number.isInteger(args.count) || args.count <= 0) usage('receive needs --count N (a positive integer) or --expect BODY');
    if (args.expect.length > 0 && args.expect.length !== args.count) usage(`--count ${args.count} but ${args.expect.length} --expect values`);
  } else if (args.destinations.length || args.count !== undefined || args.expect.length || args.readyFile !== undefined) {
    usage('--destination, --count, --expect and --ready-file are for the receive scenario');
  }
  if (!Number.isFinite(args.timeout) || args.timeout <= 0) usage('--timeout must be a positive number of seconds');
  // destination-safe prefix: letters, digits, '-', '_', '.'
  const raw = args.prefix ?? `sjs-${process.pid}-${randomBytes(4).toString('hex')}`;
  args.prefix = raw.replace(/[^A-Za-z0-9._-]/g, '_');
  return args;
}

// ------------------------------------------------------------------------------------------------
// helpers

const sleep = ms => new Promise(r => setTimeout(r, ms));
const log = (args, msg) => { if (args.verbose) process.stderr.write(`[scenario] ${msg}\n`); };

class ScenarioError extends Error {}
function assert(cond, msg) { if (!cond) throw new ScenarioError(msg); }

function timeoutAfter(ms, what) {
  let timer;
  const p = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ScenarioError(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  p.cancel = () => clearTimeout(timer);
  p.catch(() => {});
  return p;
}

function hex(bytes, max = 32) {
  const b = Array.from(bytes.slice(0, max), x => x.toString(16).padStart(2, '0')).join(' ');
  return bytes.length > max ? `${b} ... (${bytes.length} bytes)` : b;
}

/** Messages delivered to one subscription, consumed in order. */
class Inbox {
  constructor(session, name) { this.session = session; this.name = name; this.items = []; this.waiter = null; }
  push(m) {
    if (this.waiter) { const w = this.waiter; this.waiter = null; w(m); } else this.items.push(m);
  }
  /** next message, or fail after ms */
  async next(ms, what = `a MESSAGE on ${this.name}`) {
    if (this.items.length) return this.items.shift();
    const got = new Promise(resolve => { this.waiter = resolve; });
    const t = timeoutAfter(ms, what);
    try {
      return await Promise.race([got, t, this.session.failure]);
    } finally {
      t.cancel();
      this.waiter = null;
    }
  }
  /** assert nothing arrives for ms */
  async none(ms, what) {
    await Promise.race([sleep(ms), this.session.failure]);
    assert(this.items.length === 0,
      `${what}: unexpected MESSAGE on ${this.name}: ${describe(this.items[0])}`);
  }
}

function describe(m) {
  if (!m) return '(none)';
  const n = m.binaryBody.length;
  const body = JSON.stringify(m.body.slice(0, 80)) + (n > 80 ? ` ...(${n} bytes)` : '');
  return `headers=${JSON.stringify(m.headers)} body=${body}`;
}

/** One stomp.js Client (one WebSocket / STOMP session). */
class Session {
  constructor(args, name, extra = {}) {
    this.args = args;
    this.name = name;
    this.closing = false;
    this.error = null;
    this.ws = null;
    this.heartbeatsReceived = 0;
    this.heartbeatLost = false;
    this.failure = new Promise((_, reject) => { this._rejectFailure = reject; });
    this.failure.catch(() => {});
    this._connected = new Promise((resolve) => { this._resolveConnected = resolve; });

    const connectHeaders = { login: args.login, passcode: args.passcode };
    if (args.vhost !== undefined) connectHeaders.host = args.vhost;

    this.client = new Client({
      webSocketFactory: () => {
        this.ws = new WebSocket(args.url, SUBPROTOCOLS, args.tls);
        return this.ws;
      },
      connectHeaders,
      reconnectDelay: 0, // never reconnect: a dropped connection is a failure
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: args.verbose ? s => process.stderr.write(`[stompjs:${name}] ${s}\n`) : () => {},
      ...extra,
    });
    this.client.onConnect = frame => this._resolveConnected(frame);
    this.client.onStompError = frame =>
      this.fail(`ERROR frame from broker: message=${JSON.stringify(frame.headers.message ?? '')} body=${JSON.stringify(frame.body)}`);
    this.client.onWebSocketClose = evt => {
      if (!this.closing) this.fail(`WebSocket closed unexpectedly (code ${evt?.code}${evt?.reason ? `, reason ${JSON.stringify(evt.reason)}` : ''})`);
    };
    this.client.onWebSocketError = evt => {
      if (!this.closing) this.fail(`WebSocket error: ${evt?.message ?? evt?.error?.message ?? evt?.type ?? 'unknown'}`);
    };
    this.client.onUnhandledMessage = m => this.fail(`MESSAGE for no known subscription: ${describe(m)}`);
    this.client.onUnhandledReceipt = f => { log(args, `unwatched RECEIPT ${f.headers['receipt-id']}`); };
    this.client.onUnhandledFrame = f => this.fail(`unexpected frame ${f.command}`);
    this.client.onHeartbeatReceived = () => { this.heartbeatsReceived++; };
    this.client.onHeartbeatLost = () => { this.heartbeatLost = true; this.fail('stomp.js reports the broker\'s heart-beats were lost'); };
  }

  fail(msg) {
    if (this.error) return;
    this.error = new ScenarioError(`[${this.name}] ${msg}`);
    this._rejectFailure(this.error);
  }

  async open(ms = 5000) {
    this.client.activate();
    const t = timeoutAfter(ms, `CONNECTED on ${this.name}`);
    try {
      this.connectedFrame = await Promise.race([this._connected, this.failure, t]);
    } finally { t.cancel(); }
    return this.connectedFrame;
  }

  async guard(promise, ms, what) {
    const t = timeoutAfter(ms, what);
    try { return await Promise.race([promise, this.failure, t]); } finally { t.cancel(); }
  }

  receiptId(tag) { return `${this.args.prefix}-${tag}-${randomBytes(3).toString('hex')}`; }

  /** register a receipt watcher BEFORE sending the frame that carries `receipt` */
  watch(id) {
    return new Promise(resolve => this.client.watchForReceipt(id, resolve));
  }

  /** subscribe and await the broker's RECEIPT for the SUBSCRIBE, so later sends can't race it */
  async subscribe(destination, headers = {}, name = destination, inbox = new Inbox(this, name)) {
    const id = this.receiptId('sub');
    const r = this.watch(id);
    const sub = this.client.subscribe(destination, m => inbox.push(m), { ...headers, receipt: id });
    await this.guard(r, 5000, `RECEIPT for SUBSCRIBE ${destination}`);
    inbox.subscription = sub;
    return inbox;
  }

  async publishWithReceipt(params, what) {
    const id = this.receiptId('send');
    const r = this.watch(id);
    this.client.publish({ ...params, headers: { ...(params.headers ?? {}), receipt: id } });
    const frame = await this.guard(r, 5000, `RECEIPT for ${what}`);
    assert(frame.headers['receipt-id'] === id, `RECEIPT receipt-id ${frame.headers['receipt-id']} != ${id}`);
    return frame;
  }

  async close() {
    this.closing = true;
    try {
      await Promise.race([this.client.deactivate(), sleep(3000)]);
    } catch { /* ignore */ }
    if (this.client.active) {
      try { await Promise.race([this.client.deactivate({ force: true }), sleep(1000)]); } catch { /* ignore */ }
    }
    try { this.ws?.terminate?.(); } catch { /* ignore */ }
  }
}

function dest(args, kind, tag) { return `/${kind}/${args.prefix}.${tag}`; }

// ------------------------------------------------------------------------------------------------
// scenarios: each gets a fresh `use(name, extra)` that opens a tracked Session

const scenarios = {
  async connect(args, use) {
    const s = use('connect');
    const f = await s.open();
    assert(f.command === 'CONNECTED', `expected CONNECTED, got ${f.command}`);
    assert(f.headers.version === '1.2', `CONNECTED version is ${JSON.stringify(f.headers.version)}, expected "1.2"`);
    assert(typeof f.headers.server === 'string' && f.headers.server.trim().length > 0,
      `CONNECTED has no server header (headers: ${JSON.stringify(f.headers)})`);
    assert(s.client.connectedVersion === '1.2', `client negotiated ${s.client.connectedVersion}`);
    const subprotocol = s.ws?.protocol ?? '';
    assert(subprotocol === '' || SUBPROTOCOLS.includes(subprotocol), `server selected unknown WebSocket subprotocol ${subprotocol}`);
    return { version: f.headers.version, server: f.headers.server, session: f.headers.session ?? null, subprotocol };
  },

  async pubsub(args, use) {
    const s = use('pubsub');
    await s.open();
    const d = dest(args, 'topic', 'pubsub');
    const inbox = await s.subscribe(d);
    // exercises STOMP 1.2 header escaping (\c \\ \n) and UTF-8 in header values. A backslash is
    // deliberately NOT followed by 'c', 'n' or 'r': stomp.js 7.x un-escapes with sequential
    // String.replace calls, so it decodes a correct "\\c" on the wire as "\:" (client-side bug).
    const tricky = 'a:b\\x\ny \u00e9\u2713';
    for (let i = 1; i <= 3; i++) {
      s.client.publish({
        destination: d,
        body: `pubsub message ${i} \u00e9\u2713`,
        headers: { 'x-seq': String(i), 'x-scenario': 'pubsub', 'x-escaped': tricky, 'content-type': 'text/plain' },
      });
    }
    for (let i = 1; i <= 3; i++) {
      const m = await inbox.next(5000, `pubsub message ${i}`);
      assert(m.body === `pubsub message ${i} \u00e9\u2713`, `message ${i}: body ${JSON.stringify(m.body)}`);
      assert(m.headers['x-seq'] === String(i), `message ${i}: x-seq header ${JSON.stringify(m.headers['x-seq'])} (out of order or missing)`);
      assert(m.headers['x-scenario'] === 'pubsub', `message ${i}: x-scenario header ${JSON.stringify(m.headers['x-scenario'])}`);
      assert(m.headers['x-escaped'] === tricky, `message ${i}: x-escaped header ${JSON.stringify(m.headers['x-escaped'])}, expected ${JSON.stringify(tricky)}`);
      assert(m.headers.destination === d, `message ${i}: destination header ${JSON.stringify(m.headers.destination)}`);
      assert(m.headers['message-id'], `message ${i}: no message-id header`);
      assert(m.headers.subscription === inbox.subscription.id, `message ${i}: subscription header ${m.headers.subscription} != ${inbox.subscription.id}`);
    }
    await inbox.none(200, 'after 3 pubsub messages');
    return { messages: 3 };
  },

  async queue(args, use) {
    const s = use('queue');
    await s.open();
    const d = dest(args, 'queue', 'queue');
    const body = `queued before any subscriber ${args.prefix}`;
    await s.publishWithReceipt({ destination: d, body, headers: { 'x-scenario': 'queue' } }, 'SEND to queue');
    const inbox = await s.subscribe(d);
    const m = await inbox.next(5000, 'the queued message');
    assert(m.body === body, `body ${JSON.stringify(m.body)}`);
    assert(m.headers['x-scenario'] === 'queue', `x-scenario header ${JSON.stringify(m.headers['x-scenario'])}`);
    await inbox.none(200, 'after the queued message');
    return {};
  },

  async receipt(args, use) {
    const s = use('receipt');
    await s.open();
    const d = dest(args, 'topic', 'receipt');
    const id = `${args.prefix}-receipt-1`;
    const r = new Promise(resolve => s.client.watchForReceipt(id, resolve));
    s.client.publish({ destination: d, body: 'receipt please', headers: { receipt: id } });
    const f = await s.guard(r, 5000, `RECEIPT ${id}`);
    assert(f.command === 'RECEIPT', `expected RECEIPT, got ${f.command}`);
    assert(f.headers['receipt-id'] === id, `receipt-id ${JSON.stringify(f.headers['receipt-id'])} != ${id}`);
    // a second one, on a SUBSCRIBE/UNSUBSCRIBE pair
    const id2 = `${args.prefix}-receipt-2`;
    const r2 = new Promise(resolve => s.client.watchForReceipt(id2, resolve));
    const sub = s.client.subscribe(d, () => {}, { receipt: id2 });
    const f2 = await s.guard(r2, 5000, `RECEIPT ${id2}`);
    assert(f2.headers['receipt-id'] === id2, `receipt-id ${f2.headers['receipt-id']} != ${id2}`);
    const id3 = `${args.prefix}-receipt-3`;
    const r3 = new Promise(resolve => s.client.watchForReceipt(id3, resolve));
    sub.unsubscribe({ receipt: id3 });
    await s.guard(r3, 5000, `RECEIPT ${id3} (UNSUBSCRIBE)`);
    return { receipts: 3 };
  },

  async 'client-ack'(args, use) {
    // Whether an ACK took effect is checked on a NEW connection after the consuming one closed:
    // what happens to un-ACKed messages on UNSUBSCRIBE is unspecified (RabbitMQ keeps them with the
    // connection until it closes), while after the connection is gone they must be back.

    // 1) ack: client-individual. Three messages; ACK #3 then #1, leave #2 un-ACKed. Afterwards
    //    exactly #2 must come back: each ACK covered only its own message.
    const d1 = dest(args, 'queue', 'ack-individual');
    const s1 = use('individual');
    await s1.open();
    const inbox1 = await s1.subscribe(d1, { ack: 'client-individual' });
    for (const body of ['ci-1', 'ci-2', 'ci-3']) s1.client.publish({ destination: d1, body });
    const got = [];
    for (let i = 1; i <= 3; i++) got.push(await inbox1.next(5000, `client-individual message ${i}`));
    assert(got.map(m => m.body).join() === 'ci-1,ci-2,ci-3', `client-individual bodies ${JSON.stringify(got.map(m => m.body))}`);
    for (const m of got) assert(m.headers.ack, `client-individual MESSAGE has no ack header: ${describe(m)}`);
    got[2].ack();
    const ackId = s1.receiptId('ack');
    const ackReceipt = s1.watch(ackId);
    got[0].ack({ receipt: ackId });
    await s1.guard(ackReceipt, 5000, 'RECEIPT for ACK');
    await inbox1.none(200, 'after the ACKs');
    await s1.close();

    const v1 = use('individual-verify');
    await v1.open();
    await v1.publishWithReceipt({ destination: d1, body: 'ci-marker' }, 'SEND marker');
    const again1 = await v1.subscribe(d1);
    const back = [
      await again1.next(5000, 'the un-ACKed ci-2 and the marker (1/2)'),
      await again1.next(5000, 'the un-ACKed ci-2 and the marker (2/2)'),
    ];
    assert(back.map(m => m.body).sort().join() === 'ci-2,ci-marker',
      `after reconnect expected exactly the un-ACKed ci-2 and the marker, got: ${back.map(describe).join(' ; ')}`);
    await again1.none(300, 'after ci-2 and the marker (an ACKed message came back?)');
    const ci2 = back.find(m => m.body === 'ci-2');

    // 2) ack: client. NACK (requeue) -> redelivered with redelivered:true -> ACK -> gone for good
    const d2 = dest(args, 'queue', 'ack-client');
    const s2 = use('client');
    await s2.open();
    const inbox2 = await s2.subscribe(d2, { ack: 'client' });
    s2.client.publish({ destination: d2, body: 'nack-me', headers: { 'x-scenario': 'client-ack' } });
    const m1 = await inbox2.next(5000, 'message to NACK');
    assert(m1.body === 'nack-me', `body ${JSON.stringify(m1.body)}`);
    assert(m1.headers.redelivered === undefined || m1.headers.redelivered === 'false',
      `first delivery already has redelivered=${m1.headers.redelivered}`);
    m1.nack({ requeue: 'true' });
    const m2 = await inbox2.next(5000, 'redelivery after NACK');
    assert(m2.body === 'nack-me', `redelivered body ${JSON.stringify(m2.body)}`);
    assert(m2.headers.redelivered === 'true', `redelivered header is ${JSON.stringify(m2.headers.redelivered)}, expected "true"`);
    assert(m2.headers['x-scenario'] === 'client-ack', `redelivery lost custom header: ${describe(m2)}`);
    const ack2 = s2.receiptId('ack2');
    const ack2r = s2.watch(ack2);
    m2.ack({ receipt: ack2 });
    await s2.guard(ack2r, 5000, 'RECEIPT for ACK of the redelivery');
    await inbox2.none(300, 'after ACK of the redelivered message');
    await s2.close();

    const v2 = use('client-verify');
    await v2.open();
    await v2.publishWithReceipt({ destination: d2, body: 'c-marker' }, 'SEND marker');
    const again2 = await v2.subscribe(d2);
    const first2 = await again2.next(5000, 'the marker after ACK');
    assert(first2.body === 'c-marker', `ACKed message came back: ${describe(first2)}`);
    await again2.none(300, 'after the marker');
    return {
      redeliveredAfterNack: m2.headers.redelivered,
      redeliveredAfterReconnect: ci2.headers.redelivered ?? null,
    };
  },

  async transaction(args, use) {
    const s = use('transaction');
    await s.open();
    const d = dest(args, 'queue', 'tx');
    const inbox = await s.subscribe(d);

    const tx = s.client.begin();
    s.client.publish({ destination: d, body: 'tx-1', headers: { transaction: tx.id } });
    s.client.publish({ destination: d, body: 'tx-2', headers: { transaction: tx.id } });
    // a non-transactional marker sent afterwards must overtake the uncommitted ones
    s.client.publish({ destination: d, body: 'marker-before-commit' });
    const first = await inbox.next(5000, 'the non-transactional marker');
    assert(first.body === 'marker-before-commit', `uncommitted transactional message delivered before COMMIT: ${describe(first)}`);
    await inbox.none(300, 'before COMMIT');
    tx.commit();
    const c1 = await inbox.next(5000, 'committed message tx-1');
    const c2 = await inbox.next(5000, 'committed message tx-2');
    assert(c1.body === 'tx-1' && c2.body === 'tx-2', `committed bodies ${JSON.stringify([c1.body, c2.body])}`);

    const tx2 = s.client.begin();
    s.client.publish({ destination: d, body: 'aborted-1', headers: { transaction: tx2.id } });
    tx2.abort();
    await s.publishWithReceipt({ destination: d, body: 'marker-after-abort' }, 'SEND marker after ABORT');
    const next = await inbox.next(5000, 'the marker after ABORT');
    assert(next.body === 'marker-after-abort', `aborted transaction delivered: ${describe(next)}`);
    await inbox.none(300, 'after ABORT');
    return {};
  },

  async binary(args, use) {
    const s = use('binary');
    await s.open();
    const d = dest(args, 'queue', 'binary');
    const body = new Uint8Array([
      0x00, 0x01, 0x02, 0x00, 0xff, 0xfe, 0xfd, 0x80, 0x81, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1,
      0xf0, 0x28, 0x8c, 0xbc, 0x0a, 0x0d, 0x0a, 0x00, 0x3a, 0x5c, 0x00, 0xed, 0xa0, 0x80, 0xc0, 0xaf,
      ...Array.from({ length: 256 }, (_, i) => i), 0x00,
    ]);
    await s.publishWithReceipt({
      destination: d, binaryBody: body, headers: { 'content-type': 'application/octet-stream' },
    }, 'binary SEND');
    const inbox = await s.subscribe(d);
    const m = await inbox.next(5000, 'the binary message');
    const got = m.binaryBody;
    assert(got.length === body.length, `binary body length ${got.length}, expected ${body.length}: ${hex(got)}`);
    for (let i = 0; i < body.length; i++) {
      assert(got[i] === body[i], `binary body differs at byte ${i}: got ${hex(got)}`);
    }
    if (m.headers['content-length'] !== undefined) {
      assert(Number(m.headers['content-length']) === body.length,
        `content-length ${m.headers['content-length']}, expected ${body.length}`);
    }
    return { bytes: body.length, contentType: m.headers['content-type'] ?? null };
  },

  async large(args, use) {
    const s = use('large', { splitLargeFrames: true, maxWebSocketChunkSize: 64 * 1024 });
    await s.open();
    const d = dest(args, 'queue', 'large');
    const size = 1024 * 1024;
    // 16384 numbered 64-byte lines: detects truncation, duplication and reordering of chunks
    const lines = [];
    for (let i = 0; i < size / 64; i++) {
      const head = `${String(i).padStart(8, '0')}:`;
      lines.push(head + 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.slice(0, 64 - head.length - 1) + '\n');
    }
    const body = lines.join('');
    assert(body.length === size, `internal: body is ${body.length} bytes`);
    await s.guard(s.publishWithReceipt({ destination: d, body }, '1 MiB SEND'), 10000, '1 MiB SEND');
    const inbox = await s.subscribe(d);
    const m = await inbox.next(10000, 'the 1 MiB message');
    assert(m.body.length === size, `large body length ${m.body.length}, expected ${size}`);
    if (m.body !== body) {
      let i = 0; while (i < size && m.body[i] === body[i]) i++;
      assert(false, `large body differs at offset ${i}: ${JSON.stringify(m.body.slice(i, i + 40))}`);
    }
    if (m.headers['content-length'] !== undefined) {
      assert(Number(m.headers['content-length']) === size, `content-length ${m.headers['content-length']}, expected ${size}`);
    }
    return { bytes: size, chunkSize: 64 * 1024 };
  },

  async heartbeat(args, use) {
    const s = use('heartbeat', { heartbeatIncoming: 1000, heartbeatOutgoing: 1000 });
    const f = await s.open();
    const hb = f.headers['heart-beat'];
    assert(hb, 'CONNECTED has no heart-beat header although the client asked for 1000,1000');
    const [sx, sy] = hb.split(',').map(v => parseInt(v, 10));
    assert(sx > 0, `broker will not send heart-beats (CONNECTED heart-beat:${hb})`);
    assert(sy > 0, `broker does not want the client's heart-beats (CONNECTED heart-beat:${hb})`);
    const hold = 3500;
    await Promise.race([sleep(hold), s.failure]);
    assert(s.client.connected, `connection dropped during ${hold} ms idle`);
    assert(!s.heartbeatLost, 'heart-beat lost');
    assert(s.heartbeatsReceived >= 1, `no heart-beat received from the broker in ${hold} ms (heart-beat:${hb})`);
    // still usable after the idle period
    await s.publishWithReceipt({ destination: dest(args, 'topic', 'heartbeat'), body: 'still alive' }, 'SEND after idle period');
    return { serverHeartBeat: hb, heartbeatsReceived: s.heartbeatsReceived, idleMs: hold };
  },

  // Receives what another client sends: subscribe, signal readiness through a file, then wait for the messages.
  async receive(args, use) {
    const s = use('receive');
    const connected = await s.open();
    const inbox = new Inbox(s, args.destinations.join(' + '));
    for (const d of args.destinations) await s.subscribe(d, {}, d, inbox);
    if (args.readyFile !== undefined) {
      // Created whole (rename), so a poller never reads it half-written.
      const ready = { server: connected.headers.server ?? null, session: connected.headers.session ?? null };
      writeFileSync(`${args.readyFile}.tmp`, JSON.stringify(ready) + '\n');
      renameSync(`${args.readyFile}.tmp`, args.readyFile);
    }
    const got = [];
    for (let i = 1; i <= args.count; i++) {
      got.push(await inbox.next(args.timeout * 1000, `message ${i} of ${args.count} (got so far: ${got.map(describe).join(' ; ') || 'none'})`));
    }
    await inbox.none(300, `after ${args.count} messages`);
    for (const m of got) {
      assert(args.destinations.includes(m.headers.destination), `MESSAGE for a destination not subscribed to: ${describe(m)}`);
    }
    if (args.expect.length > 0) {
      const bodies = got.map(m => m.body).sort();
      const expected = [...args.expect].sort();
      assert(JSON.stringify(bodies) === JSON.stringify(expected),
        `received bodies ${JSON.stringify(bodies)}, expected ${JSON.stringify(expected)}`);
    }
    return {
      session: connected.headers.session ?? null,
      messages: got.map(m => ({ destination: m.headers.destination, body: m.body })),
    };
  },
};

// ------------------------------------------------------------------------------------------------
// runner

async function runScenario(args, name) {
  const sessions = [];
  const use = (tag, extra) => {
    const s = new Session(args, `${name}/${tag}`, extra);
    sessions.push(s);
    return s;
  };
  const ms = Math.round(args.timeout * 1000);
  const started = Date.now();
  const t = timeoutAfter(ms, `scenario ${name} (hard timeout)`);
  try {
    const details = await Promise.race([scenarios[name](args, use), t]);
    return { ok: true, scenario: name, ms: Date.now() - started, ...(details ?? {}) };
  } catch (e) {
    return { ok: false, scenario: name, ms: Date.now() - started, error: e?.message ?? String(e) };
  } finally {
    t.cancel();
    await Promise.all(sessions.map(s => s.close()));
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const names = args.scenario === 'all' ? SCENARIOS : [args.scenario];
  // last-resort watchdog: never hang, whatever happens inside the client
  const budget = names.length * (args.timeout * 1000 + 5000) + 5000;
  const watchdog = setTimeout(() => {
    process.stdout.write(JSON.stringify({ ok: false, scenario: args.scenario, error: `watchdog: run exceeded ${budget} ms` }) + '\n');
    process.exit(1);
  }, budget);

  let result;
  if (names.length === 1) {
    result = await runScenario(args, names[0]);
  } else {
    const results = {};
    const errors = [];
    for (const n of names) {
      const r = await runScenario(args, n);
      results[n] = r.ok ? 'ok' : `FAILED: ${r.error}`;
      if (!r.ok) errors.push(`${n}: ${r.error}`);
      process.stderr.write(`[stompjs-scenarios] ${n}: ${r.ok ? 'ok' : 'FAILED: ' + r.error}\n`);
    }
    result = errors.length === 0
      ? { ok: true, scenario: 'all', results }
      : { ok: false, scenario: 'all', error: errors.join(' | '), results };
  }
  clearTimeout(watchdog);
  result.prefix = args.prefix;
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.ok ? 0 : 1);
}

process.on('unhandledRejection', e => {
  process.stderr.write(`[stompjs-scenarios] unhandled rejection: ${e?.stack ?? e}\n`);
});

main().catch(e => {
  process.stdout.write(JSON.stringify({ ok: false, scenario: cliScenario ?? null, error: `internal error: ${e?.stack ?? e}` }) + '\n');
  process.exit(1);
});
