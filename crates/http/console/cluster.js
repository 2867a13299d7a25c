// Cluster: the nodes (up or down as the node serving this page sees them, metadata role,
// listeners, partitions led, replicas, stored bytes), every partition's placement with leader,
// replicas and ISR (under-replicated rows highlighted), the metadata group's term and commit
// index, and elections over time. All from `/api/cluster` on whichever node serves the page;
// a single node (404 there) says so plainly.

import { get, path } from './api.js';
import { lineChart } from './chart.js';
import { badge, card, fill, fmtBytes, fmtDuration, fmtNum, fmtShort, fmtTime, h, link, stat, table } from './dom.js';
import * as elections from './elections.js';

/** Term changes listed under the elections chart. */
const CHANGES_SHOWN = 12;

/** Fewer in-sync replicas than replicas, or a replica on a node that does not answer. */
export function underReplicated(p) {
  return p.isr.length < p.replicas.length || (p.offline_replicas || []).length > 0;
}

export function mount(root) {
  const single = h('div', { hidden: true });
  const content = h('div', { class: 'view', hidden: true });
  const stats = h('div', { class: 'stats', testid: 'cluster-stats' });
  const nodes = h('div');
  const placement = h('div');
  const filter = h('input', { type: 'search', placeholder: 'Filter topics', class: 'filter', testid: 'placement-filter' });
  const chart = h('div', { class: 'chart-host', testid: 'elections-chart' });
  const changes = h('div');
  const intro = h('p', { class: 'muted' }, 'The cluster as this node sees it, refreshed every 2 s.');
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Cluster'), intro), single, content);
  content.append(
    stats,
    card('Nodes', null, nodes, h('p', { class: 'note muted' }, 'Up: the node answered this node’s ping (one a second over the cluster transport) in the last 3 s. Stored: the bytes its partition logs hold.')),
    card('Partitions', filter, placement),
    card('Elections', null, chart, h('p', { class: 'note muted' }, 'Raft term changes seen between polls in the groups this node is a member of (the metadata group and its partition replicas).'), changes),
  );
  let last = null;
  filter.addEventListener('input', () => last && renderPlacement(placement, last, filter.value));

  async function refresh() {
    let status;
    try {
      status = await get(path('cluster'));
    } catch (err) {
      if (err.status !== 404) throw err;
      content.hidden = true;
      single.hidden = false;
      fill(intro, 'No cluster: this node runs alone.');
      fill(single, singleNode());
      return;
    }
    const now = Date.now();
    elections.record(status, now);
    last = status;
    single.hidden = true;
    content.hidden = false;
    fill(intro, `The cluster as node ${status.node_id} sees it, refreshed every 2 s. `, h('span', { class: 'mono' }, status.cluster_id || ''));
    renderStats(stats, status);
    renderNodes(nodes, status);
    renderPlacement(placement, status, filter.value);
    lineChart(chart, {
      series: [elections.series('var(--lag)')],
      windowMs: elections.HISTORY_MS,
      now,
      // Counts: no ticks between whole numbers.
      format: (v) => (Number.isInteger(v) ? fmtShort(v) : ''),
      testid: 'elections-svg',
    });
    renderChanges(changes);
  }
  return { refresh };
}

function singleNode() {
  return card(
    'A single node',
    null,
    h(
      'p',
      { testid: 'cluster-single', style: 'margin: 0' },
      'This node is not part of a cluster: it runs without --node-id, so it holds every partition alone and there are no other nodes, replicas or elections to show. ',
      'To run a cluster, start each node with --node-id, --cluster-addr and --cluster-peers (see “A cluster” in the README).',
    ),
  );
}

function renderStats(host, status) {
  const up = status.nodes.filter((n) => n.up === true).length;
  const under = status.placement.filter(underReplicated).length;
  const meta = status.metadata;
  fill(
    host,
    stat('Nodes up', `${up} / ${status.nodes.length}`, 'cluster-nodes-up'),
    stat('Metadata leader', meta.leader == null ? 'none' : `node ${meta.leader}`, 'cluster-meta-leader'),
    stat('Metadata term', fmtNum(meta.term), 'cluster-meta-term'),
    stat('Commit index', fmtNum(meta.commit_index), 'cluster-meta-commit'),
    stat('Partitions', fmtNum(status.placement.length)),
    h(
      'div',
      { class: `stat ${under ? 'alert' : ''}`, testid: 'cluster-under-replicated' },
      h('div', { class: 'stat-value' }, fmtNum(under)),
      h('div', { class: 'stat-label' }, 'Under-replicated'),
    ),
  );
}

