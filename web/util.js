// Small DOM and formatting helpers shared by every view.

// h('tag.class#id', {attr: v, onclick: fn}, child, ...): build an element.
// Children may be strings, numbers, nodes, arrays or null (skipped).
export function h(spec, attrs, ...children) {
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  const node = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') node.classList.add(part.slice(1));
      else node.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : String(c));
  }
}

// Append children (strings, nodes, arrays; null and false skipped).
export function add(node, ...children) {
  append(node, children);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

// An error's text: an ApiError's detail with its code and status, or any Error's message.
export function errorText(err) {
  if (!err) return 'unknown error';
  if (err.detail) return err.code ? `${err.detail} (${err.code}, ${err.status})` : err.detail;
  return err.message || String(err);
}

// The page-wide notice area: errors stay until dismissed, infos fade.
export function notify(message, kind = 'error') {
  const area = document.getElementById('notices');
  if (!area) return;
  const text = typeof message === 'string' ? message : errorText(message);
  const close = h('button.close', {type: 'button', 'aria-label': 'dismiss'}, '×');
  const n = h(`div.notice.${kind}`, {role: kind === 'error' ? 'alert' : 'status'}, h('span', text), close);
  close.addEventListener('click', () => n.remove());
  area.append(n);
  if (kind !== 'error') setTimeout(() => n.remove(), 4000);
  while (area.children.length > 5) area.firstChild.remove();
}

// Metric values: numbers, or the strings "NaN", "Infinity", "-Infinity".
export function num(v) {
  if (typeof v === 'number') return v;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (v === 'NaN') return NaN;
  return v == null ? null : Number(v);
}

export function fmt(v, digits = 4) {
  const x = num(v);
  if (x == null) return '–';
  if (!Number.isFinite(x)) return String(v);
  if (x !== 0 && (Math.abs(x) >= 1e5 || Math.abs(x) < 1e-3)) return x.toExponential(2);
  return String(+x.toPrecision(digits));
}

export function fmtPercent(v) {
  const x = num(v);
  return x == null || !Number.isFinite(x) ? fmt(v) : `${(x * 100).toFixed(1)}%`;
}

export function fmtBytes(n) {
  if (n == null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

// "3 s", "5 min", "2 h", "4 d" since an RFC 3339 time.
export function age(iso, now = Date.now()) {
  if (!iso) return '–';
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

export function ageTitle(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

export function stateBadge(state) {
  return h(`span.state.state-${String(state).toLowerCase()}`, {dataset: {state}}, state);
}

export function progress(step, total, planned) {
  total = total || planned || 0;
  const frac = total > 0 ? Math.min(1, step / total) : 0;
  return h('span.progress', {},
    h('progress', {max: 1, value: frac, 'aria-label': `step ${step} of ${total || '?'}`}),
    h('span.steps', `${step} / ${total || '?'}`));
}

export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

// Loss terms first, then probes, then the rest, each alphabetical.
export function metricOrder(a, b) {
  const rank = (k) => (k === 'loss_total' ? 0 : k.startsWith('loss_') ? 1 : k.startsWith('probe_') ? 2 : 3);
  return rank(a) - rank(b) || a.localeCompare(b);
}

// Fashion-MNIST's classes; other datasets' labels are shown as numbers.
const CLASS_NAMES = {
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
    'Sneaker', 'Bag', 'Ankle boot'],
};

export function classNames(dataset, datasetInfo) {
  if (datasetInfo && Array.isArray(datasetInfo.classes)) return datasetInfo.classes;
  return CLASS_NAMES[dataset] || null;
}

export function className(names, label) {
  return names && names[label] != null ? names[label] : `class ${label}`;
}

// Ten distinguishable colours (Tableau 10), cycled for more series or classes.
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1',
  '#ff9da7', '#9c755f', '#bab0ac'];

export function color(i) {
  return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

// A metric key's colour, the same on every page.
const KEY_ORDER = ['loss_total', 'loss_local', 'loss_global', 'loss_prior_enc', 'loss_prior_disc', 'probe_y',
  'probe_fc', 'probe_conv', 'images_per_second', 'lr'];
export function keyColor(key) {
  const i = KEY_ORDER.indexOf(key);
  if (i >= 0) return color(i);
  let hsh = 0;
  for (const c of key) hsh = (hsh * 31 + c.charCodeAt(0)) | 0;
  return color(Math.abs(hsh));
}

export function debounce(fn, ms) {
  let t = 0;
  const d = (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
  d.cancel = () => clearTimeout(t);
  return d;
}

// Evaluation jobs ("kind": "evaluate"): their spec names a model version.
export const isEvaluation = (job) => !!job && !!job.spec && job.spec.kind === 'evaluate';
export const versionHref = (model, version) => `#/models/${model}?version=${version}`;

// An evaluation's headline figure from a job's `latest`: "linear Y 84.1%".
const HEADLINES = [['linear_y', 'linear Y'], ['mlp_y', 'MLP Y'], ['svm_y', 'SVM Y'], ['ndm', 'NDM'],
  ['mine', 'MINE'], ['ssim', 'SSIM']];
export function evalHeadline(latest) {
  const l = latest || {};
  const hit = HEADLINES.find(([k]) => l[`eval_${k}`] != null);
  if (!hit) return null;
  const v = l[`eval_${hit[0]}`];
  return `${hit[1]} ${hit[0].endsWith('_y') ? fmtPercent(v) : hit[1] === 'SSIM' ? fmt(v, 3) : `${fmt(v, 3)} nats`}`;
}
