// #/sweeps: the sweeps table and the "New sweep" form (the job schema's fields
// for the base job, the search space and the search settings);
// #/sweeps/ID: a sweep's state, counts and best trial, its leaderboard, the
// trials' metric curves overlaid (stopped trials dotted, cut at their rung),
// a scatter of one hyperparameter against the metric, and its actions.

import {get, post, query, canWrite} from './api.js';
import {add, h, clear, fmt, stateBadge, notify, errorText, color, num, ageTitle, age} from './util.js';
import {MetricChart, Series, chartControls} from './charts.js';
import {schemaForm} from './form.js';

const SWEEP_TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
const MAX_CURVES = 24;

export async function render(root, params) {
  return params.id ? sweepPage(root, params.id) : sweepList(root, params);
}

// ---------------------------------------------------------------- the list

function countsText(c) {
  return Object.entries(c || {}).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k.toLowerCase()}`).join(', ') || 'no trials yet';
}

async function sweepList(root) {
  const table = h('tbody');
  const formSlot = h('div#sweep-form-slot');
  const newBtn = canWrite() ? h('button#new-sweep', {type: 'button'}, 'New sweep') : null;
  add(root, h('div.view-head', {}, h('h1', 'Sweeps'), newBtn), formSlot,
    h('div.table-wrap', {}, h('table#sweeps-table', {},
      h('thead', {}, h('tr', {}, ['Sweep', 'State', 'Algorithm', 'Metric', 'Best', 'Trials', 'Created']
        .map((c) => h('th', {scope: 'col'}, c)))), table)));
  if (newBtn) {
    newBtn.addEventListener('click', async () => {
      if (formSlot.firstChild) return;
      newBtn.disabled = true;
      try {
        await sweepForm(formSlot, {onDone: (s) => { location.hash = `#/sweeps/${s.id}`; },
          onCancel: () => { clear(formSlot); newBtn.disabled = false; }});
      } catch (e) {
        notify(e);
        newBtn.disabled = false;
      }
    });
  }
  let timer = 0;
  let stopped = false;
  const refresh = async () => {
    try {
      const r = await get(query('/v1/sweeps', {limit: 100}));
      clear(table);
      if (!r.sweeps.length) add(table, h('tr', {}, h('td.muted', {colspan: 7}, 'No sweeps yet.')));
      for (const s of r.sweeps) {
        const best = s.best;
        add(table, h('tr', {dataset: {sweep: s.id}},
          h('td', {}, h('a', {href: `#/sweeps/${s.id}`}, `#${s.id}${s.name ? ` ${s.name}` : ''}`)),
          h('td', {}, stateBadge(s.state)),
          h('td', s.spec.algorithm),
          h('td', `${s.metric} (${s.spec.direction})`),
          h('td.num', best ? fmt(num(best.metric)) : '–'),
          h('td', `${s.trials_created}/${s.spec.trials}: ${countsText(s.counts)}`),
          h('td', {title: ageTitle(s.created_at)}, age(s.created_at))));
      }
    } catch (e) {
      notify(e);
    }
    if (!stopped) timer = setTimeout(refresh, 2000);
  };
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// ---------------------------------------------------------------- the form

// "0.001, 0.01" -> a list; "1e-5 .. 1e-2 log" (or uniform, int) -> a range.
export function parseSpace(text, field) {
  const t = text.trim();
  const m = /^(\S+)\s*\.\.\s*(\S+)(?:\s+(uniform|log|int))?$/.exec(t);
  if (m) {
    const lo = Number(m[1]);
    const hi = Number(m[2]);
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new Error(`${field.name}: a range is "MIN .. MAX [uniform|log|int]"`);
    const scale = m[3] || (field.type === 'integer' ? 'int' : 'uniform');
    return {min: lo, max: hi, scale};
  }
  const parts = t.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (!parts.length) throw new Error(`${field.name}: give values ("0.001, 0.01") or a range ("1e-5 .. 1e-2 log")`);
  return parts.map((x) => {
    if (field.type === 'string') return x;
    if (field.type === 'boolean') return x === 'true';
    const v = Number(x);
    if (!Number.isFinite(v)) throw new Error(`${field.name}: "${x}" is not a number`);
    return v;
  });
}

