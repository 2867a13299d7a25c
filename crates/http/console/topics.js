// Topics list with per-topic live rates, and the create-topic form.

import { get, path, post } from './api.js';
import { busy, card, fill, fmtBytes, fmtNum, fmtShort, h, link, table, toast } from './dom.js';

export function mount(root) {
  const list = h('div');
  const filter = h('input', { type: 'search', placeholder: 'Filter topics', class: 'filter', testid: 'topic-filter' });
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Topics'), h('p', { class: 'muted' }, 'Kafka topics; NSQ topics are the same logs.')),
    createForm(),
    card('All topics', filter, list),
  );
  /** Previous counters per topic, to show rates between two polls. */
  let previous = new Map();
  let previousAt = 0;
  let lastRows = [];

  function render() {
    const needle = filter.value.trim().toLowerCase();
    const rows = lastRows.filter((t) => !needle || t.name.toLowerCase().includes(needle));
    fill(
      list,
      table({
        rows,
        testid: 'topics-table',
        empty: needle ? 'No topic matches the filter.' : 'No topics yet. Create one above, or produce to one with any Kafka or NSQ client.',
        rowAttrs: (t) => ({ dataset: { topic: t.name }, testid: 'topic-row' }),
        columns: [
          { title: 'Name', cell: (t) => link(['topics', t.name], t.name, { testid: 'topic-link' }) },
          { title: 'Partitions', num: true, cell: (t) => fmtNum(t.partitions) },
          { title: 'Messages', num: true, cell: (t) => fmtNum(t.messages) },
          { title: 'Size', num: true, cell: (t) => fmtBytes(t.size_bytes) },
          { title: 'In msg/s', num: true, cell: (t) => fmtShort(t.rateIn) },
          { title: 'Out msg/s', num: true, cell: (t) => fmtShort(t.rateOut) },
          { title: 'Total in', num: true, cell: (t) => fmtNum(t.messages_in) },
          { title: 'Total out', num: true, cell: (t) => fmtNum(t.messages_out) },
        ],
      }),
    );
  }
  filter.addEventListener('input', render);

  async function refresh() {
    const topics = await get(path('topics'));
    const now = Date.now();
    const seconds = (now - previousAt) / 1000;
    lastRows = topics
      .map((t) => {
        const before = previous.get(t.name);
        const rate = (c) => (before && seconds > 0 && t[c] >= before[c] ? (t[c] - before[c]) / seconds : null);
        return { ...t, rateIn: rate('messages_in'), rateOut: rate('messages_out') };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
    previous = new Map(topics.map((t) => [t.name, t]));
    previousAt = now;
    render();
  }
  return { refresh };
}

function createForm() {
  const name = h('input', { name: 'name', required: true, placeholder: 'orders', pattern: '[A-Za-z0-9._\\-]{1,249}', testid: 'create-topic-name', autocomplete: 'off' });
  const partitions = h('input', { name: 'partitions', type: 'number', min: 1, max: 10000, value: '1', testid: 'create-topic-partitions' });
  const retention = h('input', { name: 'retention', placeholder: 'default', testid: 'create-topic-retention' });
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'create-topic-submit' }, 'Create topic');
  const form = h(
    'form',
    { class: 'inline-form', testid: 'create-topic-form' },
    h('label', {}, 'Name', name),
    h('label', { class: 'narrow' }, 'Partitions', partitions),
    h('label', { class: 'narrow', title: 'retention.ms override (optional)' }, 'retention.ms', retention),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), partitions: Number(partitions.value) || 1 };
    if (retention.value.trim()) body.config = { 'retention.ms': retention.value.trim() };
    const created = await busy(submit, () => post(path('topics'), body));
    if (created) {
      toast(`Topic ${created.name || body.name} created`);
      location.hash = `#/topics/${encodeURIComponent(created.name || body.name)}`;
    }
  });
  return card('Create a topic', null, form);
}
