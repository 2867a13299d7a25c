// Raft elections over time, derived in the browser from the cumulative terms `/api/cluster`
// reports (as the overview derives rates from counters): every poll compares each Raft group's
// term with the one seen before; a higher term is a term change, i.e. an election held (won or
// not) since the last poll. Only the groups the node asked is a member of have terms: the
// metadata group and its partition replicas.

/** How much history the chart shows. */
export const HISTORY_MS = 10 * 60_000;
/** Term changes listed at most, newest first. */
const CHANGES_MAX = 50;
/** Poll samples kept: the window at one per 2 s poll, with slack. */
const SAMPLES_MAX = 400;
/** Shortest span between two samples of the chart (refreshes right after an action). */
const SAMPLE_SPAN_MIN_MS = 1500;

/** The node whose terms these are: another node's terms are other numbers. */
let nodeId = null;
/** group name → last term seen. */
const terms = new Map();
/** [{t, group, from, to, leader}], newest last. */
const changes = [];
/** [[t_ms, elections since the previous sample]]. */
const samples = [];

/** The Raft groups of one status with their terms and leaders: "metadata", "topic/partition". */
function groups(status) {
  const list = [{ name: 'metadata', term: status.metadata.term, leader: status.metadata.leader }];
  for (const p of status.partitions || []) list.push({ name: `${p.topic}/${p.partition}`, term: p.term, leader: p.leader });
  return list;
}

/** Adds one `/api/cluster` answer, fetched at `now` (ms). */
export function record(status, now) {
  if (status.node_id !== nodeId) {
    nodeId = status.node_id;
    terms.clear();
    changes.length = 0;
    samples.length = 0;
  }
  let elections = 0;
  for (const group of groups(status)) {
    const before = terms.get(group.name);
    // A group first seen has no change to report; a lower term (a wiped node) starts over.
    if (before !== undefined && group.term > before) {
      elections += group.term - before;
      changes.push({ t: now, group: group.name, from: before, to: group.term, leader: group.leader });
    }
    terms.set(group.name, group.term);
  }
  while (changes.length > CHANGES_MAX) changes.shift();
  const last = samples[samples.length - 1];
  if (last && now - last[0] < SAMPLE_SPAN_MIN_MS) last[1] += elections;
  else samples.push([now, elections]);
  while (samples.length > SAMPLES_MAX || samples[0][0] < now - HISTORY_MS - 10_000) samples.shift();
}

/** Term changes seen, newest first. */
export function recentChanges() {
  return [...changes].reverse();
}

/** Elections per poll over time, for a line chart. */
export function series(color) {
  return { name: 'term changes per poll', color, points: samples.map(([t, n]) => [t, n]) };
}
