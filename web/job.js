// #/jobs/ID: a job's live curves (one chart per metric key), its state and
// controls, checkpoints with download links, hyperparameters and promotion.
// An evaluation job's page has its progress, the model version it measures,
// its spec and, once it succeeded, its results (evaluations.js, loaded only
// for those), and no charts.
//
// Live without re-fetching: GET the job (its last_event_id N), GET each key's
// history downsampled, then follow the events stream from N on, appending
// each metrics event's points (steps at or below a series' last one are
// dropped as duplicates), cutting on rewind.
//
// probe_pixels (the probe on the raw pixels, the same at every probed
// checkpoint) has no chart of its own: it is the dashed "pixels (baseline)"
// line of every probe chart (probe_conv, probe_fc, probe_y).

import {get, authUrl, canWrite} from './api.js';
import {add, h, clear, fmt, fmtPercent, fmtBytes, age, ageTitle, stateBadge, progress, notify, errorText,
  metricOrder, keyColor, num, TERMINAL, isEvaluation, evalHeadline, versionHref} from './util.js';
import {MetricChart, Series, chartControls, csvUrl} from './charts.js';
import {JobStream} from './live.js';
import {jobActions, promoteForm} from './actions.js';

const prefs = {smoothing: 0.6, log: false}; // kept across job pages of this tab

// A spec's lr schedule in words: "constant", "cosine, warm-up 500, to ×0.01 by step 9370".
function lrText(spec) {
  const parts = [spec.lr_schedule];
  if (spec.lr_warmup > 0) parts.push(`warm-up ${spec.lr_warmup}`);
  const end = spec.lr_horizon > 0 ? `step ${spec.lr_horizon}` : 'the end';
  if (spec.lr_schedule === 'cosine') parts.push(`to ×${spec.lr_final} by ${end}`);
  if (spec.lr_schedule === 'step') parts.push(`×${spec.lr_step_factor} at 50 % and 75 % of the decay to ${end}`);
  return `(${parts.join(', ')})`;
}
const PIXELS = 'probe_pixels';
const BASELINE_LABEL = 'pixels (baseline)';
const isProbeCurve = (key) => key.startsWith('probe_') && key !== PIXELS;

// The title, state, error and control buttons of a job page; the returned
// function redraws them (buttons only when the state changed) after
// drawStats(). getJob/setJob: the page's current job.
function headDrawer(head, actions, getJob, setJob, drawStats) {
  let headSig = '';
  const draw = () => {
    drawStats();
    const job = getJob();
    const sig = JSON.stringify([job.state, job.error, job.name]);
    if (sig === headSig) return; // keep the buttons (and a half-done click) alone
    headSig = sig;
    add(clear(head),
      h('h1', {}, `Job ${job.id}`, job.name ? h('span.sub', ` ${job.name}`) : null, ' ', stateBadge(job.state)),
      job.error ? h('div.error', {role: 'alert'}, `${job.error.code}: ${job.error.message}`) : null);
    add(clear(actions), ...jobActions(job, (j) => {
      if (!j) {
        location.hash = '#/jobs';
        return;
      }
      setJob({...getJob(), ...j});
      draw();
    }, {promote: false}));
  };
  return draw;
}

const specList = (spec) => h('dl.spec#spec', {}, Object.entries(spec || {}).map(([k, v]) =>
  [h('dt', k), h('dd.mono', v == null ? 'null' : JSON.stringify(v))]));

