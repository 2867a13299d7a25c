// Small DOM and formatting helpers shared by every view: an element builder, tables with empty
// states, confirm-on-second-click buttons, toasts and number/byte/time formatting.

/** Builds an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * A table: columns are {title, cell: row => node|string, class?, num?}; rows are data objects.
 * `rowAttrs(row)` adds attributes to each <tr> (testids, data-* keys for the test).
 */
export function table({ columns, rows, empty, testid, rowAttrs }) {
  if (!rows.length) return h('div', { class: 'empty', testid: testid && `${testid}-empty` }, empty || 'Nothing here yet.');
  const head = h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : c.class }, c.title)));
  const body = rows.map((row) =>
    h('tr', rowAttrs ? rowAttrs(row) : {}, columns.map((c) => h('td', { class: c.num ? 'num' : c.class }, c.cell(row)))),
  );
  return h('div', { class: 'table-wrap' }, h('table', { testid }, h('thead', {}, head), h('tbody', {}, body)));
}

/** A card with a title row (title + optional actions) and a body. */
export function card(title, actions, ...body) {
  return h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, title), actions), body);
}

/** A big number with a label, for the overview and detail headers. */
export function stat(label, value, testid) {
  return h('div', { class: 'stat', testid }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}` }, text);
}

/**
 * A button that asks for a second click before a destructive action ("Delete" → "Really
 * delete?"), instead of window.confirm, which blocks the page and headless runs.
 */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = false;
  let timer;
  const button = h('button', { ...attrs, type: 'button', class: `btn danger ${attrs.class || ''}` }, label);
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      button.classList.add('armed');
      timer = setTimeout(() => {
        armed = false;
        button.textContent = label;
        button.classList.remove('armed');
      }, 4000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
      armed = false;
      button.textContent = label;
      button.classList.remove('armed');
    }
  });
  return button;
}

/** Runs `action` with `button` disabled meanwhile; errors go to a toast. */
export async function busy(button, action) {
  button.disabled = true;
  try {
    return await action();
  } catch (err) {
    toast(err.message, 'error');
    return undefined;
  } finally {
    button.disabled = false;
  }
}

/** Toasts on screen at once; older ones give way. */
const TOASTS_MAX = 3;

/** A transient message at the bottom right; errors stay longer. */
export function toast(message, kind = 'ok') {
  const host = document.getElementById('toasts');
  if (!host) return;
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', testid: 'toast' }, message);
  host.append(el);
  while (host.children.length > TOASTS_MAX) host.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

/** An inline error box for a view whose data could not be loaded. */
export function errorBox(err) {
  return h('div', { class: 'error-box', role: 'alert', testid: 'error' }, err.message || String(err));
}

// ---- formatting ---------------------------------------------------------------------------

const numberFormat = new Intl.NumberFormat('en-US');

export function fmtNum(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return numberFormat.format(n);
}

/** 1536 → "1.5 KiB". */
export function fmtBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A rate with k/M suffixes: 12345.6 → "12.3k". */
export function fmtShort(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  if (abs >= 10 || Number.isInteger(n)) return String(Math.round(n));
  return n.toFixed(1);
}

/** 93_000 → "1m 33s". */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const hrs = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${hrs}h`;
  if (hrs) return `${hrs}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A link into the console's hash router with encoded path parts. */
export function link(parts, text, attrs = {}) {
  return h('a', { ...attrs, href: `#/${parts.map(encodeURIComponent).join('/')}` }, text);
}

/** Asks the shell for an immediate refresh (after an action), instead of waiting for the poll. */
export function refreshNow() {
  window.dispatchEvent(new Event('console:refresh'));
}
