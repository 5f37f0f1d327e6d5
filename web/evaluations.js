// Evaluations of model versions (loaded by the model page and by an
// evaluation job's page, not before):
//   evaluationCard(e)       one evaluation's figures as two compact tables
//                           (classifiers on conv, fc, Y and the raw pixels,
//                           the converged solves' lambda and iterations in
//                           each cell's tooltip and one line under the table),
//                           its timings, failures and grid image;
//   evaluationsSection(...) the model page's "Evaluations": each version's
//                           evaluations, newest first, the "Evaluate" form
//                           (GET /v1/job-schema's evaluate_fields) and the
//                           version's running evaluation jobs, polled until
//                           they end;
//   findEvaluation(...)     the evaluation an evaluation job stored.

import {get, query, authUrl, canWrite} from './api.js';
import {add, h, clear, fmt, fmtPercent, age, ageTitle, stateBadge, progress, notify, errorText, TERMINAL}
  from './util.js';

const NA = 'n/a';
// The rows of a classifier comparison: the taps, then the same classifier on
// the raw input pixels (the baseline).
const TAPS = [['conv', 'conv'], ['fc', 'fc'], ['y', 'Y'], ['pixels', 'pixels']];
const POLL_MS = 2500; // GET /v1/jobs/ID of each running evaluation (x4 while the tab is hidden)
const SHOWN = 3;      // evaluations per version before "Show N older"

const pct = (v) => (v == null ? NA : fmtPercent(v));
const lam = (v) => (v == null ? '?' : v === 0 ? '0' : v.toExponential(0).replace('e-', 'e−'));
const secs = (v) => (v == null ? NA : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} s`);
const base = (model, version) => `/v1/models/${model}/versions/${version}/evaluations`;

// A converged solve (results.linear.fit.conv, ...) as a tooltip: "λ 1e−3
// (validation 85.1%), 41 iterations (160 on the λ path), ‖grad‖ 8.7e-5,
// converged, 2.4 s".
function fitTitle(f) {
  if (!f) return null;
  return `λ ${lam(f.lambda)}${f.val_accuracy != null ? ` (validation ${fmtPercent(f.val_accuracy)})` : ''}, ` +
    `${f.iterations} iterations (${f.path_iterations} on the λ path), ‖grad‖ ${fmt(f.gnorm, 2)}, ${f.stop}` +
    `${f.seconds != null ? `, ${secs(f.seconds)}` : ''}`;
}

// One line per converged classifier: "linear λ 1e−3 · 1e−3 · 1e−4 · 1e−2,
// iterations 41 · 37 · 25 · 52" (conv, fc, Y, pixels), and the stop of any
// solve that did not converge.
function fitLine(m, label, fit) {
  const fs = TAPS.map(([t]) => fit[t]);
  if (fs.every((f) => !f)) return null;
  const odd = TAPS.filter(([t]) => fit[t] && fit[t].stop !== 'converged').map(([t, l]) => `${l}: ${fit[t].stop}`);
  return h('li', {dataset: {fit: m}}, `${label} λ `, fs.map((f) => (f ? lam(f.lambda) : NA)).join(' · '),
    ', iterations ', fs.map((f) => (f ? String(f.iterations) : NA)).join(' · '),
    odd.length ? h('span.eval-unconverged', ` (${odd.join(', ')})`) : null);
}

// One evaluation (an Evaluation of the API). Every figure's cell carries
// data-fig (linear.y, svm.conv, mlp.pixels, ndm, ms_ssim, ...); n/a is a
// figure that is null (its measure failed, or MS-SSIM on an image too small
// for 2 scales).
export function evaluationCard(e) {
  const r = e.results || {};
  const ran = new Set(r.measures || []);
  const failed = new Set(r.failed || []);
  const fig = (name, text, title) => h('td.num', {dataset: {fig: name}, title: title || null}, text);

  const acc = [['linear', 'linear'], ['mlp', 'MLP'], ['svm', 'SVM']].filter(([m]) => ran.has(m));
  const fits = acc.filter(([m]) => r[m] && r[m].fit).map(([m, label]) => fitLine(m, label, r[m].fit)).filter(Boolean);
  const accTable = acc.length ? h('div.eval-acc-wrap', {}, h('table.eval-acc', {},
    h('caption', 'Test accuracy of classifiers on each tap and on the raw pixels (the baseline)'),
    h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'classifier'), TAPS.map(([t, l]) => h('th.num', {
      scope: 'col', title: t === 'pixels' ? 'the same classifier on the input images: what the encoder adds is the difference' : null,
    }, l)))),
    h('tbody', {}, acc.map(([m, label]) => {
      // An evaluation stored before the SVM was solved to convergence has
      // svm {mean, std} and no pixel row: its mean is shown, pixels n/a.
      const f = (r[m] && r[m].mean) || r[m] || {};
      const fit = (r[m] && r[m].fit) || {};
      return h('tr', {dataset: {measure: m}, class: failed.has(m) ? 'failed' : null}, h('th', {scope: 'row'}, label),
        TAPS.map(([t]) => fig(`${m}.${t}`, pct(f[t]), fitTitle(fit[t]))));
    }))),
    fits.length ? h('ul.eval-fit.muted', {title: 'solved to convergence (L-BFGS to ‖grad‖ ≤ 1e-4), λ: the L2 weight chosen on a validation split; conv · fc · Y · pixels'},
      fits) : null) : null;

  const rows = [];
  if (ran.has('ndm')) {
    rows.push(['ndm', 'NDM', r.ndm, ' nats', 'KL(Y || Y with each dimension shuffled), DV estimate'],
      ['ndm_sigmoid', 'NDM, sigmoid on Y', r.ndm_sigmoid, ' nats']);
  }
  if (ran.has('mine')) rows.push(['mine', 'MINE I(X; Y)', r.mine, ' nats', 'DV lower bound on the mutual information of image and Y']);
  if (ran.has('recon')) {
    rows.push(['ssim', 'SSIM', r.ssim, ''],
      ['ms_ssim', `MS-SSIM${r.ms_ssim_scales ? ` (${r.ms_ssim_scales} scales)` : ''}`, r.ms_ssim, '',
        r.ms_ssim == null && !failed.has('recon') ? 'the image is too small for 2 scales' : null],
      ['recon_mse', 'recon MSE', r.recon_mse, '', 'per pixel, in [0, 1] units']);
  }
  const mi = rows.length ? h('table.eval-mi', {},
    h('caption', 'Dependency and reconstruction from Y'),
    h('tbody', {}, rows.map(([k, label, v, unit, title]) => h('tr', {},
      h('th', {scope: 'row', title: title || null}, label),
      fig(k, v == null ? NA : `${fmt(v, 4)}${unit}`, title))))) : null;

  const grid = e.links && e.links.grid ? gridImage(e) : null;
  const s = r.seconds || {};
  return h('article.evaluation', {dataset: {eval: e.id, job: e.job_id ?? ''}},
    h('header', {},
      h('strong', `#${e.id}`), ' ',
      h('span', {title: ageTitle(e.created_at)}, `${age(e.created_at)} ago`), ' · ',
      e.job_id != null ? h('a', {href: `#/jobs/${e.job_id}`}, `job ${e.job_id}`) : 'deleted job', ' · ',
      h('span.eval-measures', (r.measures || []).join(', ')), ' · ',
      h('span', {dataset: {col: 'n'}}, `${r.n_train ?? '?'} train / ${r.n_test ?? '?'} test images`)),
    failed.size || r.failure ? h('p.eval-failed', {role: 'note'},
      `failed: ${[...failed].join(', ') || '–'}`, r.failure ? ` — ${r.failure}` : '') : null,
    h('div.eval-body', {}, accTable, mi, grid),
    Object.keys(s).length ? h('p.eval-seconds.muted', {}, 'seconds: ',
      Object.entries(s).map(([k, v]) => `${k} ${secs(v)}`).join(' · ')) : null);
}

