// MQTT: listener addresses, connected clients, subscriptions and retained messages, the
// persistent sessions (connected or not, with their filters and QoS, and their pending messages) and the shared
// subscription groups, from GET /api/mqtt.

import { get, path } from './api.js';
import { badge, card, fill, fmtNum, fmtTime, h, stat, table } from './dom.js';

function listeners(l) {
  const rows = [
    ['MQTT', l.tcp],
    ['WebSocket', l.websocket],
    ['MQTT over TLS', l.tls],
    ['WebSocket over TLS', l.websocket_tls],
  ].filter(([, addr]) => addr);
  return h('div', { class: 'muted', testid: 'mqtt-listeners' }, rows.map(([name, addr]) => `${name} ${addr}`).join(' · '));
}

function sessionTable(list) {
  return table({
    rows: list.sessions,
    testid: 'mqtt-sessions-table',
    empty: 'No persistent sessions. A client that connects with clean session 0 (or a v5 session expiry) keeps one.',
    rowAttrs: (s) => ({ testid: 'mqtt-session-row', dataset: { clientId: s.client_id, connected: String(s.connected) } }),
    columns: [
      { title: 'Client id', cell: (s) => h('span', { class: 'strong' }, s.client_id) },
      { title: 'State', cell: (s) => (s.connected ? badge('connected', 'green') : badge('disconnected', 'amber')) },
      { title: 'Since', cell: (s) => (s.disconnected_at_ms ? fmtTime(s.disconnected_at_ms) : '–') },
      { title: 'Expiry', cell: (s) => (s.expiry_secs == null ? 'never' : `${fmtNum(s.expiry_secs)} s`) },
      {
        title: 'Pending',
        class: 'num',
        cell: (s) => h('span', { testid: 'mqtt-session-pending', title: `${fmtNum(s.in_flight)} in flight` }, fmtNum(s.pending)),
      },
      {
        title: 'Subscriptions',
        class: 'mono',
        cell: (s) => h('span', { testid: 'mqtt-session-filters' }, s.subscriptions.map((f) => `${f.filter} (QoS ${f.qos})`).join(', ') || '–'),
      },
    ],
  });
}

function sharedTable(list) {
  return table({
    rows: list.groups,
    testid: 'mqtt-shared-table',
    empty: 'No shared subscriptions ($share/group/filter).',
    columns: [
      { title: 'Group', cell: (g) => h('span', { class: 'strong' }, g.group) },
      { title: 'Topic', cell: (g) => g.topic },
      { title: 'Channel', class: 'mono', cell: (g) => g.channel },
      { title: 'Members', num: true, cell: (g) => fmtNum(g.members) },
      { title: 'Depth', num: true, cell: (g) => fmtNum(g.depth) },
      { title: 'In flight', num: true, cell: (g) => fmtNum(g.in_flight) },
    ],
  });
}

function truncatedNote(list, total) {
  return list.truncated ? h('div', { class: 'muted' }, `Showing the first ${fmtNum(list.sessions ? list.sessions.length : list.groups.length)} of ${fmtNum(total)}.`) : null;
}

export function mount(root) {
  const head = h('div');
  const stats = h('div', { class: 'stats', testid: 'mqtt-stats' });
  const sessions = h('div');
  const shared = h('div');
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'MQTT'), head),
    stats,
    card('Persistent sessions', null, sessions),
    card('Shared subscriptions', null, shared),
  );
  async function refresh() {
    const m = await get(path('mqtt'));
    fill(head, listeners(m.listeners));
    fill(
      stats,
      stat('Connected clients', fmtNum(m.connected_clients), 'stat-mqtt-clients'),
      stat('Persistent sessions', fmtNum(m.persistent_sessions.count), 'stat-mqtt-sessions'),
      stat('Subscriptions', fmtNum(m.subscriptions), 'stat-mqtt-subscriptions'),
      stat('Shared groups', fmtNum(m.shared_subscriptions.count), 'stat-mqtt-shared'),
      stat('Retained messages', fmtNum(m.retained_messages), 'stat-mqtt-retained'),
    );
    fill(sessions, sessionTable(m.persistent_sessions), truncatedNote(m.persistent_sessions, m.persistent_sessions.count));
    fill(shared, sharedTable(m.shared_subscriptions), truncatedNote(m.shared_subscriptions, m.shared_subscriptions.count));
  }
  return { refresh };
}
