// Overview: node-wide counts and live throughput charts. `/api/overview` counters are cumulative
// since start; the rates here are differences between consecutive samples, kept for
// HISTORY_MS whichever page is open (app.js samples on every tick).

import { get, path } from './api.js';
import { lineChart } from './chart.js';
import { card, fill, fmtBytes, fmtDuration, fmtNum, fmtShort, h, link, stat, table } from './dom.js';

/** How much throughput history the charts show. */
const HISTORY_MS = 5 * 60_000;
/** Samples kept: the window at one per 2 s poll, with slack for faster manual refreshes. */
const SAMPLES_MAX = 400;
/** Shortest span between two samples a rate is computed over. */
const RATE_SPAN_MIN_MS = 1500;

const COUNTERS = ['messages_in', 'messages_out', 'bytes_in', 'bytes_out'];
const samples = [];
/** Rates per second between consecutive samples: {t, messages_in, ...}. */
const rates = [];
/** Adds one `/api/overview` answer to the history. */
export function record(sample) {
  const previous = samples[samples.length - 1];
  // Refreshes right after an action come faster than the poll; rates over such short spans
  // are mostly noise, so those samples only update the numbers, not the charts.
  if (previous && sample.now_ms - previous.now_ms < RATE_SPAN_MIN_MS) return;
  if (previous && COUNTERS.some((c) => sample[c] < previous[c])) {
    // The broker restarted (counters start again at zero): old history is not comparable.
    samples.length = 0;
    rates.length = 0;
  } else if (previous) {
    const seconds = (sample.now_ms - previous.now_ms) / 1000;
    const rate = { t: sample.now_ms };
    for (const c of COUNTERS) rate[c] = (sample[c] - previous[c]) / seconds;
    rates.push(rate);
  }
  samples.push(sample);
  const cutoff = sample.now_ms - HISTORY_MS - 10_000;
  while (samples.length > SAMPLES_MAX || (samples.length && samples[0].now_ms < cutoff)) samples.shift();
  while (rates.length > SAMPLES_MAX || (rates.length && rates[0].t < cutoff)) rates.shift();
}

function series(name, counter, color) {
  return { name, color, points: rates.map((r) => [r.t, r[counter]]) };
}

export function mount(root) {
  const stats = h('div', { class: 'stats', testid: 'overview-stats' });
  const msgChart = h('div', { class: 'chart-host', testid: 'chart-messages' });
  const byteChart = h('div', { class: 'chart-host', testid: 'chart-bytes' });
  const totals = h('div', { class: 'totals' });
  const topTopics = h('div');
  const nodeBox = h('div', { testid: 'node-info' });
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Overview'), h('p', { class: 'muted' }, 'Live throughput of this node over the last five minutes.')),
    stats,
    h('div', { class: 'grid-2' }, card('Messages / s', null, msgChart), card('Bytes / s', null, byteChart)),
    card('Since start', null, totals),
    card('Busiest topics', link(['topics'], 'All topics →'), topTopics),
    card('Node', null, nodeBox),
  );

  async function refresh() {
    // A fresh sample, not the shell's last one: right after an action the counts must be current.
    const [sample, topicList, node] = await Promise.all([get(path('overview')), get(path('topics')), get(path('node'))]);
    record(sample);
    // Re-rendering must not fold the settings list the user opened.
    const open = Boolean(nodeBox.querySelector('details')?.open);
    fill(nodeBox, nodeInfo(node, open));
    const conn = sample.connections || {};
    fill(
      stats,
      stat('Topics', fmtNum(sample.topics), 'stat-topics'),
      stat('Partitions', fmtNum(sample.partitions)),
      stat('Consumer groups', fmtNum(sample.groups)),
      stat('NSQ channels', fmtNum(sample.nsq_channels)),
      stat('Connections', `${fmtNum((conn.kafka || 0) + (conn.nsq || 0))}`, 'stat-connections'),
      stat('Stored', fmtBytes(sample.size_bytes)),
    );
    const now = sample.now_ms;
    lineChart(msgChart, {
      series: [series('in', 'messages_in', 'var(--in)'), series('out', 'messages_out', 'var(--out)')],
      windowMs: HISTORY_MS,
      now,
      format: fmtShort,
      testid: 'throughput-messages',
    });
    lineChart(byteChart, {
      series: [series('in', 'bytes_in', 'var(--in)'), series('out', 'bytes_out', 'var(--out)')],
      windowMs: HISTORY_MS,
      now,
      format: (v) => fmtBytes(Math.round(v)),
      testid: 'throughput-bytes',
      binary: true,
    });
    fill(
      totals,
      stat('Messages in', fmtNum(sample.messages_in)),
      stat('Messages out', fmtNum(sample.messages_out)),
      stat('Bytes in', fmtBytes(sample.bytes_in)),
      stat('Bytes out', fmtBytes(sample.bytes_out)),
      stat('Kafka connections', fmtNum(conn.kafka)),
      stat('NSQ connections', fmtNum(conn.nsq)),
    );
    const busiest = [...topicList].sort((a, b) => b.messages_in + b.messages_out - (a.messages_in + a.messages_out)).slice(0, 5);
    fill(
      topTopics,
      table({
        rows: busiest,
        testid: 'top-topics',
        empty: 'No topics yet.',
        columns: [
          { title: 'Topic', cell: (t) => link(['topics', t.name], t.name) },
          { title: 'Partitions', num: true, cell: (t) => fmtNum(t.partitions) },
          { title: 'Messages', num: true, cell: (t) => fmtNum(t.messages) },
          { title: 'In', num: true, cell: (t) => fmtNum(t.messages_in) },
          { title: 'Out', num: true, cell: (t) => fmtNum(t.messages_out) },
          { title: 'Size', num: true, cell: (t) => fmtBytes(t.size_bytes) },
        ],
      }),
    );
  }
  return { refresh };
}

/** Identity, listeners and effective settings of the node, as `/api/node` reports them. */
function nodeInfo(node, settingsOpen) {
  const listeners = node.listeners || {};
  const rows = [
    ['Version', node.version],
    ['Node id', node.node_id],
    ['Cluster id', node.cluster_id],
    ['Up for', fmtDuration(node.uptime_ms)],
    ['Kafka listener', listeners.kafka],
    ['NSQ TCP listener', listeners.nsq_tcp],
    ['HTTP listener', listeners.http],
    ['Data directory', node.data_dir],
  ];
  const settings = Object.entries(node.config || {});
  return [
    h('dl', { class: 'kv' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', { class: 'mono' }, v ?? '–')])),
    settings.length
      ? h(
          'details',
          { class: 'settings', open: settingsOpen },
          h('summary', {}, `Effective settings (${settings.length})`),
          h('dl', { class: 'kv' }, settings.map(([k, v]) => [h('dt', { class: 'mono' }, k), h('dd', { class: 'mono' }, String(v))])),
        )
      : null,
  ];
}
