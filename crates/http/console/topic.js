// One topic: partitions, publish form, message browser, configuration and delete.

import { del, get, patch, path, post } from './api.js';
import { badge, busy, card, confirmButton, fill, fmtBytes, fmtNum, fmtTime, h, refreshNow, stat, table, toast } from './dom.js';

/** Messages per browser page (the API allows up to 1000; a screenful is friendlier). */
const PAGE = 20;

export function mount(root, [name]) {
  const head = h('div', { class: 'stats' });
  const content = h('div', { class: 'view' });
  const partitionsBox = h('div');
  const configBox = h('div');
  const grow = addPartitionsForm(name);
  const browser = messageBrowser(name);
  const publisher = publishForm(name, (result) => browser.follow(result.partition));
  const deleteButton = confirmButton('Delete topic', 'Click again to delete', async () => {
    try {
      await del(path('topics', name));
      toast(`Topic ${name} deleted`);
      location.hash = '#/topics';
    } catch (err) {
      toast(err.message, 'error');
    }
  }, { testid: 'delete-topic' });
  root.append(
    h('div', { class: 'page-head' },
      h('div', { class: 'crumbs' }, h('a', { href: '#/topics' }, 'Topics'), ' / '),
      h('div', { class: 'title-row' }, h('h1', { testid: 'topic-name' }, name), deleteButton)),
    content,
  );
  // Hidden until the topic loads, and again if it is gone: an unknown topic shows only the error.
  content.hidden = true;
  content.append(
    head,
    card('Partitions', null, partitionsBox, grow.element),
    h('div', { class: 'grid-side' }, publisher.element, browser.element),
    card('Configuration', null, configBox, configForm(name)),
  );

  async function refresh() {
    const topic = await get(path('topics', name)).catch((err) => {
      if (err.status === 404) content.hidden = true;
      throw err;
    });
    content.hidden = false;
    const parts = topic.partitions || [];
    const sum = (key) => parts.reduce((n, p) => n + (p[key] || 0), 0);
    fill(
      head,
      stat('Partitions', fmtNum(parts.length), 'topic-partitions'),
      stat('Messages', fmtNum(parts.reduce((n, p) => n + (p.log_end_offset - p.log_start_offset), 0)), 'topic-messages'),
      stat('Stored', fmtBytes(sum('size_bytes'))),
      stat('Segments', fmtNum(sum('segments'))),
      stat('Messages in', fmtNum(sum('messages_in'))),
      stat('Messages out', fmtNum(sum('messages_out'))),
    );
    fill(partitionsBox, partitionTable(parts));
    grow.setCurrent(parts.length);
    fill(configBox, configTable(name, topic.config || []));
    publisher.setPartitions(parts.length);
    await browser.refresh(parts);
  }
  return { refresh };
}

function partitionTable(parts) {
  return table({
    rows: parts,
    testid: 'partitions-table',
    empty: 'This topic has no partitions.',
    columns: [
      { title: 'Partition', cell: (p) => String(p.partition) },
      { title: 'Start offset', num: true, cell: (p) => fmtNum(p.log_start_offset) },
      { title: 'End offset', num: true, cell: (p) => fmtNum(p.log_end_offset) },
      { title: 'Messages', num: true, cell: (p) => fmtNum(p.log_end_offset - p.log_start_offset) },
      { title: 'Size', num: true, cell: (p) => fmtBytes(p.size_bytes) },
      { title: 'Segments', num: true, cell: (p) => fmtNum(p.segments) },
      { title: 'In', num: true, cell: (p) => fmtNum(p.messages_in) },
      { title: 'Out', num: true, cell: (p) => fmtNum(p.messages_out) },
    ],
  });
}

/** Built once, so a count being typed survives the live refresh. */
function addPartitionsForm(name) {
  const count = h('input', { type: 'number', min: 1, testid: 'partition-count' });
  const submit = h('button', { type: 'submit', class: 'btn' }, 'Grow');
  const form = h('form', { class: 'inline-form compact' }, h('label', { class: 'narrow' }, 'Total partitions', count), submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const done = await busy(submit, () => post(path('topics', name, 'partitions'), { count: Number(count.value) }));
    if (done) {
      toast(`${name} now has ${count.value} partitions`);
      count.value = '';
      refreshNow();
    }
  });
  return {
    element: form,
    setCurrent(current) {
      count.min = String(current + 1);
      count.placeholder = String(current + 1);
    },
  };
}