// An evaluation job: its progress (eval_progress, step out of 1000) follows the
// events stream; at SUCCEEDED its results are read from the version.
async function renderEvaluation(root, job) {
  const id = job.id;
  const {model, version} = job.spec;
  const ev = await import('./evaluations.js');
  let alive = true;
  let stream = null;
  const head = h('div.job-head');
  const actions = h('div.actions');
  const stats = h('dl.stats');
  const results = h('div.eval-results#eval-results', {'aria-live': 'polite'});
  const live = h('span.live', {'aria-live': 'polite'});
  const drawStats = () => {
    const ms = job.started_at ? Date.parse(job.finished_at || new Date().toISOString()) - Date.parse(job.started_at) : null;
    add(clear(stats),
      h('dt', 'Progress'), h('dd', {}, progress(job.step, job.total_steps || 1000)),
      h('dt', 'Kind'), h('dd', 'evaluation'),
      h('dt', 'Model version'), h('dd', {}, h('a#eval-version', {href: versionHref(model, version)}, `${model} ${version}`)),
      h('dt', 'Measures'), h('dd', (job.spec.measures || []).join(', ')),
      h('dt', 'Result'), h('dd', evalHeadline(job.latest) || '–'),
      h('dt', 'Created'), h('dd', {title: ageTitle(job.created_at)}, `${age(job.created_at)} ago`),
      h('dt', job.finished_at ? 'Took' : 'Running for'), h('dd', ms == null ? '–' : `${(ms / 1000).toFixed(1)} s`),
      job.restarts ? [h('dt', 'Restarts'), h('dd', String(job.restarts))] : null);
  };
  const drawHead = headDrawer(head, actions, () => job, (j) => { job = j; }, drawStats);

  async function loadResults() {
    if (job.state !== 'SUCCEEDED') {
      add(clear(results), h('p.muted', TERMINAL.has(job.state)
        ? `No results: the job ${job.state === 'FAILED' ? 'failed' : 'was cancelled'}.`
        : 'The results appear here when the job finishes.'));
      return;
    }
    try {
      const e = await ev.findEvaluation(model, version, id);
      if (!alive) return;
      add(clear(results), e ? ev.evaluationCard(e) : h('p.muted', `${model} ${version} has no evaluation of job ${id}.`));
    } catch (e) {
      if (alive) add(clear(results), h('div.error', {role: 'alert'}, `Cannot read the results: ${errorText(e)}`));
    }
  }

  add(root,
    h('p.crumbs', {}, h('a', {href: '#/jobs'}, 'Jobs'), ` / job ${id}`),
    head, actions, stats,
    h('h2', {}, 'Results ', live), results,
    h('h2', 'Spec'), specList(job.spec));
  drawHead();
  await loadResults();

  if (!TERMINAL.has(job.state)) {
    live.textContent = '(live)';
    stream = new JobStream(id, job.last_event_id ?? 0, {
      metrics(points) {
        for (const p of points) {
          job.step = Math.max(job.step, p.step);
          job.latest = {...(job.latest || {}), [p.key]: p.value};
        }
        if (!job.total_steps) job.total_steps = 1000;
        drawHead();
      },
      rewind(step) { // a resumed evaluation starts again
        job.step = Math.min(job.step, step);
        drawHead();
      },
      async state(e) {
        job.state = e.state;
        if (TERMINAL.has(e.state)) live.textContent = '';
        try {
          job = await get(`/v1/jobs/${id}`);
        } catch (err) {
          notify(err);
        }
        if (!alive) return;
        drawHead();
        if (TERMINAL.has(job.state)) loadResults();
      },
      error(n, wait) {
        live.textContent = `(reconnecting in ${Math.round(wait / 1000)} s)`;
      },
    });
  }
  return () => {
    alive = false;
    if (stream) stream.close();
  };
}

