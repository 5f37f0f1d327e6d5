// Metric charts on uPlot: downsampled history, live points appended from the
// events stream, TensorBoard-style EMA smoothing, log or linear y, and zoom
// that fetches the zoomed step range at full resolution.

import {get, query, authUrl} from './api.js';
import {h, num, fmt, color, debounce, notify} from './util.js';

const BASE_POINTS = 1000;   // points per series for the whole history
const KEEP_MAX = 4000;      // more than this in memory: thin to KEEP_THIN
const KEEP_THIN = 2000;
const PAGE = 100000;        // history points per request before downsampling

let uplotPromise = null;

// uPlot (script and stylesheet) is loaded on the first chart only.
export function loadUPlot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!uplotPromise) {
    uplotPromise = new Promise((resolve, reject) => {
      const css = h('link', {rel: 'stylesheet', href: '/ui/uPlot.min.css'});
      const js = h('script', {src: '/ui/uPlot.iife.min.js'});
      js.onload = () => resolve(window.uPlot);
      js.onerror = () => {
        uplotPromise = null;
        reject(new Error('cannot load the chart library (/ui/uPlot.iife.min.js)'));
      };
      document.head.append(css, js);
    });
  }
  return uplotPromise;
}

// History of one key as {xs, ys} (ys numbers; NaN/Infinity kept), downsampled
// to about maxPoints over [lo, hi] (inclusive; null = open). count estimates
// how many points the range holds (from the summary), to split the point
// budget over pages of PAGE points.
let pageLimit = PAGE;
export async function fetchHistory(jobId, key, {lo = null, hi = null, maxPoints = BASE_POINTS, count = 0, signal} = {}) {
  const xs = [];
  const ys = [];
  const pages = Math.max(1, Math.ceil(count / pageLimit));
  const per = Math.max(2, Math.floor(maxPoints / pages));
  let after = lo != null && lo > 0 ? lo - 1 : 0;
  for (let guard = 0; guard < 10000; guard++) {
    let r;
    try {
      r = await get(query(`/v1/jobs/${jobId}/metrics/${key}`, {
        after_step: after, to_step: hi, limit: pageLimit, max_points: per,
      }), {signal});
    } catch (e) {
      // history_limit_max is a setting: fall back to the server's default page.
      if (e.status === 400 && /limit/.test(e.detail) && pageLimit !== null) {
        pageLimit = pageLimit > 10000 ? 10000 : null;
        continue;
      }
      throw e;
    }
    for (const p of r.points) {
      xs.push(p[0]);
      ys.push(num(p[1]));
    }
    if (r.next_after_step == null || r.next_after_step <= after) break;
    after = r.next_after_step;
  }
  return {xs, ys};
}

export function csvUrl(jobId, key) {
  return authUrl(`/v1/jobs/${jobId}/metrics/${key}`, {format: 'csv', limit: 100000});
}

// TensorBoard's smoothing: a debiased exponential moving average; non-finite
// points pass through and do not disturb it.
export function ema(ys, w) {
  if (!(w > 0)) return ys;
  const out = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (v == null || !Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    n++;
    out[i] = last / (1 - w ** n);
  }
  return out;
}

// Keep the first and last points and each bucket's min and max (what the
// server's downsampling keeps), down to about target points.
export function thin(xs, ys, target) {
  const n = xs.length;
  if (n <= target) return {xs, ys};
  const buckets = Math.max(1, Math.floor((target - 2) / 2));
  const x0 = xs[0];
  const span = xs[n - 1] - x0 + 1;
  const ox = [xs[0]];
  const oy = [ys[0]];
  let i = 1;
  for (let b = 0; b < buckets && i < n - 1; b++) {
    const end = x0 + (span * (b + 1)) / buckets;
    let lo = -1;
    let hi = -1;
    for (; i < n - 1 && xs[i] < end; i++) {
      const v = ys[i];
      if (!Number.isFinite(v)) { // keep non-finite points: they matter
        ox.push(xs[i]);
        oy.push(v);
        continue;
      }
      if (lo < 0 || v < ys[lo]) lo = i;
      if (hi < 0 || v > ys[hi]) hi = i;
    }
    for (const j of lo < 0 ? [] : lo === hi ? [lo] : lo < hi ? [lo, hi] : [hi, lo]) {
      ox.push(xs[j]);
      oy.push(ys[j]);
    }
  }
  ox.push(xs[n - 1]);
  oy.push(ys[n - 1]);
  return {xs: ox, ys: oy};
}

