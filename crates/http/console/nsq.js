// NSQ topics and their channels: depth, in-flight, deferred and counters, with pause/unpause,
// empty and delete actions per channel.

import { del, get, path, post } from './api.js';
import { badge, busy, card, confirmButton, fill, fmtNum, h, link, refreshNow, table, toast } from './dom.js';

function channelPath(c, ...rest) {
  return path('nsq', 'topics', c.topic, 'channels', c.channel, ...rest);
}

function actions(c) {
  const pause = h(
    'button',
    { type: 'button', class: 'btn small', testid: c.paused ? 'channel-unpause' : 'channel-pause' },
    c.paused ? 'Unpause' : 'Pause',
  );
  pause.addEventListener('click', async () => {
    const verb = c.paused ? 'unpause' : 'pause';
    if (await busy(pause, () => post(channelPath(c, verb)))) {
      toast(`${c.topic}/${c.channel} ${verb}d`);
      refreshNow();
    }
  });
  const empty = confirmButton('Empty', 'Really empty?', async () => {
    try {
      await post(channelPath(c, 'empty'));
      toast(`${c.topic}/${c.channel} emptied`);
      refreshNow();
    } catch (err) {
      toast(err.message, 'error');
    }
  }, { class: 'small', testid: 'channel-empty' });
  const remove = confirmButton('Delete', 'Really delete?', async () => {
    try {
      await del(channelPath(c));
      toast(`${c.topic}/${c.channel} deleted`);
      refreshNow();
    } catch (err) {
      toast(err.message, 'error');
    }
  }, { class: 'small', testid: 'channel-delete' });
  return h('div', { class: 'actions' }, pause, empty, remove);
}

function channelTable(topic) {
  const rows = (topic.channels || []).map((c) => ({ topic: topic.topic, ...c }));
  return table({
    rows,
    testid: 'channels-table',
    empty: 'No channels. A channel appears when a consumer subscribes (SUB) or one is created over HTTP.',
    rowAttrs: (c) => ({ testid: 'channel-row', dataset: { topic: c.topic, channel: c.channel, paused: String(!!c.paused) } }),
    columns: [
      { title: 'Channel', cell: (c) => h('span', { class: 'strong' }, c.channel) },
      { title: 'State', cell: (c) => h('span', { testid: 'channel-state' }, c.paused ? badge('paused', 'amber') : badge('active', 'green')) },
      { title: 'Depth', num: true, cell: (c) => h('span', { testid: 'channel-depth' }, fmtNum(c.depth)) },
      { title: 'In flight', num: true, cell: (c) => fmtNum(c.in_flight) },
      { title: 'Deferred', num: true, cell: (c) => fmtNum(c.deferred) },
      { title: 'Requeued', num: true, cell: (c) => fmtNum(c.requeued) },
      { title: 'Timed out', num: true, cell: (c) => fmtNum(c.timed_out) },
      { title: 'Finished', num: true, cell: (c) => fmtNum(c.finished) },
      { title: 'Clients', num: true, cell: (c) => fmtNum(c.clients) },
      { title: '', class: 'actions-cell', cell: actions },
    ],
  });
}

export function mount(root) {
  const list = h('div', { testid: 'nsq-topics' });
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'NSQ'), h('p', { class: 'muted' }, 'NSQ topics and channels. Channels are durable: depth counts what is stored and not yet finished.')),
    list,
  );
  async function refresh() {
    const topics = await get(path('nsq', 'topics'));
    // A re-render would disarm a half-confirmed Empty/Delete; wait until it is used or lapses.
    if (list.querySelector('.armed')) return;
    topics.sort((a, b) => a.topic.localeCompare(b.topic));
    if (!topics.length) {
      fill(list, card('Topics', null, h('div', { class: 'empty', testid: 'nsq-empty' }, 'No NSQ topics yet. Publish with PUB or POST /pub to create one.')));
      return;
    }
    fill(
      list,
      topics.map((t) =>
        h(
          'section',
          { class: 'card', testid: 'nsq-topic', dataset: { topic: t.topic } },
          h(
            'div',
            { class: 'card-head' },
            h('h2', {}, link(['topics', t.topic], t.topic), ' ', t.paused ? badge('paused', 'amber') : null),
            h('div', { class: 'muted' }, `depth ${fmtNum(t.depth)} · ${fmtNum(t.message_count)} messages`),
          ),
          channelTable(t),
        ),
      ),
    );
  }
  return { refresh };
}