async function sweepForm(parent, {onDone, onCancel}) {
  const [schema, ds] = await Promise.all([get('/v1/job-schema'), get('/v1/datasets').catch(() => ({datasets: []}))]);
  const fields = schema.fields.filter((f) => !['kind', 'steps', 'epochs', 'best_metric', 'validation_images'].includes(f.name));
  const searchable = fields.filter((f) => !['name', 'dataset', 'probe'].includes(f.name));
  const byName = new Map(fields.map((f) => [f.name, f]));

  const numIn = (id, attrs) => h(`input#${id}`, {type: 'number', ...attrs});
  const algo = h('select#sw-algorithm', {}, ['asha', 'grid', 'random'].map((a) => h('option', {value: a}, a)));
  const trials = numIn('sw-trials', {min: 1, max: 1000, placeholder: 'the grid\'s size'});
  const seed = numIn('sw-seed', {min: 0, value: 1});
  const metric = h('select#sw-metric', {}, ['default', 'loss_total', 'loss_local', 'loss_global', 'probe_y', 'probe_fc', 'probe_conv']
    .map((m) => h('option', {value: m}, m === 'default' ? 'default (probe_y when probing, else loss_total)' : m)));
  const steps = numIn('sw-steps', {min: 1, value: 100, required: true});
  const minRes = numIn('sw-min-resource', {min: 1, placeholder: 'budget / 9'});
  const eta = numIn('sw-eta', {min: 2, max: 16, value: 3});
  const valImages = numIn('sw-validation', {min: 1, placeholder: '2000 (probe metrics)'});
  const rows = h('div.space-rows');
  const addRow = (name = 'lr', text = '') => {
    const sel = h('select.space-key', {'aria-label': 'field'}, searchable.map((f) => h('option', {value: f.name, selected: f.name === name}, f.name)));
    const val = h('input.space-values', {type: 'text', value: text, 'aria-label': 'values or range',
      placeholder: '0.0001, 0.001  or  1e-5 .. 1e-2 log'});
    const del = h('button', {type: 'button', 'aria-label': 'remove'}, '×');
    const row = h('div.space-row', {}, sel, val, del);
    del.addEventListener('click', () => row.remove());
    rows.append(row);
  };
  addRow('lr', '0.0001, 0.0005, 0.001');
  const more = h('button#sw-add-field', {type: 'button'}, 'Add a field');
  more.addEventListener('click', () => addRow(searchable[0].name, ''));
  const label = (id, text, control) => h('div.field', {}, h('label', {for: id}, text), control);
  const extra = h('fieldset.sweep-settings', {},
    h('legend', 'Search'),
    h('div.form-grid', {},
      label('sw-algorithm', 'algorithm', algo), label('sw-trials', 'trials', trials), label('sw-seed', 'seed', seed),
      label('sw-metric', 'metric', metric), label('sw-steps', 'budget: steps per trial', steps),
      label('sw-min-resource', 'ASHA min resource (steps)', minRes), label('sw-eta', 'ASHA reduction factor', eta),
      label('sw-validation', 'validation images', valImages)),
    h('p.help', 'Search space: a field of the job and its values, or a range "MIN .. MAX" with uniform, log or int.'),
    rows, more,
    h('h3', 'Base job'), h('p.muted', 'Every trial is this job with the searched fields set (keys left at their default are not sent).'));

  const submitTo = async (body, headers) => {
    const space = {};
    for (const row of rows.querySelectorAll('.space-row')) {
      const k = row.querySelector('.space-key').value;
      const text = row.querySelector('.space-values').value;
      space[k] = parseSpace(text, byName.get(k));
      delete body[k];
    }
    const sweep = {base: body, space, algorithm: algo.value, budget: {steps: Number(steps.value)}};
    if (body.name) {
      sweep.name = body.name;
      delete body.name;
    }
    if (trials.value) sweep.trials = Number(trials.value);
    if (seed.value) sweep.seed = Number(seed.value);
    if (metric.value !== 'default') sweep.metric = metric.value;
    if (valImages.value) sweep.validation_images = Number(valImages.value);
    if (algo.value === 'asha') {
      sweep.asha = {reduction_factor: Number(eta.value || 3)};
      if (minRes.value) sweep.asha.min_resource = Number(minRes.value);
    }
    return post('/v1/sweeps', sweep, {headers});
  };
  return schemaForm(parent, {fields, fixed: {}, id: 'sweep-form', prefix: 'sw-f-', title: 'New sweep',
    intro: 'A hyperparameter search over the fields of one job (POST /v1/sweeps).', submitLabel: 'Start sweep',
    datasets: ds.datasets || [], extra, submitTo, onCancel,
    onSubmitted: onDone,
    errorField: (path) => {
      const m = /^\$\.base\.([a-z0-9_]+)/.exec(path || '');
      return m ? m[1] : null;
    }});
}

// ---------------------------------------------------------------- one sweep