// One metric key of one job: the base points (downsampled history plus live
// points) and, when zoomed, the zoomed range at full resolution. A baseline
// series (opts.baseline: probe_pixels beside a probe curve) is drawn dashed
// and never smoothed; an exact one (opts.exact: the lr, set by a schedule, not
// estimated) is drawn as it is, never smoothed either.
export class Series {
  constructor(jobId, key, label, colour, opts = {}) {
    this.jobId = jobId;
    this.key = key;
    this.label = label;
    this.color = colour;
    this.baseline = !!opts.baseline;
    this.exact = !!opts.exact; // a set value, not a noisy estimate (the lr): never smoothed
    this.cut = !!opts.cut;     // a run stopped early (a sweep's stopped trial): drawn dotted
    this.xs = [];
    this.ys = [];
    this.detail = null; // {lo, hi, xs, ys}
    this.count = 0;     // points in the server's history (summary), for paging
  }

  get lastStep() {
    return this.xs.length ? this.xs[this.xs.length - 1] : -1;
  }

  async load(signal) {
    const {xs, ys} = await fetchHistory(this.jobId, this.key, {count: this.count, signal});
    // Live points may have arrived while the history loaded: keep those beyond it.
    const last = xs.length ? xs[xs.length - 1] : -1;
    for (let i = 0; i < this.xs.length; i++) {
      if (this.xs[i] > last) {
        xs.push(this.xs[i]);
        ys.push(this.ys[i]);
      }
    }
    this.xs = xs;
    this.ys = ys;
  }

  // Append live points [step, value]; steps at or below the last one are
  // already here (dedupe). Returns how many were added.
  append(points) {
    let added = 0;
    for (const [step, value] of points) {
      if (step <= this.lastStep) continue;
      this.xs.push(step);
      this.ys.push(value);
      added++;
      const d = this.detail;
      if (d && step >= d.lo && step <= d.hi && (!d.xs.length || step > d.xs[d.xs.length - 1])) {
        d.xs.push(step);
        d.ys.push(value);
      }
    }
    if (this.xs.length > KEEP_MAX) Object.assign(this, thin(this.xs, this.ys, KEEP_THIN));
    if (this.detail && this.detail.xs.length > KEEP_MAX) Object.assign(this.detail, thin(this.detail.xs, this.detail.ys, KEEP_THIN));
    return added;
  }

  // After a crash the job resumed from step S: its points after S are gone.
  rewind(step) {
    const cut = (xs, ys) => {
      let n = xs.length;
      while (n > 0 && xs[n - 1] > step) n--;
      xs.length = n;
      ys.length = n;
    };
    cut(this.xs, this.ys);
    if (this.detail) cut(this.detail.xs, this.detail.ys);
  }

  // What is drawn: the base outside the zoomed range, the detail inside it.
  view() {
    const d = this.detail;
    if (!d) return {xs: this.xs, ys: this.ys};
    const xs = [];
    const ys = [];
    let i = 0;
    for (; i < this.xs.length && this.xs[i] < d.lo; i++) {
      xs.push(this.xs[i]);
      ys.push(this.ys[i]);
    }
    xs.push(...d.xs);
    ys.push(...d.ys);
    while (i < this.xs.length && this.xs[i] <= d.hi) i++;
    for (; i < this.xs.length; i++) {
      xs.push(this.xs[i]);
      ys.push(this.ys[i]);
    }
    return {xs, ys};
  }

