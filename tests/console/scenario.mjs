// End-to-end scenario for Sluice's web console in headless Chromium (Debian's /usr/bin/chromium
// driven by playwright-core). Proves that through the UI alone one can create a topic, publish a
// message and see it in the message browser, pause and unpause an NSQ channel, read a consumer
// group's lag, and see that the cluster page calls a single node one; saves a screenshot of each
// page, and that the MQTT page lists a connected client's persistent session. The cluster view
// on a real cluster is `cluster.mjs`.
//
// Environment:
//   SLUICE_CONSOLE_URL       base URL of the broker's HTTP listener (required), e.g. http://127.0.0.1:4151
//   CONSOLE_SCREENSHOTS      directory for the screenshots (default target/console-screenshots)
//   CONSOLE_GROUP            a consumer group with committed offsets behind the end (optional)
//   CONSOLE_GROUP_TOPIC      that group's topic
//   CONSOLE_GROUP_LAG        its total lag the page must show
//   CONSOLE_EXPECT_KAFKA_CLIENT  "1" when a Kafka client stays connected for the clients page
//   CONSOLE_MQTT_CLIENT      client id of an MQTT client connected with a persistent session and a
//                            subscription, with at least one retained message stored (optional)
//   CHROMIUM                 browser binary (default /usr/bin/chromium)
//
// Exit status 0 when every step passed; otherwise the failing step is printed, with a screenshot
// of the page at that moment.

import { byTestId, check, runScenario, screenshot, step } from './browser.mjs';

const BASE = (process.env.SLUICE_CONSOLE_URL || '').replace(/\/$/, '');
if (!BASE) {
  console.error('SLUICE_CONSOLE_URL is not set (e.g. http://127.0.0.1:4151)');
  process.exit(2);
}
const GROUP = process.env.CONSOLE_GROUP || '';
const GROUP_TOPIC = process.env.CONSOLE_GROUP_TOPIC || '';
const GROUP_LAG = Number(process.env.CONSOLE_GROUP_LAG || 'NaN');
/** Set when the driver keeps a Kafka client connected, which the clients page must list. */
const EXPECT_KAFKA_CLIENT = process.env.CONSOLE_EXPECT_KAFKA_CLIENT === '1';
const MQTT_CLIENT = process.env.CONSOLE_MQTT_CLIENT || '';

const suffix = `${Date.now().toString(36)}${process.pid}`;
const TOPIC = `console-e2e-${suffix}`;
const MESSAGE = `hello from the console ${suffix}`;
const NSQ_TOPIC = `console-nsq-${suffix}`;
const NSQ_CHANNEL = 'workers';

/** A call to the broker's HTTP API outside the browser, for setup and cross-checks. */
async function http(method, url, body) {
  const headers = body && body.startsWith('{') ? { 'content-type': 'application/json' } : {};
  const response = await fetch(`${BASE}${url}`, { method, body, headers });
  const text = await response.text();
  check(response.ok, `${method} ${url} → ${response.status} ${text}`);
  return (response.headers.get('content-type') || '').includes('json') ? JSON.parse(text) : text;
}