// The grid PNG needs the token: <img> sends no Authorization header, so the
// URL carries ?access_token=. Drawn at an integer scale, pixels kept sharp.
function gridImage(e) {
  const img = h('img', {src: authUrl(e.links.grid), alt: `evaluation ${e.id}: test images (top) over their reconstructions from Y (bottom)`});
  img.addEventListener('load', () => {
    const k = Math.max(1, Math.min(4, Math.floor(420 / img.naturalWidth)));
    img.style.width = `${img.naturalWidth * k}px`;
  });
  img.addEventListener('error', () => img.replaceWith(h('span.muted', 'cannot load the grid image')));
  return h('figure.eval-grid', {}, img, h('figcaption', 'test images over their reconstructions'));
}

// The evaluation that job `jobId` stored with the version, or null.
export async function findEvaluation(model, version, jobId) {
  const r = await get(base(model, version));
  return r.evaluations.find((e) => e.job_id === jobId) || null;
}

// The model page's section. versions: the model's versions (oldest first, as
// the API lists them); selected: the version the page shows (its block is
// open). Returns {evaluate(version), destroy()}.
export function evaluationsSection(parent, {model, versions, selected}) {
  let alive = true;
  let timer = 0;
  const active = new Map(); // job id -> {job, li, version}
  const blocks = new Map(); // version -> {el, list, running, count, evals, all}
  const slot = h('div.form-slot#eval-slot');
  let formFor = null;

  for (const v of versions.slice().reverse()) {
    const count = h('span.muted', ' loading…');
    const b = {
      el: h('details.eval-version', {dataset: {version: v.version}, open: v.version === selected},
        h('summary', {}, h('strong', v.version), count)),
      list: h('div.eval-list'),
      running: h('ul.eval-running'),
      count,
      evals: [],
      all: false,
    };
    add(b.el, b.running, b.list);
    blocks.set(v.version, b);
  }
  add(parent, h('h2#evals-h', 'Evaluations'),
    h('p.muted', 'Classifiers on the conv, fc and Y taps and on the raw pixels, NDM, MINE and reconstruction, measured by evaluation jobs on the version\'s dataset.'),
    slot, [...blocks.values()].map((b) => b.el));

  function draw(version, highlight) {
    const b = blocks.get(version);
    const n = b.evals.length;
    b.count.textContent = ` · ${n ? `${n} evaluation${n > 1 ? 's' : ''}` : 'no evaluation yet'}`;
    clear(b.list);
    const shown = b.all ? b.evals : b.evals.slice(0, SHOWN);
    add(b.list, shown.map((e) => {
      const card = evaluationCard(e);
      if (e.job_id != null && e.job_id === highlight) card.classList.add('new');
      return card;
    }));
    if (shown.length < n) {
      const more = h('button.small', {type: 'button'}, `Show ${n - shown.length} older`);
      more.addEventListener('click', () => { b.all = true; draw(version); });
      add(b.list, more);
    }
  }

  async function load(version, highlight) {
    const b = blocks.get(version);
    try {
      const r = await get(base(model, version));
      if (!alive) return;
      b.evals = r.evaluations.slice().reverse(); // newest first
      draw(version, highlight);
    } catch (e) {
      if (!alive) return;
      b.count.textContent = ' · cannot list';
      add(clear(b.list), h('div.error', {role: 'alert'}, `Cannot list the evaluations of ${version}: ${errorText(e)}`));
    }
  }

  function drawRunning(a) {
    const j = a.job;
    add(clear(a.li), h('a', {href: `#/jobs/${j.id}`}, `job ${j.id}`), ' ', stateBadge(j.state), ' ',
      progress(j.step, j.total_steps || 1000),
      j.error ? h('span.job-error', ` ${j.error.code}: ${j.error.message}`) : null,
      TERMINAL.has(j.state) ? null : h('span.muted', ' results appear here when it finishes'));
    a.li.dataset.state = j.state;
  }

  // Show a running evaluation job of this model and poll it until it ends.
  function follow(job) {
    const b = blocks.get(job.spec.version);
    if (!b || active.has(job.id)) return;
    const a = {job, li: h('li', {dataset: {evalJob: job.id}}), version: job.spec.version};
    drawRunning(a);
    b.running.append(a.li);
    b.el.open = true;
    active.set(job.id, a);
    if (!timer) timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    timer = 0;
    await Promise.all([...active.values()].map(async (a) => {
      try {
        a.job = await get(`/v1/jobs/${a.job.id}`);
      } catch (e) {
        if (e.status !== 404) return; // try again next time
        a.job = {...a.job, state: 'CANCELLED', error: {code: 'deleted', message: 'the job was deleted'}};
      }
      if (!alive) return;
      drawRunning(a);
      if (!TERMINAL.has(a.job.state)) return;
      active.delete(a.job.id);
      if (a.job.state === 'SUCCEEDED') {
        a.li.remove();
        await load(a.version, a.job.id);
      }
    }));
    if (alive && active.size) timer = setTimeout(poll, document.hidden ? POLL_MS * 4 : POLL_MS);
  }

  async function evaluate(version) {
    if (formFor === version) { // the button again: close the form
      clear(slot);
      formFor = null;
      return;
    }
    formFor = version;
    clear(slot);
    try {
      const [{schemaForm}, schema] = await Promise.all([import('./form.js'), get('/v1/job-schema')]);
      if (!alive || formFor !== version) return;
      clear(slot);
      schemaForm(slot, {
        fields: schema.evaluate_fields,
        fixed: {kind: 'evaluate', model, version},
        id: 'eval-form',
        prefix: 'ev-',
        title: `Evaluate ${model} ${version}`,
        intro: 'An evaluation job: it runs on a worker like a training job and stores its results with the version. Keys left at their default are not sent.',
        submitLabel: 'Evaluate',
        onSubmitted(job) {
          formFor = null;
          add(clear(slot), h('p.submitted#eval-submitted', {role: 'status'},
            `Evaluation of ${model} ${version} submitted as `, h('a', {href: `#/jobs/${job.id}`}, `job ${job.id}`),
            '; its results appear under the version when it finishes.'));
          follow(job);
        },
        onCancel() {
          clear(slot);
          formFor = null;
        },
      });
    } catch (e) {
      add(clear(slot), h('div.error', {role: 'alert'}, `Cannot build the form: ${errorText(e)}`));
    }
  }

  for (const v of blocks.keys()) load(v);
  // Evaluations of this model already queued or running (a reload, another tab).
  get(query('/v1/jobs', {state: 'QUEUED,RUNNING,PAUSED', kind: 'evaluate', model, limit: 500})).then((r) => {
    if (!alive) return;
    for (const j of r.jobs.reverse()) follow(j);
  }).catch((e) => alive && notify(e));

  return {
    evaluate: canWrite() ? evaluate : () => {},
    destroy() {
      alive = false;
      clearTimeout(timer);
    },
  };
}
