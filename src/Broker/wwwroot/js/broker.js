// Shared by the broker's pages: a stomp.js client for this broker's own WebSocket endpoint (same origin), the
// connection badge in the top bar, a credentials prompt when the broker requires login, and number formatting.
// stomp.js is the UMD bundle vendored at build time into /vendor/stomp.umd.min.js (global `StompJs`).

export const STATUS_TOPIC = '/topic/stompbroker.status';

const CREDENTIALS_KEY = 'stompbroker.credentials';

/** The broker's WebSocket URL on the origin that served this page. */
export function brokerUrl(path = '/ws') {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

function savedCredentials() {
  try {
    return JSON.parse(sessionStorage.getItem(CREDENTIALS_KEY) ?? 'null');
  } catch {
    return null;
  }
}

/** Shows the connection state in the top bar and on <body data-stomp> (tests wait on it). */
export function setConnectionState(state, detail) {
  document.body.dataset.stomp = state;
  const badge = document.getElementById('conn');
  if (!badge) return;
  badge.dataset.state = state;
  badge.querySelector('span').textContent =
    { connected: 'connected', connecting: 'connecting…', disconnected: 'disconnected', error: 'refused' }[state] ?? state;
  badge.title = detail ?? '';
}

// An ERROR that answers CONNECT comes before any version is agreed, so stomp.js leaves STOMP 1.2 header escapes
// (\c for ':', \n, \r, \\) in place; undo them for display.
function unescapeHeader(value) {
  return value.replace(/\\([cnr\\])/g, (_, c) => ({ c: ':', n: '\n', r: '\r', '\\': '\\' })[c]);
}

/**
 * Connects to the broker with stomp.js and keeps reconnecting. `onConnect(client)` runs after each (re)connect, so
 * subscriptions made there come back after a reconnect. Returns the stomp.js Client, or null when stomp.js is missing.
 */
export function connectBroker({ onConnect, onDisconnect, onError, path = '/ws' } = {}) {
  const StompJs = window.StompJs;
  if (!StompJs) {
    setConnectionState('error', 'stomp.js missing');
    onError?.('stomp.js was not found at /vendor/stomp.umd.min.js: the broker was built without npm (see src/Broker/Broker.csproj).');
    return null;
  }

  const credentials = savedCredentials();
  const client = new StompJs.Client({
    brokerURL: brokerUrl(path),
    connectHeaders: credentials ? { login: credentials.login, passcode: credentials.passcode } : {},
    reconnectDelay: 2000,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });
  let connected = false;
  client.onConnect = () => {
    connected = true;
    hideLogin();
    setConnectionState('connected');
    onConnect?.(client);
  };
  client.onWebSocketClose = () => {
    if (connected) onDisconnect?.();
    connected = false;
    if (client.active && document.body.dataset.stomp !== 'error') setConnectionState('connecting');
  };
  client.onStompError = (frame) => {
    const message = unescapeHeader(frame.headers.message ?? 'the broker sent an ERROR');
    if (!connected) {
      // CONNECT refused (credentials, virtual host, limits): ask instead of retrying the same thing every 2 s.
      setConnectionState('error', message);
      client.deactivate();
      showLogin(message, (login, passcode) => {
        sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify({ login, passcode }));
        client.connectHeaders = { login, passcode };
        setConnectionState('connecting');
        client.activate();
      });
      return;
    }

    onError?.(message);
  };
  setConnectionState('connecting');
  client.activate();
  return client;
}

function hideLogin() {
  document.getElementById('login-panel')?.remove();
}

function showLogin(message, submit) {
  hideLogin();
  const panel = element('form', { id: 'login-panel', className: 'login-panel' });
  panel.append(
    element('p', {}, element('strong', { textContent: 'The broker refused the connection: ' }), message),
    element('input', { type: 'text', name: 'login', placeholder: 'login', autocomplete: 'username', required: true }),
    element('input', { type: 'password', name: 'passcode', placeholder: 'passcode or token', autocomplete: 'current-password' }),
    element('button', { type: 'submit', textContent: 'Connect' }),
  );
  panel.addEventListener('submit', (event) => {
    event.preventDefault();
    submit(panel.elements.login.value, panel.elements.passcode.value);
  });
  document.querySelector('.topbar').after(panel);
}

/** document.createElement with properties; never parses HTML (everything shown comes from the network). */
export function element(tag, properties = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(properties)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'style') Object.assign(node.style, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** Parses a status snapshot MESSAGE body; null when it is not one. */
export function parseSnapshot(body) {
  try {
    const snapshot = JSON.parse(body);
    return typeof snapshot?.node === 'string' ? snapshot : null;
  } catch {
    return null;
  }
}

const numberFormat = new Intl.NumberFormat('en-US');

export function formatNumber(value) {
  return value === null || value === undefined ? '—' : numberFormat.format(value);
}

export function formatRate(value) {
  if (value === null || value === undefined) return '—';
  if (value === 0) return '0';
  if (value < 10) return value.toFixed(1);
  return numberFormat.format(Math.round(value));
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s % 60}s`;
}

// Distinct, readable on white; a node keeps its color for as long as the page lives.
const PALETTE = ['#2f6fed', '#12a150', '#e4572e', '#8e44ad', '#d4a017', '#0e9aa7', '#c2185b', '#5d6d7e'];
const assigned = new Map();

export function colorFor(key) {
  if (!assigned.has(key)) assigned.set(key, PALETTE[assigned.size % PALETTE.length]);
  return assigned.get(key);
}