function renderNodes(host, status) {
  const meta = status.metadata;
  const rows = [...status.nodes].sort((a, b) => a.node_id - b.node_id);
  fill(
    host,
    table({
      rows,
      testid: 'cluster-nodes',
      empty: 'No node has registered yet.',
      rowAttrs: (n) => ({ testid: 'cluster-node-row', class: n.up === false ? 'down' : '', dataset: { node: String(n.node_id), up: String(n.up ?? 'unknown') } }),
      columns: [
        {
          title: 'Node',
          cell: (n) => [h('span', { class: 'strong' }, String(n.node_id)), n.node_id === status.node_id ? h('span', { class: 'muted' }, ' (this node)') : null],
        },
        { title: 'Status', cell: (n) => upBadge(n.up) },
        {
          title: 'Metadata',
          cell: (n) => [badge(n.metadata_member, n.metadata_member === 'voter' ? 'blue' : 'gray'), n.node_id === meta.leader ? badge('leader', 'violet') : null],
        },
        {
          title: 'Addresses',
          cell: (n) =>
            h(
              'div',
              { class: 'addresses mono' },
              h('div', {}, h('span', { class: 'muted' }, 'kafka '), n.kafka_addr),
              h('div', {}, h('span', { class: 'muted' }, 'nsq '), n.nsq_tcp_addr),
              h('div', {}, h('span', { class: 'muted' }, 'http '), h('a', { href: `http://${n.http_addr}/#/cluster` }, n.http_addr)),
              h('div', {}, h('span', { class: 'muted' }, 'cluster '), n.cluster_addr),
            ),
        },
        { title: 'Leads', num: true, cell: (n) => h('span', { testid: 'node-led' }, fmtNum(n.partitions_led)) },
        { title: 'Replicas', num: true, cell: (n) => h('span', { testid: 'node-replicas' }, fmtNum(n.replicas)) },
        { title: 'Stored', num: true, cell: (n) => (n.stored_bytes == null ? '–' : fmtBytes(n.stored_bytes)) },
        { title: 'Last answer', num: true, cell: (n) => lastContact(n, status.node_id) },
      ],
    }),
  );
}

/** null: the node serving the page has pinged it only briefly, with no answer yet. */
function upBadge(up) {
  if (up === true) return badge('up', 'green');
  if (up === false) return badge('down', 'red');
  return h('span', { class: 'badge gray', title: 'no answer yet: asked for less than 3 s' }, 'unknown');
}

function lastContact(node, self) {
  if (node.node_id === self) return h('span', { class: 'muted' }, 'this node');
  if (node.last_contact_ms == null) return h('span', { class: 'muted' }, 'never');
  return node.last_contact_ms < 1000 ? 'just now' : `${fmtDuration(node.last_contact_ms)} ago`;
}

/** One replica as a chip: the leader bold, in sync green, behind amber, on a down node red. */
function replicaChip(p, id) {
  const offline = (p.offline_replicas || []).includes(id);
  const inSync = p.isr.includes(id);
  const kind = offline ? 'red' : inSync ? 'green' : 'amber';
  const why = offline ? 'node down' : inSync ? 'in sync' : 'not in sync';
  const leader = p.leader === id;
  return h('span', { class: `badge ${kind} replica${leader ? ' leader' : ''}`, title: `node ${id}: ${why}${leader ? ', leader' : ''}` }, String(id));
}

function renderPlacement(host, status, needle) {
  const want = needle.trim().toLowerCase();
  const rows = status.placement
    .filter((p) => !want || p.topic.toLowerCase().includes(want))
    .sort((a, b) => Number(underReplicated(b)) - Number(underReplicated(a)) || a.topic.localeCompare(b.topic) || a.partition - b.partition);
  fill(
    host,
    table({
      rows,
      testid: 'placement-table',
      empty: want ? 'No topic matches the filter.' : 'No partitions yet.',
      rowAttrs: (p) => ({
        testid: 'placement-row',
        class: underReplicated(p) ? 'under' : '',
        dataset: { topic: p.topic, partition: String(p.partition), underReplicated: String(underReplicated(p)), leader: String(p.leader ?? '') },
      }),
      columns: [
        { title: 'Topic', cell: (p) => link(['topics', p.topic], p.topic) },
        { title: 'Partition', num: true, cell: (p) => String(p.partition) },
        { title: 'Leader', cell: (p) => (p.leader == null ? badge('none', 'red') : `node ${p.leader}`) },
        { title: 'Replicas', cell: (p) => p.replicas.map((id) => replicaChip(p, id)) },
        { title: 'In sync', class: 'mono', cell: (p) => p.isr.join(', ') || '–' },
        { title: 'State', cell: (p) => partitionState(p) },
      ],
    }),
  );
}

function partitionState(p) {
  const offline = p.offline_replicas || [];
  if (p.leader == null) return badge('no leader', 'red');
  if (offline.length) return badge(`under-replicated: node ${offline.join(', ')} down`, 'red');
  if (p.isr.length < p.replicas.length) return badge(`under-replicated: ${p.isr.length} of ${p.replicas.length} in sync`, 'amber');
  return badge('in sync', 'green');
}

function renderChanges(host) {
  const rows = elections.recentChanges().slice(0, CHANGES_SHOWN);
  fill(
    host,
    table({
      rows,
      testid: 'term-changes',
      empty: 'No term change seen since this page started watching.',
      rowAttrs: () => ({ testid: 'term-change-row' }),
      columns: [
        { title: 'Seen at', class: 'mono', cell: (c) => fmtTime(c.t) },
        { title: 'Raft group', cell: (c) => c.group },
        { title: 'Term', num: true, cell: (c) => `${fmtNum(c.from)} → ${fmtNum(c.to)}` },
        { title: 'Leader now', cell: (c) => (c.leader == null ? badge('none', 'red') : `node ${c.leader}`) },
      ],
    }),
  );
}
