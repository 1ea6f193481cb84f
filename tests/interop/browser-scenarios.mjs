#!/usr/bin/env node
// Browser scenarios: Debian's Chromium (/usr/bin/chromium), driven headless by playwright-core, opens the pages the
// broker serves (status page, chat demo, dashboard demo) and checks what a person would see. Run by the broker's C#
// tests (tests/Broker.Tests/Browser/BrowserTests.cs).
//
//   node browser-scenarios.mjs --base http://127.0.0.1:PORT --scenario NAME --screenshots DIR
//        [--prefix UNIQUE] [--timeout SECONDS] [--chromium PATH] [--verbose]
//
// NAME: chat | status | dashboard | all
//   chat       two pages (two browser contexts) join the same room: join notices, member list, typing indicator,
//              messages both ways, leave notice. Screenshots chat-bob.png, chat-alice.png.
//   status     the status page shows "Connections" = N; a stomp.js client connects from here (and publishes to a
//              topic and a queue): the number becomes N+1, the destinations appear, then it goes back to N when the
//              client leaves. Screenshot status.png.
//   dashboard  the dashboard's update counter and connections chart advance with the broker's metrics stream; its
//              demo publisher's stream is drawn. Screenshot dashboard.png.
//
// Output contract (as stompjs-scenarios.mjs): exactly one JSON line on stdout,
//   {"ok":true,"scenario":NAME,...}  exit 0  |  {"ok":false,"scenario":NAME,"error":"..."}  exit 1  (2: bad usage)
// Only loopback: --base must be a loopback address, and any request a page makes elsewhere is blocked and fails the
// scenario (the pages must not need a CDN). Page errors and console errors (a CSP violation, say) fail it too.
// Every scenario has a hard timeout (default 30 s); a watchdog ends the process, and with it Chromium, if all else hangs.

import { chromium } from 'playwright-core';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const SCENARIOS = ['chat', 'status', 'dashboard'];
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

// ------------------------------------------------------------------------------------------------
// CLI

let cliScenario = null;
function usage(message) {
  process.stdout.write(JSON.stringify({ ok: false, scenario: cliScenario, error: `usage: ${message}` }) + '\n');
  process.stderr.write(
    'usage: node browser-scenarios.mjs --base http://127.0.0.1:PORT --scenario NAME --screenshots DIR\n' +
      '         [--prefix UNIQUE] [--timeout SECONDS] [--chromium PATH] [--verbose]\n' +
      `       NAME: ${SCENARIOS.join(' | ')} | all\n`,
  );
  process.exit(2);
}

function parseArgs(argv) {
  const args = { timeout: 30, chromium: '/usr/bin/chromium', verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--base': args.base = value(); break;
      case '--scenario': args.scenario = cliScenario = value(); break;
      case '--screenshots': args.screenshots = value(); break;
      case '--prefix': args.prefix = value(); break;
      case '--timeout': args.timeout = Number(value()); break;
      case '--chromium': args.chromium = value(); break;
      case '--verbose': args.verbose = true; break;
      case '-h': case '--help': usage('help requested'); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!args.base) usage('--base is required');
  let base;
  try {
    base = new URL(args.base);
  } catch {
    usage('--base must be a URL such as http://127.0.0.1:15674');
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') usage('--base must be an http:// or https:// URL');
  if (!isLoopback(base.hostname)) usage(`--base must be a loopback address (127.0.0.0/8, localhost, [::1]), not ${base.hostname}`);
  args.origin = base.origin;
  args.wsUrl = `${base.protocol === 'https:' ? 'wss' : 'ws'}://${base.host}/ws`;
  if (!args.scenario) usage('--scenario is required');
  if (args.scenario !== 'all' && !SCENARIOS.includes(args.scenario)) usage(`unknown scenario ${args.scenario}`);
  if (!args.screenshots) usage('--screenshots is required');
  if (!Number.isFinite(args.timeout) || args.timeout <= 0) usage('--timeout must be a positive number of seconds');
  // A chat room / destination-safe name: letters, digits, '-', '_' (rooms allow at most 32 characters).
  args.prefix = (args.prefix ?? `bt-${randomBytes(5).toString('hex')}`).replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 24);
  return args;
}