function configTable(name, config) {
  return table({
    rows: config,
    testid: 'config-table',
    empty: 'No configuration reported.',
    columns: [
      { title: 'Setting', class: 'mono', cell: (c) => c.name },
      { title: 'Value', class: 'mono', cell: (c) => String(c.value ?? '') },
      { title: 'Source', cell: (c) => badge(c.source, c.source === 'topic' ? 'blue' : '') },
      {
        title: '',
        cell: (c) => {
          if (c.source !== 'topic') return '';
          const reset = h('button', { type: 'button', class: 'btn small' }, 'Reset to default');
          reset.addEventListener('click', async () => {
            if (await busy(reset, () => patch(path('topics', name, 'config'), { [c.name]: null }))) {
              toast(`${c.name} reset`);
              refreshNow();
            }
          });
          return reset;
        },
      },
    ],
  });
}

function configForm(name) {
  const key = h('input', { placeholder: 'retention.ms', testid: 'config-key', autocomplete: 'off' });
  const value = h('input', { placeholder: '604800000', testid: 'config-value', autocomplete: 'off' });
  const submit = h('button', { type: 'submit', class: 'btn' }, 'Set');
  const form = h('form', { class: 'inline-form compact' }, h('label', {}, 'Setting', key), h('label', {}, 'Value', value), submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (await busy(submit, () => patch(path('topics', name, 'config'), { [key.value.trim()]: value.value }))) {
      toast(`${key.value.trim()} set`);
      refreshNow();
      value.value = '';
    }
  });
  return form;
}

function partitionOptions(select, count, withAuto) {
  const keep = select.value;
  const options = [];
  if (withAuto) options.push(h('option', { value: '' }, 'any (by key)'));
  for (let p = 0; p < count; p += 1) options.push(h('option', { value: String(p) }, `partition ${p}`));
  fill(select, options);
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

/** Parses "key: value" lines into record headers. */
function parseHeaders(text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const at = line.indexOf(':');
      return at < 0 ? { key: line, value: '' } : { key: line.slice(0, at).trim(), value: line.slice(at + 1).trim() };
    });
}

function publishForm(name, onPublished) {
  const partition = h('select', { testid: 'publish-partition' });
  const key = h('input', { placeholder: 'optional', testid: 'publish-key', autocomplete: 'off' });
  const value = h('textarea', { rows: 4, placeholder: '{"hello": "world"}', testid: 'publish-value' });
  const headers = h('textarea', { rows: 2, placeholder: 'header: value (one per line, optional)', testid: 'publish-headers' });
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'publish-submit' }, 'Publish');
  const result = h('div', { class: 'muted result', testid: 'publish-result' });
  let partitions = -1;
  const form = h(
    'form',
    { class: 'stack-form', testid: 'publish-form' },
    h('label', {}, 'Partition', partition),
    h('label', {}, 'Key', key),
    h('label', {}, 'Value', value),
    h('label', {}, 'Headers', headers),
    h('div', { class: 'form-actions' }, submit, result),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { value: value.value };
    if (key.value) body.key = key.value;
    if (partition.value !== '') body.partition = Number(partition.value);
    const hs = parseHeaders(headers.value);
    if (hs.length) body.headers = hs;
    const done = await busy(submit, () => post(path('topics', name, 'messages'), body));
    if (done) {
      fill(result, `Published to partition ${done.partition} at offset ${done.offset}`);
      toast(`Published at ${done.partition}/${done.offset}`);
      onPublished(done);
      refreshNow();
    }
  });
  return {
    element: card('Publish a message', null, form),
    setPartitions(count) {
      if (count !== partitions) partitionOptions(partition, count, true);
      partitions = count;
    },
  };
}

/** A value or key cell: text as is, hex marked, null dimmed, long values clipped with a tooltip. */
function bytesCell(value, encoding) {
  if (value === null || value === undefined) return h('span', { class: 'null' }, 'null');
  const clipped = value.length > 300 ? `${value.slice(0, 300)}…` : value;
  return h('span', { class: 'payload', title: value.length > 300 ? value : null }, encoding === 'hex' ? badge('hex', 'gray') : null, clipped);
}

