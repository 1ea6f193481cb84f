// The status page: every node's snapshot from /topic/stompbroker.status (over this broker's own /ws), a card per node
// and a chart of messages per second. Before the first message, and whenever STOMP is down, it polls /api/status
// (this node only) so the page is never blank.
import {
  STATUS_TOPIC, connectBroker, element, parseSnapshot, colorFor,
  formatNumber, formatRate, formatBytes, formatDuration,
} from './broker.js';
import { LineChart } from './chart.js';

const nodes = new Map(); // node id -> { snapshot, receivedAt, card, refs }
const chart = new LineChart(document.getElementById('rate-chart'), {
  windowSeconds: 120,
  format: (v) => (Number.isInteger(v) ? formatNumber(v) : v.toFixed(1)),
});
let live = false;
let webSocketPath = '/ws';

function apply(snapshot, via) {
  let entry = nodes.get(snapshot.node);
  if (!entry) {
    entry = createCard(snapshot);
    nodes.set(snapshot.node, entry);
    sortCards();
  }

  // The same snapshot may come both by HTTP and STOMP: chart each one once.
  if (entry.snapshot?.timestamp !== snapshot.timestamp) {
    chart.add(snapshot.node, snapshot.publishedPerSecond, { color: colorFor(snapshot.node) });
  }

  entry.snapshot = snapshot;
  entry.receivedAt = Date.now();
  updateCard(entry);
  updateTotals();
  renderLegend();
  document.getElementById('source').textContent = via === 'stomp'
    ? `Live over STOMP (${location.host}${webSocketPath}), ${nodes.size} node${nodes.size === 1 ? '' : 's'}`
    : 'STOMP not connected: polling /api/status (this node only)';
}

function createCard(snapshot) {
  const color = colorFor(snapshot.node);
  const refs = {};
  const stat = (key, label) => {
    refs[key] = element('dd', { textContent: '—' });
    return element('div', {}, element('dt', { textContent: label }), refs[key]);
  };
  refs.state = element('span', { className: 'pill' });
  refs.meta = element('span', { className: 'muted small' });
  refs.backends = element('div');
  refs.rows = element('tbody');
  refs.footer = element('p', { className: 'muted small' });
  const card = element('article', { className: 'card node', dataset: { node: snapshot.node } },
    element('div', { className: 'card-head' },
      element('h2', { className: 'node-name' },
        element('span', { className: 'swatch', style: { background: color } }),
        element('code', { textContent: snapshot.node })),
      refs.state,
      element('span', { className: 'spacer' }),
      refs.meta),
    element('dl', { className: 'stats' },
      stat('connections', 'Connections'),
      stat('sessions', 'Sessions'),
      stat('subscriptions', 'Subscriptions'),
      stat('rate', 'Published msg/s'),
      stat('published', 'Published total'),
      stat('memory', 'Working set'),
      stat('heap', 'GC heap'),
      stat('threads', 'Threads'),
      stat('cpu', 'CPU')),
    refs.backends,
    element('table', { className: 'destinations' },
      element('thead', {}, element('tr', {},
        element('th', { textContent: 'Destination' }),
        element('th', { textContent: 'Kind' }),
        element('th', { className: 'num', textContent: 'Msg/s' }),
        element('th', { className: 'num', textContent: 'Published' }),
        element('th', { className: 'num', textContent: 'Subscribers' }),
        element('th', { className: 'num', textContent: 'Queue depth' }))),
      refs.rows),
    refs.footer);
  return { card, refs, snapshot: null, receivedAt: 0 };
}