  extent() {
    return this.xs.length ? [this.xs[0], this.xs[this.xs.length - 1]] : null;
  }
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`;
}

// A chart of one or more series (one key of one job, or one key of several
// jobs). opts: {title, series: [Series], smoothing, log, height}. The figure
// element carries data-points (points drawn), data-series (points per
// series), data-yticks (the y axis' labels) and data-zoom ("lo-hi" once a
// zoomed range has loaded), for tests and curious users.
export class MetricChart {
  constructor(parent, opts) {
    this.series = opts.series;
    this.smoothing = opts.smoothing || 0;
    this.log = !!opts.log;
    this.height = opts.height || 220;
    this.u = null;
    this.abort = new AbortController();
    this.zoomSeq = 0;
    this.frame = 0;
    this.el = h('div.chart', {role: 'img', 'aria-label': opts.title || 'chart'});
    this.status = h('span.chart-status', {'aria-live': 'polite'});
    this.figure = h('figure.chart-card', {dataset: {key: opts.key || '', points: '0'}},
      opts.header || null, this.el, h('figcaption', opts.caption || null, this.status));
    parent.append(this.figure);
    this.onZoom = debounce(() => this.loadZoom(), 250);
    this.resize = new ResizeObserver(() => {
      if (this.u) this.u.setSize(this.size());
    });
    this.resize.observe(this.el);
  }

  size() {
    return {width: Math.max(200, this.el.clientWidth || 400), height: this.height};
  }

  async load() {
    this.status.textContent = 'loading…';
    await Promise.all([loadUPlot(), ...this.series.map((s) => s.load(this.abort.signal))]);
    this.status.textContent = '';
    this.build();
  }

  // [xs, y0, (y0 smoothed), y1, ...] over the union of the series' steps.
  data() {
    const tables = this.series.map((s) => {
      const {xs, ys} = s.view();
      const shown = ys.map((v) => (v == null || !Number.isFinite(v) || (this.log && v <= 0) ? null : v));
      const cols = [xs, shown];
      if (this.smoothing > 0 && !s.baseline && !s.exact) cols.push(ema(ys, this.smoothing).map((v, i) => (shown[i] == null ? null : v)));
      return cols;
    });
    if (tables.length === 1) return tables[0];
    return window.uPlot.join(tables);
  }

  build() {
    const U = window.uPlot;
    if (this.u) this.u.destroy();
    const multi = this.series.filter((s) => !s.baseline).length > 1;
    const series = [{label: 'step'}];
    for (const s of this.series) {
      const base = s.color;
      if (s.baseline) {
        series.push({label: s.label, stroke: base, width: 1.25, dash: [6, 4], spanGaps: true});
      } else if (this.smoothing > 0 && !s.exact) {
        const cut = s.cut ? {dash: [2, 3]} : {};
        series.push({label: multi ? `${s.label} (raw)` : 'raw', stroke: alpha(base, 0.3), width: 1, spanGaps: true, ...cut});
        series.push({label: multi ? s.label : 'smoothed', stroke: base, width: 1.5, spanGaps: true, ...cut});
      } else {
        series.push({label: multi ? s.label : s.key, stroke: base, width: 1.25, spanGaps: true,
          ...(s.cut ? {dash: [2, 3]} : {})});
      }
    }
    const opts = {
      ...this.size(),
      scales: {x: {time: false}, y: this.log ? {distr: 3, log: 10} : {}},
      // y ticks as the stats show numbers (uPlot's own rounds 1e-4 steps to "0")
      // (the axis widens for long labels such as 7.50e-5)
      axes: [{label: 'step', size: 36, labelSize: 16}, {size: (u, values) => Math.max(56,
        12 + 7 * Math.max(0, ...(values || []).map((v) => String(v).length))), values: (u, splits) => {
        const ticks = splits.map((v) => fmt(v, 4));
        this.figure.dataset.yticks = ticks.join(' ');
        return ticks;
      }}],
      series,
      legend: {live: true},
      cursor: {drag: {x: true, y: false, setScale: true}},
      hooks: {setScale: [(u, key) => key === 'x' && this.scaleChanged()]},
    };
    this.u = new U(opts, this.data(), this.el);
    this.mark();
  }

  extent() {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of this.series) {
      const e = s.extent();
      if (e) {
        lo = Math.min(lo, e[0]);
        hi = Math.max(hi, e[1]);
      }
    }
    return lo <= hi ? [lo, hi] : null;
  }

  // Zoomed as soon as the user has dragged a range (pendingZoom), not only once
  // its detail has loaded: a live redraw in between must keep the user's range.
  zoomed() {
    return !!this.pendingZoom || this.series.some((s) => s.detail);
  }

  scaleChanged() {
    if (!this.u) return;
    const {min, max} = this.u.scales.x;
    const e = this.extent();
    if (!e || min == null) return;
    if (min <= e[0] && max >= e[1]) { // back to the whole range: the base data
      this.onZoom.cancel();
      this.zoomSeq++;
      this.pendingZoom = null;
      if (this.zoomed()) {
        for (const s of this.series) s.detail = null;
        this.redraw(true);
      }
      return;
    }
    const lo = Math.max(0, Math.floor(min));
    const hi = Math.ceil(max);
    if (this.series.every((s) => s.detail && s.detail.lo === lo && s.detail.hi === hi)) return;
    this.pendingZoom = [lo, hi];
    this.onZoom();
  }

  // Fetch the zoomed range of every series with about one point per pixel.
  async loadZoom() {
    if (!this.pendingZoom || !this.u) return;
    const [lo, hi] = this.pendingZoom;
    const seq = ++this.zoomSeq;
    const px = Math.max(100, Math.round(this.u.bbox.width / (window.devicePixelRatio || 1)));
    this.status.textContent = `loading steps ${lo}–${hi}…`;
    try {
      const parts = await Promise.all(this.series.map((s) => {
        const e = s.extent();
        const frac = e ? Math.min(1, (hi - lo + 1) / (e[1] - e[0] + 1)) : 1;
        return fetchHistory(s.jobId, s.key, {lo, hi, maxPoints: px, count: s.count * frac, signal: this.abort.signal});
      }));
      if (seq !== this.zoomSeq) return;
      this.series.forEach((s, i) => {
        s.detail = {lo, hi, ...parts[i]};
      });
      this.status.textContent = '';
      this.figure.dataset.zoom = `${lo}-${hi}`;
      this.redraw(false);
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.status.textContent = '';
      notify(e);
    }
  }

  resetZoom() {
    const e = this.extent();
    if (!this.u || !e) return;
    this.u.setScale('x', {min: e[0], max: e[1]});
  }

  // Redraw with new data: keep the zoom when zoomed, else follow the data.
  redraw(resetScales = !this.zoomed()) {
    if (!this.u) return;
    this.u.setData(this.data(), resetScales);
    if (!this.zoomed()) delete this.figure.dataset.zoom;
    this.mark();
  }

  // Coalesce live updates to one redraw per frame.
  scheduleRedraw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.redraw();
    });
  }

  mark() {
    const counts = this.series.map((s) => s.view().xs.length);
    this.figure.dataset.points = String(counts.reduce((a, b) => a + b, 0));
    this.figure.dataset.series = counts.join(',');
  }

  setSmoothing(w) {
    const had = this.smoothing > 0;
    this.smoothing = w;
    if (!this.u) return;
    if (had !== w > 0) this.rebuildKeepingZoom();
    else this.redraw(false);
  }

  setLog(log) {
    this.log = log;
    if (this.u) this.rebuildKeepingZoom();
  }

  rebuildKeepingZoom() {
    const x = this.u.scales.x;
    const zoom = this.zoomed() ? [x.min, x.max] : null;
    this.build();
    if (zoom) this.u.setScale('x', {min: zoom[0], max: zoom[1]});
  }

  destroy() {
    this.abort.abort();
    this.onZoom.cancel();
    this.resize.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
    if (this.u) this.u.destroy();
    this.u = null;
  }
}

// The smoothing slider and log toggle shared by a page's charts.
export function chartControls(onSmoothing, onLog, initial = {smoothing: 0.6, log: false}) {
  const slider = h('input#smoothing', {type: 'range', min: 0, max: 0.99, step: 0.01, value: initial.smoothing});
  const out = h('output', {for: 'smoothing'}, String(initial.smoothing));
  slider.addEventListener('input', () => {
    out.textContent = slider.value;
    onSmoothing(Number(slider.value));
  });
  const log = h('input#logy', {type: 'checkbox', checked: initial.log});
  log.addEventListener('change', () => onLog(log.checked));
  return h('div.chart-controls', {},
    h('label', {for: 'smoothing'}, 'Smoothing'), slider, out,
    h('label.check', {}, log, ' log y'),
    h('span.muted', 'drag on a chart to zoom (full resolution), double-click to zoom out'));
}

