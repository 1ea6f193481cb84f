// Dashboard demo: what an application's live dashboard looks like on top of a STOMP topic. It draws the broker's own
// metrics stream (/topic/stompbroker.status, one snapshot per node per second) and a demo stream (/topic/demo.metrics)
// that any dashboard can publish: a random walk of "orders/s" and "latency ms", twice a second.
import { STATUS_TOPIC, connectBroker, element, parseSnapshot, colorFor, formatNumber, formatRate, formatBytes } from './broker.js';
import { LineChart, drawGauge } from './chart.js';

const DEMO_TOPIC = '/topic/demo.metrics';
const $ = (id) => document.getElementById(id);

const nodes = new Map(); // node id -> { snapshot, receivedAt, refs }
const sparks = {
  connections: new LineChart($('spark-connections'), { windowSeconds: 60, compact: true }),
  rate: new LineChart($('spark-rate'), { windowSeconds: 60, compact: true }),
  memory: new LineChart($('spark-memory'), { windowSeconds: 60, compact: true, minMax: 1024 * 1024 }),
  subscriptions: new LineChart($('spark-subscriptions'), { windowSeconds: 60, compact: true }),
};
const connectionsChart = new LineChart($('connections-chart'), { windowSeconds: 120, minStep: 1, format: formatNumber });
const demoChart = new LineChart($('demo-chart'), { windowSeconds: 60, format: (v) => formatNumber(Math.round(v)) });
let updates = 0;
let demoTimer = null;
let demo = { orders: 120, latency: 35 };
let client = null;
const demoPublishers = new Map(); // publisher id -> last seen
const myId = Math.random().toString(16).slice(2, 10);

function onSnapshot(snapshot) {
  updates++;
  $('updates').textContent = formatNumber(updates);
  nodes.set(snapshot.node, { snapshot, receivedAt: Date.now(), refs: nodes.get(snapshot.node)?.refs ?? createGauge(snapshot.node) });
  connectionsChart.add(snapshot.node, snapshot.connections, { color: colorFor(snapshot.node) });
  updateNode(nodes.get(snapshot.node));
  updateTotals();
}

function current() {
  const now = Date.now();
  return [...nodes.values()].filter((n) => now - n.receivedAt < (n.snapshot.intervalSeconds * 3 + 2) * 1000).map((n) => n.snapshot);
}

function updateTotals() {
  const live = current();
  const sum = (pick) => live.reduce((total, s) => total + pick(s), 0);
  const totals = {
    connections: sum((s) => s.connections),
    rate: sum((s) => s.publishedPerSecond),
    memory: sum((s) => s.process.workingSetBytes),
    subscriptions: sum((s) => s.subscriptions),
  };
  $('dash-connections').textContent = formatNumber(totals.connections);
  $('dash-rate').textContent = formatRate(totals.rate);
  $('dash-memory').textContent = formatBytes(totals.memory);
  $('dash-subscriptions').textContent = formatNumber(totals.subscriptions);
  for (const [key, chart] of Object.entries(sparks)) chart.add('total', totals[key], { color: '#2f6fed' });
  $('legend').replaceChildren(...[...nodes.keys()].map((node) => element('span', {},
    element('span', { className: 'swatch', style: { background: colorFor(node) } }), node)));
}

function createGauge(node) {
  const container = $('gauges');
  container.querySelector('p')?.remove();
  const refs = {
    cpu: element('canvas'),
    memoryBar: element('span'),
    memory: element('b'),
    heap: element('b'),
    connections: element('b'),
    rate: element('b'),
    threads: element('b'),
  };
  container.append(element('div', { className: 'gauge-card', dataset: { node } },
    element('h4', {}, element('span', { className: 'swatch', style: { background: colorFor(node) } }), node),
    refs.cpu,
    element('div', { className: 'kv' }, element('span', { textContent: 'Working set' }), refs.memory),
    element('div', { className: 'bar' }, refs.memoryBar),
    element('div', { className: 'kv' }, element('span', { textContent: 'GC heap' }), refs.heap),
    element('div', { className: 'kv' }, element('span', { textContent: 'Connections' }), refs.connections),
    element('div', { className: 'kv' }, element('span', { textContent: 'Published msg/s' }), refs.rate),
    element('div', { className: 'kv' }, element('span', { textContent: 'Threads' }), refs.threads)));
  return refs;
}

function updateNode({ snapshot: s, refs }) {
  drawGauge(refs.cpu, s.process.cpuPercent, { label: 'CPU %', color: colorFor(s.node), format: (v) => `${v.toFixed(1)}%` });
  // The bar is relative to 1 GiB, or to the largest working set seen, whichever is more.
  const scale = Math.max(1024 ** 3, ...[...nodes.values()].map((n) => n.snapshot.process.workingSetBytes));
  refs.memoryBar.style.width = `${(100 * s.process.workingSetBytes) / scale}%`;
  refs.memory.textContent = formatBytes(s.process.workingSetBytes);
  refs.heap.textContent = formatBytes(s.process.gcHeapBytes);
  refs.connections.textContent = formatNumber(s.connections);
  refs.rate.textContent = formatRate(s.publishedPerSecond);
  refs.threads.textContent = formatNumber(s.process.threads);
}

function onDemo(body) {
  try {
    const m = JSON.parse(body);
    if (typeof m.orders !== 'number' || typeof m.latency !== 'number') return;
    demoChart.add('orders', m.orders, { color: '#12a150', label: 'orders/s' });
    demoChart.add('latency', m.latency, { color: '#e4572e', label: 'latency ms' });
    demoPublishers.set(m.publisher, Date.now());
    const active = [...demoPublishers.values()].filter((t) => Date.now() - t < 3000).length;
    $('demo-info').replaceChildren(
      element('span', { className: 'legend' },
        element('span', {}, element('span', { className: 'swatch', style: { background: '#12a150' } }), `orders/s ${formatNumber(Math.round(m.orders))}`),
        element('span', {}, element('span', { className: 'swatch', style: { background: '#e4572e' } }), `latency ${Math.round(m.latency)} ms`),
        element('span', { textContent: `${active} publisher${active === 1 ? '' : 's'}` })));
  } catch {
    // not ours
  }
}

function toggleDemo() {
  if (demoTimer) {
    clearInterval(demoTimer);
    demoTimer = null;
    $('demo-toggle').textContent = 'Start demo publisher';
    return;
  }
  demoTimer = setInterval(() => {
    if (!client?.connected) return;
    demo = {
      orders: Math.max(0, demo.orders + (Math.random() - 0.48) * 18),
      latency: Math.min(400, Math.max(5, demo.latency + (Math.random() - 0.5) * 8)),
    };
    client.publish({
      destination: DEMO_TOPIC,
      body: JSON.stringify({ ...demo, publisher: myId, ts: Date.now() }),
      headers: { 'content-type': 'application/json' },
    });
  }, 500);
  $('demo-toggle').textContent = 'Stop demo publisher';
}

$('demo-toggle').addEventListener('click', toggleDemo);
setInterval(() => {
  connectionsChart.draw();
  demoChart.draw();
}, 1000);

client = connectBroker({
  onConnect: (c) => {
    c.subscribe(STATUS_TOPIC, (message) => {
      const snapshot = parseSnapshot(message.body);
      if (snapshot) onSnapshot(snapshot);
    });
    c.subscribe(DEMO_TOPIC, (message) => onDemo(message.body));
  },
});