function updateCard(entry) {
  const { snapshot: s, refs } = entry;
  refs.connections.textContent = formatNumber(s.connections);
  refs.sessions.textContent = formatNumber(s.sessions);
  refs.subscriptions.textContent = formatNumber(s.subscriptions);
  refs.rate.textContent = formatRate(s.publishedPerSecond);
  refs.published.textContent = formatNumber(s.published);
  refs.memory.textContent = formatBytes(s.process.workingSetBytes);
  refs.heap.textContent = formatBytes(s.process.gcHeapBytes);
  refs.threads.textContent = formatNumber(s.process.threads);
  refs.cpu.textContent = `${s.process.cpuPercent.toFixed(1)} %`;

  const main = s.backends[0];
  refs.state.dataset.state = main?.state ?? 'warn';
  refs.state.textContent = main ? `${main.kind} · ${main.state}` : 'no backend';
  refs.state.title = main ? `backend reconnects: ${main.reconnects}` : '';

  refs.backends.replaceChildren();
  if (s.backends.length > 1) {
    refs.backends.append(element('h3', { textContent: 'Virtual hosts' }), element('table', {},
      element('thead', {}, element('tr', {},
        element('th', { textContent: 'Virtual host' }), element('th', { textContent: 'Backend' }),
        element('th', { textContent: 'State' }), element('th', { className: 'num', textContent: 'Reconnects' }))),
      element('tbody', {}, ...s.backends.map((b) => element('tr', {},
        element('td', { className: 'dest', textContent: b.virtualHost }),
        element('td', { textContent: b.kind }),
        element('td', {}, element('span', { className: 'pill', dataset: { state: b.state }, textContent: b.state })),
        element('td', { className: 'num', textContent: formatNumber(b.reconnects) }))))));
  }

  const multipleHosts = s.backends.length > 1;
  refs.rows.replaceChildren(...s.destinations.map((d) => element('tr', {},
    element('td', { className: 'dest', textContent: multipleHosts ? `${d.virtualHost} ${d.destination}` : d.destination }),
    element('td', {}, element('span', { className: 'kind', dataset: { kind: d.kind }, textContent: d.kind })),
    element('td', { className: 'num', textContent: formatRate(d.publishedPerSecond) }),
    element('td', { className: 'num', textContent: formatNumber(d.published) }),
    element('td', { className: 'num', textContent: formatNumber(d.subscribers) }),
    element('td', { className: 'num', textContent: d.depth === null ? '—' : formatNumber(d.depth), title: d.depth === null ? 'not known for this destination' : '' }))));
  if (s.destinations.length === 0) {
    refs.rows.append(element('tr', {}, element('td', { className: 'empty', colSpan: 6, textContent: 'No active destinations.' })));
  }
  refs.footer.textContent = s.destinationsTotal > s.destinations.length
    ? `Showing the ${s.destinations.length} busiest of ${s.destinationsTotal} destinations.`
    : '';
  refreshMeta(entry);
}

function refreshMeta(entry) {
  const s = entry.snapshot;
  const age = (Date.now() - entry.receivedAt) / 1000;
  const stale = age > s.intervalSeconds * 3 + 2;
  entry.card.classList.toggle('stale', stale);
  if (stale) {
    entry.refs.state.dataset.state = 'stale';
    entry.refs.state.textContent = `no snapshot for ${formatDuration(age)}`;
  }
  entry.refs.meta.textContent =
    `v${s.version} · up ${formatDuration(s.uptimeSeconds + age)} · ${stale ? 'last seen' : 'updated'} ${age < 1 ? 'just now' : `${formatDuration(age)} ago`}`;
  return stale;
}

function updateTotals() {
  const current = [...nodes.values()].filter((n) => !n.card.classList.contains('stale')).map((n) => n.snapshot);
  const sum = (pick) => current.reduce((total, s) => total + pick(s), 0);
  setTile('total-nodes', formatNumber(current.length));
  setTile('total-connections', formatNumber(sum((s) => s.connections)));
  setTile('total-sessions', formatNumber(sum((s) => s.sessions)));
  setTile('total-subscriptions', formatNumber(sum((s) => s.subscriptions)));
  setTile('total-rate', formatRate(sum((s) => s.publishedPerSecond)));
}

function setTile(id, text) {
  const target = document.getElementById(id);
  if (target.textContent === text) return;
  target.textContent = text;
  const tile = target.closest('.tile');
  tile.classList.remove('flash');
  void tile.offsetWidth; // restart the animation
  tile.classList.add('flash');
}

function renderLegend() {
  document.getElementById('legend').replaceChildren(...[...nodes.keys()].map((node) => element('span', {},
    element('span', { className: 'swatch', style: { background: colorFor(node) } }), node)));
}

function sortCards() {
  const container = document.getElementById('nodes');
  container.replaceChildren(...[...nodes.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, n]) => n.card));
}

function showError(message) {
  const banner = document.getElementById('error');
  banner.hidden = !message;
  banner.textContent = message ?? '';
}

async function poll() {
  try {
    const response = await fetch('/api/status', { cache: 'no-store' });
    if (!response.ok) {
      if (!live) showError(`/api/status: ${response.status} ${await response.text()}`);
      return;
    }
    const snapshot = await response.json();
    webSocketPath = snapshot.webSocketPath ?? webSocketPath;
    if (!live) apply(snapshot, 'http');
  } catch (error) {
    if (!live) showError(`The broker does not answer: ${error.message}`);
  }
}

// Every second: ages, stale nodes (gone after a minute without a snapshot), totals; and the fallback poll.
setInterval(() => {
  for (const [node, entry] of nodes) {
    if (entry.snapshot && refreshMeta(entry) && Date.now() - entry.receivedAt > 60_000) {
      entry.card.remove();
      nodes.delete(node);
      chart.remove(node);
      renderLegend();
    }
  }
  updateTotals();
  chart.draw();
}, 1000);
setInterval(() => { if (!live) poll(); }, 2000);

await poll();
connectBroker({
  path: webSocketPath,
  onConnect: (client) => {
    live = true;
    showError(null);
    client.subscribe(STATUS_TOPIC, (message) => {
      const snapshot = parseSnapshot(message.body);
      if (snapshot) apply(snapshot, 'stomp');
    });
  },
  onDisconnect: () => { live = false; },
  onError: (message) => showError(`STOMP: ${message}`),
});
