// A stand-in for the broker's HTTP listener, for working on the console's look without building
// the broker: serves crates/http/console/ and an in-memory admin API shaped as docs/admin-api.md
// says, plus NSQ's /pub and /channel/create. Traffic counters tick on their own so the charts move.
//
//   node tests/console/mock-server.mjs [port]     (default 4199), then open http://127.0.0.1:<port>/
//   MOCK_CLUSTER=1 node tests/console/mock-server.mjs   also answers /api/cluster for a 3-node
//     cluster whose node 3 goes down and up every 30 s (with an election each time)
//   SLUICE_CONSOLE_URL=http://127.0.0.1:4199 CONSOLE_GROUP=billing CONSOLE_GROUP_TOPIC=orders \
//     CONSOLE_GROUP_LAG=42 node tests/console/scenario.mjs
//
// Not a test of the broker: the real end-to-end test is crates/sluice/tests/console.rs.

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PORT = Number(process.argv[2] || 4199);
const CONSOLE_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../crates/http/console');
const TYPES = { html: 'text/html', js: 'text/javascript', css: 'text/css', svg: 'image/svg+xml' };
const started = Date.now();

const counters = { messages_in: 0, bytes_in: 0, messages_out: 0, bytes_out: 0 };
const topics = new Map();
const nsqChannels = new Map(); // "topic/channel" → channel
const groups = new Map([['billing', { group_id: 'billing', topic: 'orders', committed: [100, 90, 88] }]]);

function addTopic(name, partitions) {
  topics.set(name, {
    name,
    partitions: Array.from({ length: partitions }, (_, p) => ({ partition: p, messages: [] })),
    config: {},
  });
}
addTopic('orders', 3);
for (let i = 0; i < 320; i += 1) append('orders', i % 3, `order ${i}`, `{"order": ${i}, "amount": ${(i * 7) % 100}}`, []);

function append(name, partition, key, value, headers) {
  const part = topics.get(name).partitions[partition];
  part.messages.push({ partition, offset: part.messages.length, timestamp_ms: Date.now(), key, value, headers });
  counters.messages_in += 1;
  counters.bytes_in += (value || '').length + 60;
  return { partition, offset: part.messages.length - 1 };
}

setInterval(() => {
  const n = Math.round(400 + 300 * Math.sin((Date.now() - started) / 20000) + Math.random() * 100);
  counters.messages_in += n;
  counters.bytes_in += n * 512;
  counters.messages_out += Math.round(n * 0.9);
  counters.bytes_out += Math.round(n * 0.9 * 512);
}, 1000);

const partSummary = (p) => ({
  partition: p.partition,
  log_start_offset: 0,
  log_end_offset: p.messages.length,
  size_bytes: p.messages.length * 120,
  segments: 1,
  messages_in: p.messages.length,
  bytes_in: p.messages.length * 120,
  messages_out: 0,
  bytes_out: 0,
});
const topicDetail = (t) => ({
  name: t.name,
  partitions: t.partitions.map(partSummary),
  config: [
    { name: 'cleanup.policy', value: 'delete', source: 'default' },
    { name: 'retention.ms', value: t.config['retention.ms'] || '604800000', source: t.config['retention.ms'] ? 'topic' : 'default' },
  ],
});
function groupOffsets(g) {
  const t = topics.get(g.topic);
  return g.committed.map((c, p) => {
    const end = t ? t.partitions[p].messages.length : 0;
    return { topic: g.topic, partition: p, committed_offset: c, log_end_offset: end, lag: Math.max(0, end - c), metadata: '' };
  });
}
function channel(topic, name) {
  const key = `${topic}/${name}`;
  if (!nsqChannels.has(key)) nsqChannels.set(key, { topic, channel: name, paused: false, depth: 0, in_flight: 0, deferred: 0, requeued: 0, timed_out: 0, finished: 0, clients: 0 });
  return nsqChannels.get(key);
}

