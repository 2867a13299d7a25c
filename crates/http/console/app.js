// The console's shell: a router on location.hash, one poll loop that refreshes the mounted view
// every POLL_MS, and the overview sampler that keeps throughput history across views.
//
// A view is `mount(root, params) → {refresh(): Promise, unmount?()}`: mount builds the parts
// that hold user input once, refresh re-renders only data, so live updates never clobber a
// half-typed form. A refresh that throws shows its message above the view until one succeeds.

import { get, path } from './api.js';
import { fill, fmtDuration, h } from './dom.js';
import * as overview from './overview.js';
import * as topics from './topics.js';
import * as topic from './topic.js';
import * as groups from './groups.js';
import * as nsq from './nsq.js';
import * as mqtt from './mqtt.js';
import * as clients from './clients.js';
import * as cluster from './cluster.js';

/** Live-update period: often enough to feel live, rare enough to cost the broker nothing. */
const POLL_MS = 2000;

const ROUTES = [
  { pattern: /^\/?$/, mount: overview.mount, nav: 'overview', title: 'Overview' },
  { pattern: /^\/topics\/?$/, mount: topics.mount, nav: 'topics', title: 'Topics' },
  { pattern: /^\/topics\/([^/]+)\/?$/, mount: topic.mount, nav: 'topics', title: 'Topic' },
  { pattern: /^\/groups\/?$/, mount: groups.mountList, nav: 'groups', title: 'Consumer groups' },
  { pattern: /^\/groups\/([^/]+)\/?$/, mount: groups.mountDetail, nav: 'groups', title: 'Consumer group' },
  { pattern: /^\/nsq\/?$/, mount: nsq.mount, nav: 'nsq', title: 'NSQ' },
  { pattern: /^\/mqtt\/?$/, mount: mqtt.mount, nav: 'mqtt', title: 'MQTT' },
  { pattern: /^\/clients\/?$/, mount: clients.mount, nav: 'clients', title: 'Clients' },
  { pattern: /^\/cluster\/?$/, mount: cluster.mount, nav: 'cluster', title: 'Cluster' },
];

const state = { view: null, route: null, generation: 0, polling: false };

/** decodeURIComponent that keeps a malformed escape as typed instead of throwing. */
function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function currentRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  for (const route of ROUTES) {
    const match = raw.match(route.pattern);
    if (match) return { route, params: match.slice(1).map(decode) };
  }
  return { route: null, params: [decode(raw)] };
}

async function navigate() {
  state.generation += 1;
  const generation = state.generation;
  if (state.view && state.view.unmount) state.view.unmount();
  state.view = null;
  const main = document.getElementById('view');
  const errorSlot = document.getElementById('view-error');
  fill(errorSlot);
  const { route, params } = currentRoute();
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', route && a.dataset.nav === route.nav);
  if (!route) {
    fill(main, h('div', { class: 'empty big' }, `No page at “${params[0]}”. `, h('a', { href: '#/' }, 'Go to the overview')));
    return;
  }
  document.title = `${params[0] || route.title} · Sluice`;
  fill(main, h('div', { class: 'loading' }, 'Loading…'));
  const root = h('div', { class: 'view' });
  state.view = route.mount(root, params);
  main.replaceChildren(root);
  await refreshView(generation);
}

async function refreshView(generation) {
  const view = state.view;
  if (!view) return;
  const errorSlot = document.getElementById('view-error');
  try {
    await view.refresh();
    if (generation === state.generation) fill(errorSlot);
  } catch (err) {
    if (generation === state.generation) {
      fill(errorSlot, h('div', { class: 'error-box', role: 'alert', testid: 'error' }, err.message || String(err)));
    }
  }
}

function setStatus(ok, text) {
  const status = document.getElementById('status');
  status.classList.toggle('offline', !ok);
  fill(status, h('i', { class: 'dot' }), text);
}

/** One tick: sample the overview (for the throughput charts), then refresh the mounted view. */
async function poll() {
  if (state.polling) return;
  state.polling = true;
  try {
    try {
      overview.record(await get(path('overview')));
      setStatus(true, 'Live');
    } catch (err) {
      setStatus(false, err.status === 0 ? 'Offline' : 'API error');
    }
    await refreshView(state.generation);
  } finally {
    state.polling = false;
  }
}

/** The node as last fetched, and when: the sidebar's uptime counts on from there. */
let node = null;
let nodeFetchedAt = 0;

async function fetchNode() {
  try {
    node = await get(path('node'));
    nodeFetchedAt = Date.now();
  } catch {
    // The footer is decoration; the status light already reports an unreachable API.
  }
  showNode();
}

function showNode() {
  if (!node) return;
  fill(
    document.getElementById('node'),
    h('div', {}, `Sluice ${node.version || ''}`),
    h('div', { class: 'muted' }, `node ${node.node_id ?? '–'} · up ${fmtDuration(node.uptime_ms + Date.now() - nodeFetchedAt)}`),
  );
}

window.addEventListener('hashchange', () => navigate());
window.addEventListener('console:refresh', () => poll());
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) poll();
});
setInterval(() => {
  if (!document.hidden) poll();
}, POLL_MS);
setInterval(showNode, POLL_MS);
// Again now and then: a restarted broker has a new start time (and maybe version).
setInterval(fetchNode, 60_000);
fetchNode();
poll();
navigate();
