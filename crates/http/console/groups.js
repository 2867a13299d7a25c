// Consumer groups: the list with total lag, and one group's members, committed offsets with lag
// per partition and a chart of its total lag over time (sampled while the console is open).

import { del, get, path } from './api.js';
import { lineChart } from './chart.js';
import { badge, card, confirmButton, fill, fmtNum, fmtShort, h, link, stat, table, toast } from './dom.js';

/** Lag history shown per group. */
const LAG_WINDOW_MS = 5 * 60_000;
/** Samples kept per group (one per poll over the window, with slack). */
const LAG_SAMPLES_MAX = 400;
/** Groups whose history is kept, so moving between pages keeps each chart. */
const GROUPS_TRACKED_MAX = 50;
/** Shortest time between two lag samples of one group. */
const LAG_SAMPLE_SPAN_MIN_MS = 1500;

/** group id → [[t_ms, total lag]]. */
const lagHistory = new Map();

function recordLag(group, lag) {
  if (!lagHistory.has(group)) {
    if (lagHistory.size >= GROUPS_TRACKED_MAX) lagHistory.delete(lagHistory.keys().next().value);
    lagHistory.set(group, []);
  }
  const points = lagHistory.get(group);
  const now = Date.now();
  // The list and the detail page both sample; keep one sample per poll period.
  if (points.length && now - points[points.length - 1][0] < LAG_SAMPLE_SPAN_MIN_MS) {
    points[points.length - 1][1] = lag;
    return;
  }
  points.push([now, lag]);
  while (points.length > LAG_SAMPLES_MAX || points[0][0] < now - LAG_WINDOW_MS - 10_000) points.shift();
}

function stateBadge(state) {
  const kind = { Stable: 'green', Empty: 'gray', Dead: 'red', PreparingRebalance: 'amber', CompletingRebalance: 'amber' }[state] || '';
  return badge(state || 'unknown', kind);
}

export function mountList(root) {
  const list = h('div');
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Consumer groups'), h('p', { class: 'muted' }, 'Kafka consumer groups, their members and how far behind they are.')),
    card('All groups', null, list),
  );
  async function refresh() {
    const groups = await get(path('groups'));
    groups.sort((a, b) => a.group_id.localeCompare(b.group_id));
    for (const g of groups) recordLag(g.group_id, g.lag);
    fill(
      list,
      table({
        rows: groups,
        testid: 'groups-table',
        empty: 'No consumer groups yet. They appear when a Kafka consumer joins one or commits offsets.',
        rowAttrs: (g) => ({ testid: 'group-row', dataset: { group: g.group_id } }),
        columns: [
          { title: 'Group', cell: (g) => link(['groups', g.group_id], g.group_id, { testid: 'group-link' }) },
          { title: 'State', cell: (g) => stateBadge(g.state) },
          { title: 'Protocol', cell: (g) => g.protocol_type || '–' },
          { title: 'Members', num: true, cell: (g) => fmtNum(g.members) },
          { title: 'Lag', num: true, cell: (g) => h('span', { class: g.lag > 0 ? 'lag' : '', testid: 'group-lag' }, fmtNum(g.lag)) },
        ],
      }),
    );
  }
  return { refresh };
}

export function mountDetail(root, [groupId]) {
  const head = h('div', { class: 'stats' });
  const content = h('div', { class: 'view' });
  const chart = h('div', { class: 'chart-host', testid: 'lag-chart' });
  const members = h('div');
  const offsets = h('div');
  const deleteButton = confirmButton('Delete group', 'Click again to delete', async () => {
    try {
      await del(path('groups', groupId));
      toast(`Group ${groupId} deleted`);
      location.hash = '#/groups';
    } catch (err) {
      toast(err.message, 'error');
    }
  }, { testid: 'delete-group' });
  root.append(
    h('div', { class: 'page-head' },
      h('div', { class: 'crumbs' }, h('a', { href: '#/groups' }, 'Consumer groups'), ' / '),
      h('div', { class: 'title-row' }, h('h1', { testid: 'group-name' }, groupId), deleteButton)),
    content,
  );
  // Hidden until the group loads, and again if it is gone: an unknown group shows only the error.
  content.hidden = true;
  content.append(head, card('Total lag', null, chart), card('Lag per partition', null, offsets), card('Members', null, members));

  async function refresh() {
    const group = await get(path('groups', groupId)).catch((err) => {
      if (err.status === 404) content.hidden = true;
      throw err;
    });
    content.hidden = false;
    const rows = (group.offsets || []).slice().sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    const total = rows.reduce((n, o) => n + Math.max(0, o.lag || 0), 0);
    recordLag(groupId, total);
    fill(
      head,
      h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, stateBadge(group.state)), h('div', { class: 'stat-label' }, 'State')),
      stat('Total lag', fmtNum(total), 'group-total-lag'),
      stat('Members', fmtNum((group.members || []).length)),
      stat('Generation', fmtNum(group.generation)),
      stat('Protocol', group.protocol || group.protocol_type || '–'),
    );
    lineChart(chart, {
      series: [{ name: 'lag', color: 'var(--lag)', points: lagHistory.get(groupId) || [] }],
      windowMs: LAG_WINDOW_MS,
      now: Date.now(),
      format: fmtShort,
      testid: 'lag-chart-svg',
    });
    const maxLag = Math.max(1, ...rows.map((o) => o.lag || 0));
    fill(
      offsets,
      table({
        rows,
        testid: 'offsets-table',
        empty: 'This group has committed no offsets.',
        rowAttrs: (o) => ({ testid: 'offset-row', dataset: { topic: o.topic, partition: String(o.partition), lag: String(o.lag) } }),
        columns: [
          { title: 'Topic', cell: (o) => link(['topics', o.topic], o.topic) },
          { title: 'Partition', num: true, cell: (o) => String(o.partition) },
          { title: 'Committed', num: true, cell: (o) => fmtNum(o.committed_offset) },
          { title: 'End offset', num: true, cell: (o) => fmtNum(o.log_end_offset) },
          { title: 'Lag', num: true, cell: (o) => h('span', { class: o.lag > 0 ? 'lag' : '', testid: 'partition-lag' }, fmtNum(o.lag)) },
          { title: '', class: 'bar-cell', cell: (o) => h('div', { class: 'bar' }, h('i', { style: `width:${(100 * Math.max(0, o.lag || 0)) / maxLag}%` })) },
          { title: 'Metadata', class: 'mono', cell: (o) => o.metadata || '' },
        ],
      }),
    );
    fill(
      members,
      table({
        rows: group.members || [],
        testid: 'members-table',
        empty: 'No members are connected: the group only holds committed offsets.',
        columns: [
          { title: 'Member', class: 'mono', cell: (m) => m.member_id },
          { title: 'Client id', cell: (m) => m.client_id },
          { title: 'Host', cell: (m) => m.client_host },
          {
            title: 'Assignment',
            cell: (m) => (m.assignments || []).map((a) => h('div', {}, `${a.topic}: ${a.partitions.join(', ')}`)),
          },
        ],
      }),
    );
  }
  return { refresh };
}
