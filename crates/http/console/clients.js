// Connected clients of every protocol.

import { get, path } from './api.js';
import { badge, card, fill, fmtDuration, fmtNum, h, table } from './dom.js';

export function mount(root) {
  const list = h('div');
  const filter = h('select', { class: 'filter', testid: 'client-protocol' },
    h('option', { value: '' }, 'All protocols'), h('option', { value: 'kafka' }, 'Kafka'), h('option', { value: 'nsq' }, 'NSQ'), h('option', { value: 'mqtt' }, 'MQTT'));
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Clients'), h('p', { class: 'muted' }, 'Open Kafka, NSQ and MQTT connections.')),
    card('Connected clients', filter, list),
  );
  let last = [];
  function render() {
    const rows = last.filter((c) => !filter.value || c.protocol === filter.value);
    const now = Date.now();
    fill(
      list,
      table({
        rows,
        testid: 'clients-table',
        empty: 'No clients are connected.',
        rowAttrs: (c) => ({ testid: 'client-row', dataset: { protocol: c.protocol } }),
        columns: [
          { title: 'Id', num: true, cell: (c) => String(c.id) },
          { title: 'Protocol', cell: (c) => badge(c.protocol, c.protocol === 'kafka' ? 'blue' : 'violet') },
          { title: 'Peer', class: 'mono', cell: (c) => c.peer },
          { title: 'Connected', cell: (c) => fmtDuration(now - c.connected_at_ms) },
          { title: 'Requests', num: true, cell: (c) => fmtNum(c.requests) },
          { title: 'Client', cell: (c) => [c.client_id, c.hostname].filter(Boolean).join(' · ') || '–' },
          { title: 'User agent', cell: (c) => c.user_agent || '–' },
          { title: 'Subscribed', cell: (c) => (c.topic ? `${c.topic}${c.channel ? ` / ${c.channel}` : ''}` : '–') },
        ],
      }),
    );
  }
  filter.addEventListener('change', render);
  async function refresh() {
    last = (await get(path('clients'))).sort((a, b) => a.id - b.id);
    render();
  }
  return { refresh };
}
