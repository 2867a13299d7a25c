// The console's cluster view on a real cluster, in headless Chromium (driven by
// crates/sluice/tests/console.rs): the page served by one node shows every node up and a
// replicated topic's placement (leader, replicas, ISR, nothing under-replicated); then, without
// a reload, once the driver has killed a node, it shows that node down and each of the topic's
// partitions under-replicated.
//
// Environment:
//   SLUICE_CONSOLE_URL        HTTP listener of the node whose console is opened (required)
//   CONSOLE_CLUSTER_NODES     how many nodes the cluster has
//   CONSOLE_CLUSTER_TOPIC     a topic with a replica on every node
//   CONSOLE_CLUSTER_PARTITIONS  its partition count
//   CONSOLE_KILLED_NODE       the node the driver kills
//   CONSOLE_SCREENSHOTS, CHROMIUM  as for scenario.mjs
//
// Handshake with the driver: once the healthy cluster is checked, prints a line
// `KILL NODE <id>` and waits for any line on stdin saying it is done.

import { createInterface } from 'node:readline';
import { byTestId, check, runScenario, screenshot, step } from './browser.mjs';

const BASE = (process.env.SLUICE_CONSOLE_URL || '').replace(/\/$/, '');
const NODES = Number(process.env.CONSOLE_CLUSTER_NODES || 'NaN');
const TOPIC = process.env.CONSOLE_CLUSTER_TOPIC || '';
const PARTITIONS = Number(process.env.CONSOLE_CLUSTER_PARTITIONS || 'NaN');
const KILLED = process.env.CONSOLE_KILLED_NODE || '';
if (!BASE || !TOPIC || !KILLED || !(NODES > 0) || !(PARTITIONS > 0)) {
  console.error('set SLUICE_CONSOLE_URL, CONSOLE_CLUSTER_NODES, CONSOLE_CLUSTER_TOPIC, CONSOLE_CLUSTER_PARTITIONS and CONSOLE_KILLED_NODE');
  process.exit(2);
}
/** How long the driver may take to kill the node. */
const KILL_TIMEOUT_MS = 30_000;

/** Resolves with the next line on stdin, or rejects after `timeoutMs`. */
function nextStdinLine(timeoutMs) {
  const lines = createInterface({ input: process.stdin });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      lines.close();
      reject(new Error(`no answer from the driver within ${timeoutMs} ms`));
    }, timeoutMs);
    lines.once('line', (line) => {
      clearTimeout(timer);
      lines.close();
      resolve(line);
    });
  });
}

const placementRow = (page, partition, attrs = {}) =>
  byTestId(page, 'placement-row', { topic: TOPIC, partition: String(partition), ...attrs });

async function run(page) {
  await step(page, 'the cluster page lists every node up', async () => {
    await page.goto(`${BASE}/#/cluster`);
    await page.getByTestId('status').filter({ hasText: 'Live' }).waitFor();
    for (let id = 1; id <= NODES; id += 1) await byTestId(page, 'cluster-node-row', { node: String(id), up: 'true' }).waitFor();
    check((await byTestId(page, 'cluster-node-row').count()) === NODES, `the page lists ${await byTestId(page, 'cluster-node-row').count()} nodes, want ${NODES}`);
    await page.getByTestId('cluster-nodes-up').filter({ hasText: `${NODES} / ${NODES}` }).waitFor();
    await page.getByTestId('cluster-meta-leader').filter({ hasText: /node \d+/ }).waitFor();
    await page.getByTestId('elections-svg').waitFor();
  });

  await step(page, "the topic's placement: a leader, every node a replica, all in sync", async () => {
    for (let p = 0; p < PARTITIONS; p += 1) {
      const row = placementRow(page, p, { 'under-replicated': 'false' });
      await row.waitFor();
      const leader = await row.getAttribute('data-leader');
      check(/^\d+$/.test(leader || ''), `partition ${p} has no leader on the page`);
      const replicas = await row.locator('.replica').allTextContents();
      check(replicas.length === NODES, `partition ${p} shows replicas ${replicas}, want ${NODES}`);
      check(replicas.includes(leader), `partition ${p}: leader ${leader} not among replicas ${replicas}`);
    }
    await screenshot(page, 'cluster');
  });

  await step(page, `node ${KILLED} is killed`, async () => {
    await page.evaluate(() => {
      window.__notReloaded = true;
    });
    console.log(`KILL NODE ${KILLED}`);
    await nextStdinLine(KILL_TIMEOUT_MS);
  });

  await step(page, `the page shows node ${KILLED} down and the topic under-replicated`, async () => {
    await byTestId(page, 'cluster-node-row', { node: KILLED, up: 'false' }).waitFor();
    for (let p = 0; p < PARTITIONS; p += 1) await placementRow(page, p, { 'under-replicated': 'true' }).waitFor();
    await page.getByTestId('cluster-nodes-up').filter({ hasText: `${NODES - 1} / ${NODES}` }).waitFor();
    check(await page.evaluate(() => window.__notReloaded === true), 'the page reloaded');
    await screenshot(page, 'cluster-node-down');
  });
}

runScenario('cluster scenario', run);