function messageBrowser(name) {
  const partition = h('select', { testid: 'browse-partition' });
  const offset = h('input', { type: 'number', min: 0, placeholder: 'offset', testid: 'browse-offset' });
  const go = h('button', { type: 'submit', class: 'btn' }, 'Go');
  const latest = h('button', { type: 'button', class: 'btn', testid: 'browse-latest' }, 'Latest');
  const older = h('button', { type: 'button', class: 'btn', title: 'Older messages' }, '←');
  const newer = h('button', { type: 'button', class: 'btn', title: 'Newer messages' }, '→');
  const info = h('div', { class: 'muted browse-info', testid: 'browse-info' });
  const rows = h('div', { testid: 'messages' });
  const controls = h('form', { class: 'inline-form compact' }, h('label', { class: 'narrow' }, 'Partition', partition), h('label', { class: 'narrow' }, 'From offset', offset), go, latest, older, newer);
  /** 'latest' follows the tail live; 'offset' stays on the page the user chose. */
  const state = { mode: 'latest', from: 0, partitions: [], count: -1 };

  const reload = () => refresh(state.partitions).catch((err) => toast(err.message, 'error'));
  controls.addEventListener('submit', (event) => {
    event.preventDefault();
    state.mode = 'offset';
    state.from = Math.max(0, Number(offset.value) || 0);
    reload();
  });
  partition.addEventListener('change', () => {
    state.mode = 'latest';
    reload();
  });
  latest.addEventListener('click', () => {
    state.mode = 'latest';
    reload();
  });
  older.addEventListener('click', () => {
    state.mode = 'offset';
    state.from = Math.max(0, state.from - PAGE);
    reload();
  });
  newer.addEventListener('click', () => {
    state.mode = 'offset';
    state.from += PAGE;
    reload();
  });

  async function refresh(partitions) {
    state.partitions = partitions;
    if (partitions.length !== state.count) partitionOptions(partition, partitions.length, false);
    state.count = partitions.length;
    const p = partitions.find((x) => String(x.partition) === partition.value) || partitions[0];
    if (!p) {
      fill(info, 'No partitions.');
      fill(rows);
      return;
    }
    if (state.mode === 'latest') state.from = Math.max(p.log_start_offset, p.log_end_offset - PAGE);
    const url = `${path('topics', name, 'partitions', p.partition, 'messages')}?offset=${state.from}&limit=${PAGE}`;
    const page = await get(url);
    const messages = page.messages || [];
    const span = messages.length ? `showing ${messages[0].offset}–${messages[messages.length - 1].offset}` : 'no messages here';
    fill(
      info,
      `Partition ${p.partition}: offsets ${fmtNum(p.log_start_offset)}–${fmtNum(Math.max(p.log_start_offset, p.log_end_offset - 1))}, ${span}`,
      state.mode === 'latest' ? badge('following the tail', 'green') : null,
    );
    fill(
      rows,
      table({
        rows: messages,
        testid: 'messages-table',
        empty: p.log_end_offset === p.log_start_offset ? 'This partition is empty. Publish a message to see it here.' : 'No messages at this offset.',
        rowAttrs: (m) => ({ testid: 'message-row', dataset: { offset: String(m.offset), partition: String(m.partition) } }),
        columns: [
          { title: 'Offset', num: true, cell: (m) => fmtNum(m.offset) },
          { title: 'Time', class: 'nowrap', cell: (m) => fmtTime(m.timestamp_ms) },
          { title: 'Key', class: 'mono', cell: (m) => bytesCell(m.key, m.key_encoding) },
          { title: 'Value', class: 'mono value', cell: (m) => h('span', { testid: 'message-value' }, bytesCell(m.value, m.value_encoding)) },
          {
            title: 'Headers',
            class: 'mono',
            cell: (m) => (m.headers || []).map((hd) => h('div', { class: 'header-kv' }, h('b', {}, hd.key), ': ', bytesCell(hd.value, hd.value_encoding))),
          },
        ],
      }),
    );
  }

  return {
    element: card('Messages', null, controls, info, rows),
    refresh,
    follow(p) {
      partition.value = String(p);
      state.mode = 'latest';
    },
  };
}