/** A 3-node cluster as `/api/cluster` reports it from node 1; node 3 is down every other 30 s. */
function clusterStatus() {
  const cycle = Math.floor((Date.now() - started) / 30_000);
  const down = cycle % 2 === 1 ? [3] : [];
  const term = 3 + cycle;
  const node = (id) => ({
    node_id: id,
    cluster_addr: `127.0.0.1${id}:9093`,
    kafka_addr: `127.0.0.1${id}:9092`,
    nsq_tcp_addr: `127.0.0.1${id}:4150`,
    http_addr: `127.0.0.1${id}:4151`,
    rack: null,
    metadata_member: 'voter',
    last_seen_ms: started,
    up: !down.includes(id),
    last_contact_ms: id === 1 ? 0 : down.includes(id) ? 4000 + ((Date.now() - started) % 30_000) : 400,
    stored_bytes: 123456789 * id,
    partitions_led: 0,
    replicas: 0,
  });
  const placement = [];
  for (const t of topics.values()) {
    t.partitions.forEach((_, p) => {
      const replicas = [1, 2, 3].map((i) => ((p + i - 1) % 3) + 1);
      const leader = down.includes(replicas[0]) ? replicas[1] : replicas[0];
      const isr = p % 2 ? replicas : replicas.filter((r) => !down.includes(r));
      placement.push({ topic: t.name, partition: p, leader, replicas, isr, offline_replicas: replicas.filter((r) => down.includes(r)) });
    });
  }
  const nodes = [1, 2, 3].map(node);
  for (const n of nodes) {
    n.partitions_led = placement.filter((p) => p.leader === n.node_id).length;
    n.replicas = placement.filter((p) => p.replicas.includes(n.node_id)).length;
  }
  const group = { role: 'leader', term, leader: 1, commit_index: 40 + cycle, last_log_index: 40 + cycle, voters: [1, 2, 3], learners: [], followers: [] };
  const partitions = placement.map((p) => ({ ...p, ...group, leader: p.leader, under_replicated: p.isr.length < p.replicas.length }));
  const under = placement.filter((p) => p.isr.length < p.replicas.length);
  return { node_id: 1, cluster_id: 'mock-cluster', metadata: group, nodes, partitions, placement, under_replicated: under, leaders: nodes.map((n) => ({ node_id: n.node_id, partitions: n.partitions_led })) };
}

/** Routes one API call; returns [status, body] or null for an unknown path. */
function api(method, parts, query, body) {
  const notFound = (what) => [404, { error: `unknown ${what}` }];
  const [a, b, c, d, e, f, g] = parts;
  if (method === 'GET' && a === 'overview') {
    return [200, { now_ms: Date.now(), topics: topics.size, partitions: [...topics.values()].reduce((n, t) => n + t.partitions.length, 0), groups: groups.size, nsq_channels: nsqChannels.size, connections: { kafka: 3, nsq: 2 }, size_bytes: 123456789, ...counters }];
  }
  if (method === 'GET' && a === 'cluster') {
    return process.env.MOCK_CLUSTER === '1' ? [200, clusterStatus()] : [404, { error: 'this node is not part of a cluster (started without --node-id)' }];
  }
  if (method === 'GET' && a === 'mqtt') {
    return [200, {
      listeners: { tcp: '127.0.0.1:1883', websocket: '127.0.0.1:8083', tls: null, websocket_tls: null },
      connected_clients: 2, subscriptions: 3, retained_messages: 12,
      persistent_sessions: { count: 2, truncated: false, sessions: [
        { client_id: 'sensor-hub', connected: true, disconnected_at_ms: null, expiry_secs: null, subscriptions: [{ filter: 'plant/+/temp', qos: 1 }, { filter: 'alerts/#', qos: 2 }] },
        { client_id: 'night-shift', connected: false, disconnected_at_ms: started - 60000, expiry_secs: 3600, subscriptions: [{ filter: 'jobs/#', qos: 1 }] },
      ] },
      shared_subscriptions: { count: 1, truncated: false, groups: [
        { group: 'workers', topic: 'jobs', channel: 'mqtt-share.workers.0123456789abcdef', members: 1, depth: 4, in_flight: 1 },
      ] },
    }];
  }
  if (method === 'GET' && a === 'node') return [200, { node_id: 1, version: '0.1.0-mock', uptime_ms: Date.now() - started }];
  if (method === 'GET' && a === 'clients') {
    return [200, [
      { id: 1, protocol: 'kafka', peer: '127.0.0.1:50312', connected_at_ms: started, requests: 1204, client_id: 'rdkafka', hostname: null, user_agent: null, topic: null, channel: null },
      { id: 2, protocol: 'nsq', peer: '127.0.0.1:50320', connected_at_ms: started, requests: 88, client_id: 'worker-1', hostname: 'box', user_agent: 'go-nsq/1.1.0', topic: 'jobs', channel: 'workers' },
    ]];
  }
  if (a === 'topics' && !b) {
    if (method === 'GET') return [200, [...topics.values()].map((t) => ({ name: t.name, partitions: t.partitions.length, messages: t.partitions.reduce((n, p) => n + p.messages.length, 0), size_bytes: 1000, messages_in: t.partitions.reduce((n, p) => n + p.messages.length, 0), bytes_in: 0, messages_out: 0, bytes_out: 0 }))];
    if (method === 'POST') {
      if (!/^[A-Za-z0-9._-]{1,249}$/.test(body.name || '')) return [400, { error: 'invalid topic name' }];
      if (topics.has(body.name)) return [409, { error: `topic ${body.name} already exists` }];
      addTopic(body.name, body.partitions || 1);
      return [201, topicDetail(topics.get(body.name))];
    }
  }
  if (a === 'topics' && b) {
    const t = topics.get(b);
    if (!t) return notFound(`topic ${b}`);
    if (!c && method === 'GET') return [200, topicDetail(t)];
    if (!c && method === 'DELETE') return topics.delete(b) && [204, null];
    if (c === 'messages' && method === 'POST') {
      const p = body.partition ?? 0;
      if (!t.partitions[p]) return notFound(`partition ${p}`);
      return [201, append(b, p, body.key ?? null, body.value, (body.headers || []).map((h) => ({ ...h, value_encoding: 'text' })))];
    }
    if (c === 'config' && method === 'PATCH') {
      Object.assign(t.config, body);
      return [200, topicDetail(t).config];
    }
    if (c === 'partitions' && d !== undefined) {
      const part = t.partitions[Number(d)];
      if (!part) return notFound(`partition ${d}`);
      if (!e) return [200, { ...partSummary(part), segments: [{ base_offset: 0, size_bytes: 100 }] }];
      const from = Number(query.get('offset') || 0);
      const limit = Math.min(1000, Number(query.get('limit') || 20));
      const messages = part.messages.slice(from, from + limit).map((m) => ({ ...m, key_encoding: 'text', value_encoding: 'text' }));
      return [200, { messages, next_offset: from + messages.length }];
    }
  }
  if (a === 'groups' && !b && method === 'GET') {
    return [200, [...groups.values()].map((g) => ({ group_id: g.group_id, state: 'Empty', protocol_type: 'consumer', members: 0, lag: groupOffsets(g).reduce((n, o) => n + o.lag, 0) }))];
  }
  if (a === 'groups' && b) {
    const g = groups.get(b);
    if (!g) return notFound(`group ${b}`);
    return [200, { group_id: b, state: 'Empty', protocol_type: 'consumer', protocol: '', generation: 4, members: [], offsets: groupOffsets(g) }];
  }
  if (a === 'nsq' && b === 'topics') {
    if (!c) {
      const byTopic = new Map();
      for (const ch of nsqChannels.values()) byTopic.set(ch.topic, [...(byTopic.get(ch.topic) || []), ch]);
      return [200, [...byTopic].map(([topic, chans]) => ({ topic, paused: false, depth: 0, message_count: chans[0].depth, channels: chans }))];
    }
    const ch = nsqChannels.get(`${c}/${e}`);
    if (!ch) return notFound(`channel ${c}/${e}`);
    if (method === 'GET') return [200, ch];
    if (method === 'DELETE') return nsqChannels.delete(`${c}/${e}`) && [204, null];
    if (f === 'pause' || f === 'unpause') ch.paused = f === 'pause';
    if (f === 'empty') ch.depth = 0;
    return g === undefined ? [200, ch] : null;
  }
  return null;
}

createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  let raw = '';
  req.on('data', (chunk) => {
    raw += chunk;
  });
  req.on('end', () => {
    const send = (status, body, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body === null ? '' : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    };
    if (url.pathname === '/' || url.pathname.startsWith('/console/')) {
      const name = url.pathname === '/' ? 'index.html' : url.pathname.slice('/console/'.length);
      try {
        return send(200, readFileSync(join(CONSOLE_DIR, name.replace(/[^\w.-]/g, ''))), TYPES[name.split('.').pop()] || 'text/plain');
      } catch {
        return send(404, 'not found', 'text/plain');
      }
    }
    if (url.pathname === '/topic/create') return send(200, '', 'text/plain');
    if (url.pathname === '/channel/create' || url.pathname === '/pub') {
      const topic = url.searchParams.get('topic');
      if (url.pathname === '/channel/create') channel(topic, url.searchParams.get('channel'));
      else for (const ch of nsqChannels.values()) if (ch.topic === topic) ch.depth += 1;
      return send(200, 'OK', 'text/plain');
    }
    if (url.pathname.startsWith('/api/')) {
      let body = {};
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {
        return send(400, { error: 'body is not JSON' });
      }
      const parts = url.pathname.slice(5).split('/').map(decodeURIComponent);
      const answer = api(req.method, parts, url.searchParams, body);
      return answer ? send(answer[0], answer[1]) : send(404, { error: `no API at ${req.method} ${url.pathname}` });
    }
    send(404, 'not found', 'text/plain');
  });
}).listen(PORT, '127.0.0.1', () => console.log(`mock console server on http://127.0.0.1:${PORT}/`));
