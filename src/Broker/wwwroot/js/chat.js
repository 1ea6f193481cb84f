// Chat demo: rooms are topics (/topic/chat.<room>), with JSON messages of four types:
//   {type:"join"|"leave"|"here"|"message", id, nick, text?, ts}
// "here" answers a join so a newcomer learns who is already in the room. Typing goes to /topic/chat.<room>.typing as
// {id, nick, typing}, at most once every 2 s per person while they type (a throttle), and expires after 4 s.
import { connectBroker, element, colorFor } from './broker.js';

const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
const SUGGESTED_ROOMS = ['lobby', 'ops', 'random'];
const TYPING_THROTTLE_MS = 2000;
const TYPING_EXPIRES_MS = 4000;

const $ = (id) => document.getElementById(id);
const me = { id: randomId(), nick: '' };
const rooms = new Set(SUGGESTED_ROOMS);
const members = new Map(); // id -> nick
const typers = new Map(); // id -> { nick, until }
let room = null;
let subscriptions = [];
let lastTypingSent = 0;

const params = new URLSearchParams(location.search);
$('nick').value = params.get('nick') ?? localStorage.getItem('stompbroker.chat.nick') ?? '';
$('room').value = params.get('room') ?? 'lobby';
renderRooms();

const client = connectBroker({
  onConnect: () => {
    $('join').disabled = false;
    if (room) enterRoom(room, false); // back after a reconnect: subscribe again, quietly
  },
  onDisconnect: () => {
    subscriptions = [];
    setComposerEnabled(false);
  },
  onError: (message) => notice(`Broker: ${message}`, 'error'),
});
$('join').disabled = true;

$('join-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const nick = $('nick').value.trim();
  const name = $('room').value.trim();
  if (!nick || !ROOM_NAME.test(name) || !client?.connected) return;
  me.nick = nick;
  localStorage.setItem('stompbroker.chat.nick', nick);
  if (room === name) return;
  if (room) leaveRoom();
  rooms.add(name);
  enterRoom(name, true);
});

$('leave').addEventListener('click', () => leaveRoom());

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('message').value.trim();
  if (!text || !room) return;
  send(roomTopic(), { type: 'message', text });
  $('message').value = '';
  sendTyping(false);
});

$('message').addEventListener('input', () => {
  const now = Date.now();
  if ($('message').value.trim() === '') {
    sendTyping(false);
  } else if (now - lastTypingSent >= TYPING_THROTTLE_MS) {
    sendTyping(true);
  }
});

// Best effort: tell the room when the page goes away.
addEventListener('pagehide', () => {
  if (room && client?.connected) send(roomTopic(), { type: 'leave' });
});

setInterval(() => {
  const now = Date.now();
  for (const [id, typer] of typers) if (typer.until < now) typers.delete(id);
  renderTyping();
}, 500);

function roomTopic(name = room) {
  return `/topic/chat.${name}`;
}

function enterRoom(name, announce) {
  room = name;
  subscriptions.forEach((s) => s.unsubscribe());
  subscriptions = [
    client.subscribe(roomTopic(name), (message) => onRoomMessage(message.body)),
    client.subscribe(`${roomTopic(name)}.typing`, (message) => onTyping(message.body)),
  ];
  if (announce) {
    members.clear();
    typers.clear();
    $('messages').replaceChildren();
    send(roomTopic(), { type: 'join' });
  } else {
    send(roomTopic(), { type: 'here' });
  }
  members.set(me.id, me.nick);
  $('room-title').textContent = `#${name}`;
  $('room-topic').textContent = roomTopic(name);
  $('leave').disabled = false;
  setComposerEnabled(true);
  $('message').focus();
  renderRooms();
  renderMembers();
}

function leaveRoom() {
  if (!room) return;
  if (client?.connected) {
    sendTyping(false);
    send(roomTopic(), { type: 'leave' });
  }
  subscriptions.forEach((s) => s.unsubscribe());
  subscriptions = [];
  notice(`You left #${room}`, 'leave');
  room = null;
  members.clear();
  typers.clear();
  $('room-title').textContent = 'No room';
  $('room-topic').textContent = '';
  $('leave').disabled = true;
  setComposerEnabled(false);
  renderRooms();
  renderMembers();
  renderTyping();
}