// The scatter of one hyperparameter against the metric, on a canvas: log x
// when the values span more than two decades; stopped trials hollow.
function drawScatter(canvas, trials, key, metricName) {
  const pts = trials.filter((t) => t.metric != null && Number.isFinite(num(t.metric)) && typeof t.params[key] === 'number')
    .map((t) => ({x: t.params[key], y: num(t.metric), t}));
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.clientWidth || 480;
  const H = 300;
  canvas.width = W * dpr;
  canvas.height = H * dpr;
  canvas.dataset.points = String(pts.length);
  const g = canvas.getContext('2d');
  g.scale(dpr, dpr);
  g.clearRect(0, 0, W, H);
  g.font = '12px system-ui, sans-serif';
  g.fillStyle = '#555';
  const L = 64;
  const B = 36;
  if (!pts.length) {
    g.fillText('no results yet', L, H / 2);
    return;
  }
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  const logx = Math.min(...xs) > 0 && Math.max(...xs) / Math.min(...xs) > 100;
  const fx = logx ? Math.log10 : (v) => v;
  let [x0, x1] = [Math.min(...xs.map(fx)), Math.max(...xs.map(fx))];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const px = (v) => L + ((fx(v) - x0) / (x1 - x0)) * (W - L - 16);
  const py = (v) => H - B - ((v - y0) / (y1 - y0)) * (H - B - 16);
  g.strokeStyle = '#999';
  g.beginPath();
  g.moveTo(L, 8);
  g.lineTo(L, H - B);
  g.lineTo(W - 8, H - B);
  g.stroke();
  g.fillText(`${key}${logx ? ' (log)' : ''}`, W / 2 - 20, H - 8);
  g.fillText(fmt(y1), 4, 20);
  g.fillText(fmt(y0), 4, H - B);
  g.fillText(fmt(Math.min(...xs)), L, H - B + 14);
  g.fillText(fmt(Math.max(...xs)), W - 70, H - B + 14);
  g.save();
  g.translate(14, H / 2 + 30);
  g.rotate(-Math.PI / 2);
  g.fillText(metricName, 0, 0);
  g.restore();
  for (const p of pts) {
    g.beginPath();
    g.arc(px(p.x), py(p.y), 5, 0, 2 * Math.PI);
    g.strokeStyle = color(p.t.trial);
    g.fillStyle = color(p.t.trial);
    if (p.t.state === 'STOPPED') g.stroke(); else g.fill();
  }
}