function isLoopback(hostname) {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

// ------------------------------------------------------------------------------------------------
// helpers

class ScenarioError extends Error {}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let verbose = false;
const log = (message) => { if (verbose) process.stderr.write(`[browser] ${message}\n`); };

/** A browser context whose pages may reach only the broker; problems are collected and fail the scenario. */
async function openContext(browser, args, label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const problems = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(args.origin + '/') || url.startsWith('data:')) return route.continue();
    problems.push(`[${label}] request outside the broker blocked: ${url}`);
    return route.abort('blockedbyclient');
  });
  context.on('page', (page) => watch(page, label, problems));
  return { context, problems, label };
}

function watch(page, label, problems) {
  page.on('pageerror', (error) => problems.push(`[${label}] page error: ${error.message}`));
  page.on('console', (message) => {
    log(`[${label}] console.${message.type()}: ${message.text()}`);
    if (message.type() === 'error') problems.push(`[${label}] console error: ${message.text()}`);
  });
  page.on('requestfailed', (request) => {
    if (!request.url().startsWith('data:')) log(`[${label}] request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`[${label}] HTTP ${response.status()} for ${response.url()}`);
  });
}

function checkProblems(...contexts) {
  const problems = contexts.flatMap((c) => c.problems);
  if (problems.length > 0) throw new ScenarioError(problems.join('; '));
}

/** Waits until the element's text matches; the error says what the page showed instead. */
async function waitForText(page, selector, pattern, what, timeout = 10_000) {
  try {
    await page.waitForFunction(
      ([sel, source, flags]) => {
        const node = document.querySelector(sel);
        return node !== null && new RegExp(source, flags).test(node.textContent ?? '');
      },
      [selector, pattern.source, pattern.flags],
      { timeout, polling: 100 },
    );
  } catch (error) {
    const shown = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => '(no such element)');
    throw new ScenarioError(`${what}: ${selector} never matched ${pattern} within ${timeout} ms; it shows ${JSON.stringify(shown?.slice(-300))}`);
  }
}

const COMPARE = new Set(['>=', '===']);

/** Waits until the element shows a number that compares to `target` (op '>=' or '==='); returns the number. */
async function waitForNumber(page, selector, op, target, what, timeout = 10_000) {
  if (!COMPARE.has(op)) throw new Error(`unknown comparison ${op}`);
  try {
    const handle = await page.waitForFunction(
      ([sel, operator, goal]) => {
        const text = document.querySelector(sel)?.textContent ?? '';
        const value = Number(text.replace(/[,\s]/g, ''));
        if (text === '' || text === '—' || !Number.isFinite(value)) return false;
        return (operator === '>=' ? value >= goal : value === goal) ? value : false;
      },
      [selector, op, target],
      { timeout, polling: 100 },
    );
    return await handle.jsonValue();
  } catch {
    const shown = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => '(no such element)');
    throw new ScenarioError(`${what}: ${selector} never showed a number ${op} ${target} within ${timeout} ms; it shows ${JSON.stringify(shown)}`);
  }
}

/** Waits until a status-page destinations row for `destination` has the given cell texts (by column index). */
async function waitForDestinationRow(page, destination, cells, what, timeout = 10_000) {
  try {
    await page.waitForFunction(
      ([name, expected]) => [...document.querySelectorAll('#nodes table.destinations tbody tr')].some((row) =>
        row.cells[0]?.textContent === name && Object.entries(expected).every(([i, text]) => row.cells[Number(i)]?.textContent === text)),
      [destination, cells],
      { timeout, polling: 100 },
    );
  } catch {
    const rows = await page.evaluate(() => [...document.querySelectorAll('#nodes table.destinations tbody tr')]
      .map((row) => [...row.cells].map((cell) => cell.textContent).join(' | '))).catch(() => []);
    throw new ScenarioError(`${what}: no row for ${destination} with ${JSON.stringify(cells)} within ${timeout} ms; rows: ${JSON.stringify(rows)}`);
  }
}

async function waitConnected(page, what) {
  try {
    await page.waitForSelector('body[data-stomp="connected"]', { timeout: 10_000 });
  } catch {
    const state = await page.evaluate(() => `${document.body.dataset.stomp}: ${document.getElementById('conn')?.title ?? ''}`).catch(() => '?');
    throw new ScenarioError(`${what}: the page's stomp.js client did not connect within 10 s (state ${state})`);
  }
}

async function screenshot(page, args, name) {
  const path = join(args.screenshots, name);
  await page.screenshot({ path, fullPage: true });
  const size = statSync(path).size;
  if (size === 0) throw new ScenarioError(`screenshot ${path} is empty`);
  log(`screenshot ${path} (${size} bytes)`);
  return path;
}

/** A plain stomp.js client from Node (what another application connecting would be). */
async function stompClient(args) {
  const client = new Client({
    webSocketFactory: () => new WebSocket(args.wsUrl, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: () => {},
  });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (frame) => reject(new ScenarioError(`stomp.js client: ERROR ${frame.headers.message}`));
    client.onWebSocketError = () => reject(new ScenarioError(`stomp.js client: WebSocket error on ${args.wsUrl}`));
    setTimeout(() => reject(new ScenarioError('stomp.js client: no CONNECTED within 5 s')), 5000).unref();
  });
  client.activate();
  await connected;
  return client;
}

// ------------------------------------------------------------------------------------------------
// scenarios

async function chat(browser, args) {
  const room = args.prefix;
  const a = await openContext(browser, args, 'alice');
  const b = await openContext(browser, args, 'bob');
  const alice = await a.context.newPage();
  const bob = await b.context.newPage();
  await Promise.all([alice.goto(`${args.origin}/chat.html`), bob.goto(`${args.origin}/chat.html`)]);
  await waitConnected(alice, 'alice');
  await waitConnected(bob, 'bob');

  await alice.fill('#nick', 'alice');
  await alice.fill('#room', room);
  await alice.click('#join');
  await waitForText(alice, '#messages', new RegExp(`You joined #${room}`), 'alice sees her own join notice');

  await bob.fill('#nick', 'bob');
  await bob.fill('#room', room);
  await bob.click('#join');
  await waitForText(alice, '#messages', new RegExp(`bob joined #${room}`), 'alice sees the join notice of bob');
  await waitForText(bob, '#members', /alice/, 'bob learns that alice is in the room');
  await waitForText(alice, '#members', /bob/, 'alice lists bob in the room');

  await bob.locator('#message').pressSequentially('hello from bob', { delay: 15 });
  await waitForText(alice, '#typing', /bob is typing/, 'alice sees the typing indicator of bob');
  await bob.press('#message', 'Enter');
  await waitForText(alice, '#messages .msg:not(.mine) .text', /^hello from bob$/, 'alice receives the message of bob');
  await waitForText(alice, '#typing', /^$/, 'the typing indicator goes once bob has sent');

  await alice.locator('#message').pressSequentially('hi bob, the broker works', { delay: 5 });
  await alice.press('#message', 'Enter');
  await waitForText(bob, '#messages .msg:not(.mine) .text', /^hi bob, the broker works$/, 'bob receives the reply of alice');
  await waitForText(bob, '#messages .msg.mine .text', /^hello from bob$/, 'bob sees his own message');
  await bob.locator('#message').pressSequentially('typing again', { delay: 5 }); // leave an indicator showing for the screenshot
  await waitForText(alice, '#typing', /bob is typing/, 'alice sees bob typing again');
  const bobShot = await screenshot(bob, args, 'chat-bob.png');

  await bob.click('#leave');
  await waitForText(alice, '#messages', new RegExp(`bob left #${room}`), 'alice sees the leave notice of bob');
  await waitForText(alice, '#members', /^(?![\s\S]*bob)/, 'bob is gone from the member list of alice');
  const aliceShot = await screenshot(alice, args, 'chat-alice.png');

  checkProblems(a, b);
  await a.context.close();
  await b.context.close();
  return { room, screenshots: [aliceShot, bobShot] };
}

async function status(browser, args) {
  const c = await openContext(browser, args, 'status');
  const page = await c.context.newPage();
  await page.goto(`${args.origin}/`);
  await waitConnected(page, 'status page');
  await waitForText(page, '#source', /Live over STOMP/, 'the status page gets snapshots over STOMP');
  // The page's own connection counts: at least 1.
  const before = await waitForNumber(page, '#total-connections', '>=', 1, 'the status page shows a connection count');

  const client = await stompClient(args);
  let after;
  try {
    const topic = `/topic/${args.prefix}.load`;
    const queue = `/queue/${args.prefix}.backlog`;
    client.subscribe(topic, () => {});
    for (let i = 0; i < 3; i++) client.publish({ destination: queue, body: `job ${i}` });
    const load = setInterval(() => client.publish({ destination: topic, body: 'tick' }), 50);
    try {
      after = await waitForNumber(page, '#total-connections', '===', before + 1, 'the count goes up by one when a client connects');
      // Columns: destination, kind, msg/s, published, subscribers, queue depth.
      await waitForDestinationRow(page, topic, { 1: 'topic', 4: '1', 5: '—' }, 'the busy topic is listed with its subscriber');
      await waitForDestinationRow(page, queue, { 1: 'queue', 3: '3', 4: '0', 5: '3' }, 'the queue is listed with depth 3');
      await sleep(1500); // a couple of points of traffic on the chart
      await screenshot(page, args, 'status.png');
    } finally {
      clearInterval(load);
    }
  } finally {
    await client.deactivate();
  }
  const back = await waitForNumber(page, '#total-connections', '===', before, 'the count goes back down when the client leaves');

  checkProblems(c);
  await c.context.close();
  return { before, after, back };
}

async function dashboard(browser, args) {
  const c = await openContext(browser, args, 'dashboard');
  const page = await c.context.newPage();
  await page.goto(`${args.origin}/dashboard.html`);
  await waitConnected(page, 'dashboard');
  const first = await waitForNumber(page, '#updates', '>=', 2, 'the dashboard receives metrics snapshots');
  const connections = await waitForNumber(page, '#dash-connections', '>=', 1, 'the dashboard shows the connection count');

  await page.click('#demo-toggle');
  try {
    await page.waitForFunction(() => Number(document.getElementById('demo-chart').dataset.points ?? 0) >= 6, null, { timeout: 10_000, polling: 100 });
  } catch {
    throw new ScenarioError('the demo stream did not reach the chart: fewer than 3 demo messages drawn within 10 s');
  }
  await waitForText(page, '#demo-info', /1 publisher/, 'the dashboard counts its own demo publisher');
  const later = await waitForNumber(page, '#updates', '>=', first + 2, 'the dashboard keeps updating');
  const points = await page.evaluate(() => Number(document.getElementById('connections-chart').dataset.points));
  if (!(points >= 3)) throw new ScenarioError(`the connections chart has ${points} points after ${later} updates`);
  await sleep(2000); // a little more history on the charts for the people who look at the screenshot
  await screenshot(page, args, 'dashboard.png');
  await page.click('#demo-toggle');

  checkProblems(c);
  await c.context.close();
  return { updates: later, connections, chartPoints: points };
}

const RUNNERS = { chat, status, dashboard };

// ------------------------------------------------------------------------------------------------
// main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  verbose = args.verbose;
  mkdirSync(args.screenshots, { recursive: true });
  const names = args.scenario === 'all' ? SCENARIOS : [args.scenario];
  const budget = args.timeout * 1000 * names.length + 15_000;
  const watchdog = setTimeout(() => {
    process.stdout.write(JSON.stringify({ ok: false, scenario: args.scenario, error: `watchdog: run exceeded ${budget} ms` }) + '\n');
    process.exit(1); // playwright-core kills the browser it launched on exit
  }, budget);

  let browser;
  const result = { ok: true, scenario: args.scenario };
  try {
    browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 });
    for (const name of names) {
      let timer;
      const limit = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new ScenarioError(`scenario ${name} exceeded its ${args.timeout} s timeout`)), args.timeout * 1000);
      });
      try {
        result[name] = await Promise.race([RUNNERS[name](browser, args), limit]);
      } finally {
        clearTimeout(timer);
      }
    }
  } catch (error) {
    result.ok = false;
    result.error = error instanceof ScenarioError ? error.message : `${error?.name}: ${error?.message}`;
    if (!(error instanceof ScenarioError)) process.stderr.write(`${error?.stack}\n`);
  } finally {
    await browser?.close().catch(() => {});
  }

  clearTimeout(watchdog);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.ok ? 0 : 1);
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ ok: false, scenario: cliScenario, error: `crash: ${error?.message}` }) + '\n');
  process.exit(1);
});