function send(destination, payload) {
  client.publish({
    destination,
    body: JSON.stringify({ ...payload, id: me.id, nick: me.nick, ts: Date.now() }),
    headers: { 'content-type': 'application/json' },
  });
}

function sendTyping(typing) {
  if (!room || !client?.connected) return;
  if (!typing && lastTypingSent === 0) return;
  client.publish({
    destination: `${roomTopic()}.typing`,
    body: JSON.stringify({ id: me.id, nick: me.nick, typing }),
    headers: { 'content-type': 'application/json' },
  });
  lastTypingSent = typing ? Date.now() : 0;
}

function parse(body) {
  try {
    const value = JSON.parse(body);
    if (typeof value?.id !== 'string' || typeof value?.nick !== 'string') return null;
    value.nick = value.nick.slice(0, 24) || 'anonymous';
    return value;
  } catch {
    return null;
  }
}

function onRoomMessage(body) {
  const m = parse(body);
  if (!m) return;
  const mine = m.id === me.id;
  switch (m.type) {
    case 'join':
      members.set(m.id, m.nick);
      notice(mine ? `You joined #${room}` : `${m.nick} joined #${room}`, 'join');
      // Let the newcomer know who is here (spread out a little, so a busy room does not answer all at once).
      if (!mine) setTimeout(() => room && client.connected && send(roomTopic(), { type: 'here' }), Math.random() * 400);
      break;
    case 'here':
      members.set(m.id, m.nick);
      break;
    case 'leave':
      if (mine) return;
      members.delete(m.id);
      typers.delete(m.id);
      notice(`${m.nick} left #${room}`, 'leave');
      break;
    case 'message':
      if (typeof m.text !== 'string') return;
      members.set(m.id, m.nick);
      typers.delete(m.id);
      addMessage(m, mine);
      break;
    default:
      return;
  }
  renderMembers();
  renderTyping();
}

function onTyping(body) {
  const t = parse(body);
  if (!t || t.id === me.id) return;
  if (t.typing) typers.set(t.id, { nick: t.nick, until: Date.now() + TYPING_EXPIRES_MS });
  else typers.delete(t.id);
  renderTyping();
}

function addMessage(m, mine) {
  const time = new Date(typeof m.ts === 'number' ? m.ts : Date.now());
  append(element('li', { className: `msg${mine ? ' mine' : ''}`, dataset: { kind: 'message' } },
    avatar(m.nick),
    element('div', { className: 'bubble' },
      element('div', { className: 'who' }, mine ? 'you' : m.nick,
        element('time', { dateTime: time.toISOString(), textContent: time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) })),
      element('div', { className: 'text', textContent: m.text.slice(0, 2000) }))));
}

function notice(text, kind) {
  append(element('li', { className: 'notice', dataset: { kind }, textContent: text }));
}

function append(item) {
  $('placeholder')?.remove();
  const list = $('messages');
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  list.append(item);
  while (list.children.length > 500) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function avatar(nick) {
  return element('span', { className: 'avatar', style: { background: colorFor(nick) }, textContent: nick.slice(0, 1).toUpperCase() });
}

function renderTyping() {
  const names = [...typers.values()].map((t) => t.nick);
  $('typing').textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
      : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
        : 'Several people are typing…';
}

function renderMembers() {
  const list = $('members');
  if (!room) {
    list.replaceChildren(element('li', { className: 'muted small', textContent: 'Join a room to see who is here.' }));
    return;
  }
  const sorted = [...members.entries()].sort(([, a], [, b]) => a.localeCompare(b));
  list.replaceChildren(...sorted.map(([id, nick]) => element('li', {}, avatar(nick),
    element('span', { textContent: id === me.id ? `${nick} (you)` : nick }))));
}

function renderRooms() {
  $('rooms').replaceChildren(...[...rooms].map((name) => element('li', {},
    element('button', {
      type: 'button',
      textContent: `# ${name}`,
      ariaCurrent: name === room ? 'true' : 'false',
      onclick: () => {
        $('room').value = name;
        $('join-form').requestSubmit();
      },
    }))));
}

function setComposerEnabled(enabled) {
  $('message').disabled = !enabled;
  $('send').disabled = !enabled;
}

function randomId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes); // works on plain http too, unlike crypto.randomUUID
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}
