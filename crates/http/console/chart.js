// Time-series line charts drawn as SVG by hand: a few series over a fixed time window, nice
// y-axis ticks, clock labels on the x axis and a legend with each series' latest value.

const SVG_NS = 'http://www.w3.org/2000/svg';
const HEIGHT = 200;
const PAD = { top: 12, right: 16, bottom: 26, left: 56 };
/** The shortest time span a chart shows. */
const MIN_SPAN_MS = 60_000;

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * The smallest "nice" step (1, 2, 5 × 10^n) at or above `x`; with `binary`, nice in units of
 * 1024^k so byte axes read 256 KiB, 512 KiB rather than 293 KiB.
 */
function niceStep(x, binary = false) {
  if (x <= 0) return 1;
  if (binary && x >= 1024) {
    const unit = 1024 ** Math.floor(Math.log(x) / Math.log(1024));
    return niceStep(x / unit) * unit;
  }
  const exp = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * exp >= x) return m * exp;
  return 10 * exp;
}

function clock(ms) {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/**
 * Renders into `host` (replacing its content).
 * series: [{name, color, points: [[t_ms, value], ...]}]; windowMs: the longest time span shown,
 * ending at `now`; format: value → label for axis and legend; binary: the values are bytes.
 */
export function lineChart(host, { series, windowMs, now, format, testid, binary = false }) {
  const width = Math.max(host.clientWidth || 0, 320);
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  // Show at most `windowMs`, but no more than the history there is (at least a minute), so a
  // fresh page does not squeeze its first samples against the right edge.
  const oldest = Math.min(now, ...series.flatMap((ser) => (ser.points.length ? [ser.points[0][0]] : [])));
  const span = Math.min(windowMs, Math.max(MIN_SPAN_MS, now - oldest));
  const start = now - span;
  const visible = series.map((ser) => ({ ...ser, points: ser.points.filter(([t]) => t >= start - 5000) }));
  const maxValue = Math.max(0, ...visible.flatMap((ser) => ser.points.map(([, v]) => v)));
  // At most four grid steps of a nice size, and no empty steps above the highest value.
  const step = niceStep(maxValue / 4, binary);
  const steps = Math.max(1, Math.ceil(maxValue / step));
  const top = step * steps;
  const x = (t) => PAD.left + ((t - start) / span) * plotW;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;

  const svg = s('svg', { viewBox: `0 0 ${width} ${HEIGHT}`, width, height: HEIGHT, class: 'chart', role: 'img' });
  if (testid) svg.dataset.testid = testid;
  // How many samples the longest series has: lets a test wait for a drawn line.
  svg.dataset.points = String(Math.max(0, ...series.map((ser) => ser.points.length)));
  const defs = s('defs');
  const clipId = `clip-${Math.random().toString(36).slice(2)}`;
  defs.append(s('clipPath', { id: clipId }));
  defs.firstChild.append(s('rect', { x: PAD.left, y: PAD.top - 2, width: plotW, height: plotH + 4 }));
  svg.append(defs);

  for (let i = 0; i <= steps; i += 1) {
    const v = step * i;
    svg.append(s('line', { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v), class: i ? 'grid' : 'axis' }));
    svg.append(s('text', { x: PAD.left - 8, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, format(v)));
  }
  const ticks = 4;
  for (let i = 0; i <= ticks; i += 1) {
    const t = start + (span / ticks) * i;
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    svg.append(s('text', { x: x(t), y: HEIGHT - 6, 'text-anchor': anchor, class: 'tick' }, clock(t)));
  }

  const plot = s('g', { 'clip-path': `url(#${clipId})` });
  for (const ser of visible) {
    if (ser.points.length < 2) continue;
    const d = ser.points.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join('');
    const [firstT] = ser.points[0];
    const [lastT] = ser.points[ser.points.length - 1];
    const area = `${d}L${x(lastT).toFixed(1)},${y(0)}L${x(firstT).toFixed(1)},${y(0)}Z`;
    plot.append(s('path', { d: area, style: `fill:${ser.color}`, class: 'area' }));
    plot.append(s('path', { d, style: `stroke:${ser.color}`, class: 'line' }));
  }
  svg.append(plot);

  const legend = document.createElement('div');
  legend.className = 'legend';
  for (const ser of visible) {
    const last = ser.points.length ? ser.points[ser.points.length - 1][1] : null;
    const item = document.createElement('span');
    item.className = 'legend-item';
    const swatch = document.createElement('i');
    swatch.style.background = ser.color;
    const value = document.createElement('b');
    value.textContent = last === null ? '–' : format(last);
    item.append(swatch, `${ser.name} `, value);
    legend.append(item);
  }
  const empty = visible.every((ser) => ser.points.length < 2);
  const note = document.createElement('div');
  note.className = 'chart-note';
  note.textContent = empty ? 'Collecting samples…' : '';
  host.replaceChildren(legend, svg, note);
}