export async function render(root, {id}) {
  let job = await get(`/v1/jobs/${id}`);
  if (isEvaluation(job)) return renderEvaluation(root, job);
  let alive = true;
  let stream = null;
  let refetching = false;
  const charts = new Map(); // key -> MetricChart
  let pixelCount = 0;       // probe_pixels points in the history (the baselines' paging)

  const head = h('div.job-head');
  const actions = h('div.actions');
  const stats = h('dl.stats');
  const chartsEl = h('div.charts#charts');
  const ckptBody = h('tbody');
  const ckptEmpty = h('p.muted', 'No checkpoint yet.');
  const ckptTable = h('div.table-wrap', {hidden: true});
  const promoteSlot = h('div.promote-slot');
  const live = h('span.live', {'aria-live': 'polite'});

  const drawHead = headDrawer(head, actions, () => job, (j) => { job = j; }, () => drawStats());

  function drawStats() {
    const spec = job.spec || {};
    const l = job.latest || {};
    const lrMoves = !!spec.lr_schedule && (spec.lr_schedule !== 'constant' || spec.lr_warmup > 0);
    add(clear(stats), 
      h('dt', 'Progress'), h('dd', {}, progress(job.step, job.total_steps, (job.spec || {}).steps)),
      h('dt', 'Dataset'), h('dd', spec.dataset || '–'),
      h('dt', 'Estimator'), h('dd', spec.estimator || '–'),
      h('dt', 'Images/s'), h('dd', fmt(l.images_per_second ?? job.images_per_second, 3)),
      h('dt', 'Loss'), h('dd', fmt(l.loss_total)),
      h('dt', 'LR'), h('dd#lr-now', {title: lrMoves ? 'the lr of the latest step (the lr chart shows the schedule)' : null},
        fmt(lrMoves ? l.lr ?? spec.lr : spec.lr),
        spec.lr_schedule ? h('span.muted', ` ${lrText(spec)}`) : null),
      h('dt', 'Probe (y)'), h('dd#probe-y', {title: l.probe_pixels != null ? 'the same probe on the raw pixels: the baseline' : null},
        l.probe_y != null ? fmtPercent(l.probe_y) : '–',
        l.probe_pixels != null ? h('span.muted', ` (pixels ${fmtPercent(l.probe_pixels)})`) : null),
      h('dt', 'Created'), h('dd', {title: ageTitle(job.created_at)}, `${age(job.created_at)} ago`),
      h('dt', 'Checkpoint'), h('dd', job.checkpoint_step != null ? `step ${job.checkpoint_step}` : '–'),
      job.restarts ? [h('dt', 'Restarts'), h('dd', String(job.restarts))] : null);
  }

  async function loadCheckpoints() {
    try {
      const r = await get(`/v1/jobs/${id}/checkpoints`);
      if (!alive) return;
      clear(ckptBody);
      ckptEmpty.hidden = r.checkpoints.length > 0;
      ckptTable.hidden = !r.checkpoints.length;
      // Promotion needs a checkpoint; the form lists them.
      if (canWrite() && r.checkpoints.length) {
        add(clear(promoteSlot), h('h2', 'Promote to a model'), promoteForm(job));
      }
      for (const c of r.checkpoints.slice().reverse()) {
        const m = c.metrics || {};
        add(ckptBody, h('tr', {dataset: {step: c.step}},
          h('td.num', String(c.step)),
          h('td.num', fmtBytes(c.bytes)),
          h('td', {title: ageTitle(c.created_at)}, age(c.created_at)),
          h('td', Object.keys(m).sort(metricOrder).map((k) => h('span.kv', `${k} ${k.startsWith('probe_') ? fmtPercent(m[k]) : fmt(m[k])}`))),
          h('td.mono', {title: c.sha256}, c.sha256.slice(0, 12)),
          h('td', {}, h('a', {href: authUrl(c.url || `/v1/jobs/${id}/checkpoints/${c.step}`), download: `job-${id}-step-${c.step}.dimdckpt`}, 'download'))));
      }
    } catch (e) {
      if (alive) notify(e);
    }
  }

  function chartFor(key, count = 0) {
    let c = charts.get(key);
    if (c) return c;
    const series = new Series(job.id, key, key, keyColor(key), {exact: key === 'lr'});
    series.count = count;
    // A probe curve has the pixel probe beside it, a flat dashed line.
    const baseline = isProbeCurve(key)
      ? new Series(job.id, PIXELS, BASELINE_LABEL, keyColor(PIXELS), {baseline: true}) : null;
    if (baseline) baseline.count = pixelCount;
    const header = h('header', {},
      h('h3', key),
      h('a.csv', {href: csvUrl(job.id, key), download: `job-${job.id}-${key}.csv`, title: `${key} as CSV`}, 'CSV'));
    // Charts in metric order: insert before the first key that sorts after.
    const holder = h('div.chart-slot', {dataset: {key}});
    const after = [...chartsEl.children].find((el) => metricOrder(el.dataset.key, key) > 0);
    chartsEl.insertBefore(holder, after || null);
    c = new MetricChart(holder, {title: `${key} by step`, key, series: baseline ? [series, baseline] : [series], header, ...prefs});
    charts.set(key, c);
    return c;
  }

  add(root, 
    h('p.crumbs', {}, h('a', {href: '#/jobs'}, 'Jobs'), ` / job ${id}`),
    head, actions, stats,
    h('h2', {}, 'Curves ', live),
    chartControls(
      (w) => { prefs.smoothing = w; for (const c of charts.values()) c.setSmoothing(w); },
      (log) => { prefs.log = log; for (const c of charts.values()) c.setLog(log); },
      prefs),
    chartsEl,
    h('h2', 'Checkpoints'),
    add(ckptTable, h('table.checkpoints', {},
      h('thead', {}, h('tr', {}, ['Step', 'Size', 'Age', 'Metrics', 'sha256', ''].map((c) => h('th', {scope: 'col'}, c)))),
      ckptBody)),
    ckptEmpty,
    promoteSlot,
    h('h2', 'Hyperparameters'),
    specList(job.spec));

  drawHead();
  loadCheckpoints();

  // Histories first (downsampled), then the stream from the event id the job
  // had before them: points both in a history and in an event are deduped.
  const lastEventId = job.last_event_id ?? 0;
  const summary = await get(`/v1/jobs/${id}/metrics`);
  const keys = summary.metrics.map((m) => m.key).filter((k) => k !== PIXELS).sort(metricOrder);
  const px = summary.metrics.find((m) => m.key === PIXELS);
  pixelCount = px ? px.count : 0;
  for (const k of keys) chartFor(k, summary.metrics.find((m) => m.key === k).count);
  await Promise.all([...charts.values()].map((c) => c.load().catch((e) => {
    c.status.textContent = `cannot load: ${errorText(e)}`;
    notify(e);
  })));
  if (!alive) return () => {};

  if (!TERMINAL.has(job.state)) {
    live.textContent = '(live)';
    stream = new JobStream(job.id, lastEventId, {
      metrics(points) {
        live.textContent = '(live)';
        const byKey = new Map();
        let step = job.step;
        for (const p of points) {
          if (!byKey.has(p.key)) byKey.set(p.key, []);
          byKey.get(p.key).push([p.step, num(p.value)]);
          step = Math.max(step, p.step);
          job.latest = {...(job.latest || {}), [p.key]: p.value};
        }
        for (const [key, pts] of byKey) {
          if (key === PIXELS) { // every probe chart's baseline
            for (const c of charts.values()) {
              if (c.series[1] && c.series[1].append(pts) && c.u) c.scheduleRedraw();
            }
            continue;
          }
          const c = chartFor(key);
          if (!c.u && !c.loading) {
            c.loading = c.load().catch((e) => notify(e)); // a key new since the summary
          }
          if (c.series[0].append(pts) && c.u) c.scheduleRedraw();
        }
        job.step = step;
        if (!job.total_steps && !refetching) {
          refetching = true; // total_steps is 0 until a worker has loaded the dataset
          get(`/v1/jobs/${id}`).then((j) => { job = {...j, step: Math.max(j.step, job.step)}; drawHead(); })
            .catch(() => {}).finally(() => { refetching = false; });
        }
        drawHead();
      },
      rewind(step) {
        for (const c of charts.values()) {
          for (const s of c.series) s.rewind(step);
          c.scheduleRedraw();
        }
        job.step = Math.min(job.step, step);
        drawHead();
        notify(`job ${id} resumed from its checkpoint at step ${step}; later points are computed again`, 'info');
      },
      async state(ev) {
        job.state = ev.state;
        if (ev.error) job.error = ev.error;
        if (TERMINAL.has(ev.state)) live.textContent = '';
        try {
          job = await get(`/v1/jobs/${id}`); // total_steps, finished_at, error
        } catch (e) {
          notify(e);
        }
        if (alive) drawHead();
      },
      checkpoint(ev) {
        job.checkpoint_step = ev.step;
        drawHead();
        loadCheckpoints();
      },
      error(n, wait) {
        live.textContent = `(reconnecting in ${Math.round(wait / 1000)} s)`;
      },
    });
  }

  return () => {
    alive = false;
    if (stream) stream.close();
    for (const c of charts.values()) c.destroy();
  };
}