async function goto(page, hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

async function run(page) {
  await step(page, 'overview loads and goes live', async () => {
    await page.goto(`${BASE}/`);
    await page.getByTestId('status').filter({ hasText: 'Live' }).waitFor();
    await page.getByTestId('stat-topics').waitFor();
    await page.getByTestId('throughput-messages').waitFor();
    await screenshot(page, 'overview');
  });

  await step(page, 'create a topic', async () => {
    await page.getByTestId('nav-topics').click();
    await page.getByTestId('create-topic-name').fill(TOPIC);
    await page.getByTestId('create-topic-partitions').fill('2');
    await page.getByTestId('create-topic-submit').click();
    await page.waitForFunction((t) => location.hash === `#/topics/${encodeURIComponent(t)}`, TOPIC);
    await page.getByTestId('topic-name').filter({ hasText: TOPIC }).waitFor();
    await page.locator('[data-testid="partitions-table"] tbody tr').nth(1).waitFor();
    const detail = await http('GET', `/api/topics/${encodeURIComponent(TOPIC)}`);
    check(detail.partitions.length === 2, `API reports ${detail.partitions.length} partitions, want 2`);
    await screenshot(page, 'topic-created');
  });

  await step(page, 'publish a message and see it in the browser', async () => {
    await page.getByTestId('publish-partition').selectOption('1');
    await page.getByTestId('publish-key').fill('greeting');
    await page.getByTestId('publish-value').fill(MESSAGE);
    await page.getByTestId('publish-headers').fill('source: console-e2e');
    await page.getByTestId('publish-submit').click();
    await page.getByTestId('publish-result').filter({ hasText: 'partition 1 at offset 0' }).waitFor();
    const row = byTestId(page, 'message-row', { partition: '1', offset: '0' });
    await row.getByTestId('message-value').filter({ hasText: MESSAGE }).waitFor();
    check((await row.textContent()).includes('console-e2e'), 'the message row does not show its header');
    const stored = await http('GET', `/api/topics/${encodeURIComponent(TOPIC)}/partitions/1/messages?offset=0&limit=1`);
    check(stored.messages[0]?.value === MESSAGE, `stored value is ${JSON.stringify(stored.messages[0])}`);
    await screenshot(page, 'message-browser');
  });

  await step(page, 'the page updates live without reloading', async () => {
    const marker = await page.evaluate(() => {
      window.__notReloaded = true;
      return window.__notReloaded;
    });
    check(marker, 'could not mark the page');
    await http('POST', `/api/topics/${encodeURIComponent(TOPIC)}/messages`, JSON.stringify({ partition: 1, value: `${MESSAGE} (live)` }));
    await byTestId(page, 'message-row', { partition: '1', offset: '1' }).getByTestId('message-value').filter({ hasText: '(live)' }).waitFor();
    check(await page.evaluate(() => window.__notReloaded === true), 'the page reloaded');
  });

  await step(page, 'the topic is listed with its two messages', async () => {
    await page.getByTestId('nav-topics').click();
    const row = byTestId(page, 'topic-row', { topic: TOPIC });
    await row.waitFor();
    await page.waitForFunction(
      (t) => document.querySelector(`[data-testid="topic-row"][data-topic="${t}"] td:nth-child(3)`)?.textContent === '2',
      TOPIC,
    );
    await screenshot(page, 'topics');
  });

  await step(page, 'pause and unpause an NSQ channel', async () => {
    const q = `topic=${encodeURIComponent(NSQ_TOPIC)}&channel=${NSQ_CHANNEL}`;
    await http('POST', `/topic/create?topic=${encodeURIComponent(NSQ_TOPIC)}`);
    await http('POST', `/channel/create?${q}`);
    await http('POST', `/pub?topic=${encodeURIComponent(NSQ_TOPIC)}`, 'job 1');
    await http('POST', `/pub?topic=${encodeURIComponent(NSQ_TOPIC)}`, 'job 2');
    await page.getByTestId('nav-nsq').click();
    const row = byTestId(page, 'channel-row', { topic: NSQ_TOPIC, channel: NSQ_CHANNEL });
    await row.waitFor();
    await row.getByTestId('channel-depth').filter({ hasText: /^2$/ }).waitFor();
    await row.getByTestId('channel-pause').click();
    await byTestId(page, 'channel-row', { topic: NSQ_TOPIC, channel: NSQ_CHANNEL, paused: 'true' }).waitFor();
    const paused = await http('GET', `/api/nsq/topics/${encodeURIComponent(NSQ_TOPIC)}/channels/${NSQ_CHANNEL}`);
    check(paused.paused === true, `API says paused=${paused.paused} after Pause`);
    await screenshot(page, 'nsq-paused');
    await byTestId(page, 'channel-row', { topic: NSQ_TOPIC, channel: NSQ_CHANNEL }).getByTestId('channel-unpause').click();
    await byTestId(page, 'channel-row', { topic: NSQ_TOPIC, channel: NSQ_CHANNEL, paused: 'false' }).waitFor();
    const unpaused = await http('GET', `/api/nsq/topics/${encodeURIComponent(NSQ_TOPIC)}/channels/${NSQ_CHANNEL}`);
    check(unpaused.paused === false, `API says paused=${unpaused.paused} after Unpause`);
    await screenshot(page, 'nsq-unpaused');
  });

  if (GROUP) {
    await step(page, "see a consumer group's lag", async () => {
      await page.getByTestId('nav-groups').click();
      const row = byTestId(page, 'group-row', { group: GROUP });
      await row.getByTestId('group-lag').filter({ hasText: new RegExp(`^${GROUP_LAG.toLocaleString('en-US')}$`) }).waitFor();
      await screenshot(page, 'groups');
      await row.getByTestId('group-link').click();
      await page.getByTestId('group-total-lag').filter({ hasText: GROUP_LAG.toLocaleString('en-US') }).waitFor();
      const lags = await page.locator(`[data-testid="offset-row"][data-topic="${GROUP_TOPIC}"]`).evaluateAll((rows) =>
        rows.map((r) => Number(r.dataset.lag)),
      );
      check(lags.length > 0, `no partition rows for ${GROUP_TOPIC}`);
      check(lags.reduce((a, b) => a + b, 0) === GROUP_LAG, `partition lags ${lags} do not add up to ${GROUP_LAG}`);
      // A few polls draw the lag over time.
      await page.locator('[data-testid="lag-chart-svg"]').waitFor();
      await page.waitForFunction(() => Number(document.querySelector('[data-testid="lag-chart-svg"]')?.dataset.points) >= 3);
      await screenshot(page, 'group-lag');
    });
  }

  await step(page, 'clients page lists connections', async () => {
    await page.getByTestId('nav-clients').click();
    await page.locator('[data-testid="clients-table"], [data-testid="clients-table-empty"]').first().waitFor();
    if (EXPECT_KAFKA_CLIENT) await byTestId(page, 'client-row', { protocol: 'kafka' }).first().waitFor();
    await screenshot(page, 'clients');
  });

  if (MQTT_CLIENT) {
    await step(page, 'the MQTT page shows the connected session and the retained count', async () => {
      await page.getByTestId('nav-mqtt').click();
      const row = byTestId(page, 'mqtt-session-row', { 'client-id': MQTT_CLIENT, connected: 'true' });
      await row.getByTestId('mqtt-session-filters').filter({ hasText: /\(QoS 1\)/ }).waitFor();
      await row.getByTestId('mqtt-session-pending').filter({ hasText: /^[0-9]/ }).waitFor();
      await page.getByTestId('stat-mqtt-retained').filter({ hasText: /^[1-9]/ }).waitFor();
      await page.getByTestId('stat-mqtt-clients').filter({ hasText: /^[1-9]/ }).waitFor();
      await page.getByTestId('mqtt-listeners').filter({ hasText: 'MQTT 127.0.0.1:' }).waitFor();
      const api = await http('GET', '/api/mqtt');
      check(api.persistent_sessions.sessions.some((s) => s.client_id === MQTT_CLIENT), `/api/mqtt does not list ${MQTT_CLIENT}`);
      await screenshot(page, 'mqtt');
    });
  }

  await step(page, 'the cluster page says this is a single node', async () => {
    await page.getByTestId('nav-cluster').click();
    await page.getByTestId('cluster-single').waitFor();
    check((await page.getByTestId('error').count()) === 0, 'a single node shows an error on the cluster page');
    await screenshot(page, 'cluster-single-node');
  });

  await step(page, 'an API error is shown', async () => {
    await goto(page, `#/topics/${encodeURIComponent(`${TOPIC}-missing`)}`);
    const error = page.getByTestId('error');
    await error.waitFor();
    check(/HTTP 404/.test(await error.textContent()), `error box says: ${await error.textContent()}`);
    await screenshot(page, 'error');
  });

  await step(page, 'delete the topic', async () => {
    await goto(page, `#/topics/${encodeURIComponent(TOPIC)}`);
    await page.getByTestId('topic-name').filter({ hasText: TOPIC }).waitFor();
    await page.getByTestId('delete-topic').click();
    await page.getByTestId('delete-topic').filter({ hasText: 'Click again' }).click();
    await page.waitForFunction(() => location.hash === '#/topics');
    await page.locator('[data-testid="topics-table"], [data-testid="topics-table-empty"]').first().waitFor();
    check((await byTestId(page, 'topic-row', { topic: TOPIC }).count()) === 0, 'the deleted topic is still listed');
  });

  await step(page, 'overview shows the traffic', async () => {
    await page.getByTestId('nav-overview').click();
    await page.getByTestId('throughput-messages').waitFor();
    await screenshot(page, 'overview-after');
  });
}

runScenario('console scenario', run);