async function sweepPage(root, id) {
  const head = h('div.sweep-head');
  const actions = h('div.buttons#sweep-actions');
  const board = h('tbody');
  const chartSlot = h('div.charts.single#sweep-chart');
  const keySel = h('select#sweep-scatter-key', {'aria-label': 'hyperparameter'});
  const prefs = {smoothing: 0, log: false};
  const canvas = h('canvas#sweep-scatter', {role: 'img', 'aria-label': 'hyperparameter against the metric', style: 'width:100%;height:300px'});
  add(root, h('h1#sweep-title', `Sweep #${id}`), head, actions,
    h('h2', 'Leaderboard'),
    h('div.table-wrap', {}, h('table#sweep-board', {},
      h('thead', {}, h('tr', {}, ['#', 'Trial', 'State', 'Rung', 'Metric', 'Step', 'Hyperparameters', 'Job']
        .map((c) => h('th', {scope: 'col'}, c)))), board)),
    h('h2', 'Metric curves'), h('p.muted', 'Each trial\'s metric by step; stopped trials are dotted and end at the rung where ASHA stopped them.'),
    chartControls((w) => { prefs.smoothing = w; if (chart) chart.setSmoothing(w); },
      (log) => { prefs.log = log; if (chart) chart.setLog(log); }, prefs),
    chartSlot,
    h('h2', 'Hyperparameter against the metric'), h('div.field', {}, h('label', {for: 'sweep-scatter-key'}, 'Hyperparameter '), keySel), canvas);

  let chart = null;
  let chartKey = '';
  let timer = 0;
  let stopped = false;
  let last = null;

  const act = (verb, label) => {
    const b = h('button', {type: 'button', dataset: {action: verb}}, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        if (verb === 'promote') {
          const name = prompt('Model name for the best trial', `sweep-${id}`);
          if (!name) return;
          const v = await post(`/v1/sweeps/${id}/promote`, {name});
          notify(`promoted to ${v.name} ${v.version}`, 'info');
        } else {
          await post(`/v1/sweeps/${id}/${verb}`);
        }
        await refresh(true);
      } catch (e) {
        notify(e);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };

  const drawChart = async (s, trials) => {
    // trials with points of the metric (a probe's first point is at the first rung)
    const shown = trials.filter((t) => t.job_id && (s.metric.startsWith('probe_') ? t.rung != null : t.step > 0))
      .slice(0, MAX_CURVES);
    const sig = `${s.metric}|${shown.map((t) => `${t.trial}:${t.state}:${t.step}`).join(',')}`;
    if (sig === chartKey) return;
    chartKey = sig;
    if (chart) chart.destroy();
    clear(chartSlot);
    const series = shown.map((t) => {
      const cut = t.state === 'STOPPED';
      const ser = new Series(t.job_id, s.metric, `trial ${t.trial}${cut ? ` (stopped, step ${t.step})` : ''}`, color(t.trial),
        {cut, exact: s.metric.startsWith('probe_')});
      ser.count = t.step;
      return ser;
    });
    if (!series.length) return;
    chart = new MetricChart(chartSlot, {title: `${s.metric} of the trials`, key: s.metric, series,
      header: h('header', {}, h('h3', s.metric)), height: 320, ...prefs});
    await chart.load().catch((e) => { chart.status.textContent = `cannot load: ${errorText(e)}`; });
  };

  const refresh = async (force = false) => {
    let s;
    try {
      s = await get(`/v1/sweeps/${id}/leaderboard`);
    } catch (e) {
      if (!last) throw e;
      notify(e);
      return;
    }
    last = s;
    const sp = s.spec;
    document.getElementById('sweep-title').textContent = `Sweep #${s.id}${s.name ? ` ${s.name}` : ''}`;
    clear(head);
    add(head, h('p', {}, stateBadge(s.state), ` ${sp.algorithm}, ${s.trials_created}/${sp.trials} trials (${countsText(s.counts)}); `,
      `metric ${s.metric} (${sp.direction}), budget ${sp.budget.steps ? `${sp.budget.steps} steps` : `${sp.budget.epochs} epochs`}`,
      sp.asha ? `, rungs from ${sp.asha.min_resource} by ${sp.asha.reduction_factor}` : ''),
    s.best ? h('p#sweep-best', {}, h('strong', 'Best: '), `trial ${s.best.trial} `, h('a', {href: `#/jobs/${s.best.job_id}`}, `job ${s.best.job_id}`),
      `, ${s.metric} ${fmt(num(s.best.metric))} at rung ${s.best.rung}: ${JSON.stringify(s.best.params)}`) : h('p#sweep-best.muted', 'No result yet.'));
    clear(actions);
    if (canWrite()) {
      if (s.state === 'RUNNING') add(actions, act('pause', 'Pause'));
      if (s.state === 'PAUSED') add(actions, act('resume', 'Resume'));
      if (!SWEEP_TERMINAL.has(s.state)) add(actions, act('cancel', 'Cancel'));
      if (s.best) add(actions, act('promote', 'Promote the best'));
    }
    clear(board);
    s.trials.forEach((t, i) => {
      add(board, h('tr', {dataset: {trial: t.trial, state: t.state}},
        h('td.num', String(i + 1)),
        h('td', {}, h('span.swatch', {style: `background:${color(t.trial)}`}), ` ${t.trial}`),
        h('td', {}, stateBadge(t.state === 'STOPPED' || t.state === 'WAITING' ? t.state : t.state)),
        h('td.num', t.rung == null ? '–' : String(t.rung)),
        h('td.num', t.metric == null ? '–' : fmt(num(t.metric))),
        h('td.num', `${t.step}/${t.total_steps || '?'}`),
        h('td', {}, h('code', JSON.stringify(t.params))),
        h('td', {}, t.job_id ? h('a', {href: `#/jobs/${t.job_id}`}, `#${t.job_id}`) : '–')));
    });
    const keys = Object.keys(sp.space);
    if (keySel.options.length !== keys.length) {
      clear(keySel);
      for (const k of keys) keySel.append(h('option', {value: k}, k));
    }
    drawScatter(canvas, s.trials, keySel.value || keys[0], s.metric);
    await drawChart(s, s.trials);
    if (!stopped && !SWEEP_TERMINAL.has(s.state) && !force) timer = setTimeout(refresh, 2000);
    else if (!stopped && !SWEEP_TERMINAL.has(s.state)) {
      clearTimeout(timer);
      timer = setTimeout(refresh, 2000);
    }
  };
  keySel.addEventListener('change', () => last && drawScatter(canvas, last.trials, keySel.value, last.metric));
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (chart) chart.destroy();
  };
}
