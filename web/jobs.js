// #/jobs: the jobs table (filter by state, newest first, refreshed every 2 s
// while shown), the "New job" form and each row's actions.

import {get, query, canWrite} from './api.js';
import {add, h, clear, fmt, fmtPercent, age, ageTitle, stateBadge, progress, notify, errorText, isEvaluation,
  evalHeadline, versionHref} from './util.js';
import {jobActions} from './actions.js';

const STATES = ['QUEUED', 'RUNNING', 'PAUSED', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
const FILTERS = [['', 'all'], ['QUEUED,RUNNING,PAUSED', 'active'], ...STATES.map((s) => [s, s])];
const REFRESH_MS = 2000;

function latest(job, key) {
  return job.latest && key in job.latest ? job.latest[key] : null;
}

function lossCell(job) {
  const l = job.latest || {};
  const keys = Object.keys(l).filter((k) => k.startsWith('loss_')).sort();
  const title = keys.map((k) => `${k} ${fmt(l[k])}`).join('\n');
  return h('td.num', {title: title || null, dataset: {col: 'loss'}}, fmt(latest(job, 'loss_total')));
}

function probeCell(job) {
  const l = job.latest || {};
  const keys = ['probe_y', 'probe_fc', 'probe_conv'].filter((k) => k in l);
  const title = keys.map((k) => `${k} ${fmtPercent(l[k])}`).join('\n');
  return h('td.num', {title: title || null, dataset: {col: 'probe'}}, keys.length ? fmtPercent(l[keys[0]]) : '–');
}

// An evaluation's row: what it evaluates where a training job's dataset and
// estimator are, its headline figure where they have loss and probe.
function evalCells(job) {
  const s = job.spec;
  const l = job.latest || {};
  const figs = Object.keys(l).filter((k) => k.startsWith('eval_') && k !== 'eval_progress').sort();
  return {
    kind: h('td', {colspan: 2, dataset: {col: 'kind'}}, h('span.kind', 'evaluate'), ' ',
      h('a', {href: versionHref(s.model, s.version)}, `${s.model} ${s.version}`)),
    result: h('td.num', {colspan: 2, dataset: {col: 'result'}, title: figs.map((k) => `${k} ${fmt(l[k])}`).join('\n') || null},
      evalHeadline(l) || '–'),
  };
}

function ips(job) {
  const v = latest(job, 'images_per_second');
  return fmt(v != null ? v : job.images_per_second, 3);
}

export async function render(root, {search}) {
  const state = search.get('state') || '';
  let jobs = [];
  let cursor = null;
  let limit = 50;
  let timer = 0;
  let alive = true;
  const rows = new Map(); // id -> {tr, state}

  const filter = h('select#state-filter', {'aria-label': 'filter by state'},
    FILTERS.map(([v, label]) => h('option', {value: v, selected: v === state}, label)));
  filter.addEventListener('change', () => {
    location.hash = filter.value ? `#/jobs?state=${filter.value}` : '#/jobs';
  });
  const formSlot = h('div.form-slot');
  const newBtn = canWrite() ? h('button#new-job', {type: 'button', 'aria-expanded': 'false'}, 'New job') : null;
  const tbody = h('tbody');
  const empty = h('p.muted.empty', {hidden: true}, 'No jobs yet.');
  const more = h('button#more', {type: 'button', hidden: true}, 'Load more');
  const error = h('div.inline-error');
  const table = h('table.jobs#jobs-table', {},
    h('caption.visually-hidden', 'Jobs, newest first'),
    h('thead', {}, h('tr', {},
      ['ID', 'Name', 'State', 'Dataset', 'Estimator', 'Step / total', 'Images/s', 'Loss', 'Probe', 'Age', 'Actions']
        .map((c) => h('th', {scope: 'col'}, c)))),
    tbody);

  add(root, 
    h('div.toolbar', {},
      h('h1', 'Jobs'),
      h('label', {for: 'state-filter'}, 'State'), filter,
      newBtn),
    formSlot, error,
    h('div.table-wrap', {}, table), empty, more);

  if (newBtn) {
    newBtn.addEventListener('click', async () => {
      if (formSlot.firstChild) {
        clear(formSlot);
        newBtn.setAttribute('aria-expanded', 'false');
        return;
      }
      newBtn.setAttribute('aria-expanded', 'true');
      try {
        const { jobForm } = await import('./form.js');
        await jobForm(formSlot, {
          onSubmitted: (job) => {
            notify(`job ${job.id} submitted`, 'info');
            location.hash = `#/jobs/${job.id}`;
          },
          onCancel: () => {
            clear(formSlot);
            newBtn.setAttribute('aria-expanded', 'false');
            newBtn.focus();
          },
        });
      } catch (e) {
        add(formSlot, h('div.error', {role: 'alert'}, `Cannot build the form: ${errorText(e)}`));
      }
    });
  }

  function row(job) {
    const spec = job.spec || {};
    const ev = isEvaluation(job) ? evalCells(job) : null;
    const onChange = (j) => {
      if (!j) {
        jobs = jobs.filter((x) => x.id !== job.id);
      } else {
        jobs = jobs.map((x) => (x.id === j.id ? {...x, ...j} : x));
      }
      draw();
    };
    return h('tr', {dataset: {job: job.id, state: job.state}},
      h('td.num', {}, h('a', {href: `#/jobs/${job.id}`}, String(job.id))),
      h('td', {}, h('a', {href: `#/jobs/${job.id}`}, job.name || '–')),
      h('td', {dataset: {col: 'state'}}, stateBadge(job.state),
        job.error ? h('span.job-error', {title: job.error.message}, ` ${job.error.code}`) : null),
      ev ? ev.kind : [h('td', {}, spec.dataset || '–'), h('td', {}, spec.estimator || '–')],
      h('td', {dataset: {col: 'progress'}}, progress(job.step, job.total_steps, ev ? 1000 : spec.steps)),
      h('td.num', {}, ev ? '–' : ips(job)),
      ev ? ev.result : [lossCell(job), probeCell(job)],
      h('td', {title: ageTitle(job.created_at)}, age(job.created_at)),
      h('td', {}, h('div.actions', {}, jobActions(job, onChange))));
  }

  // Rows are replaced only when their job changed (keeps focus and a half-done
  // "Confirm delete" alone).
  function draw() {
    const seen = new Set();
    let prev = null;
    for (const job of jobs) {
      seen.add(job.id);
      const sig = JSON.stringify([job.state, job.step, job.total_steps, job.latest, job.images_per_second, job.checkpoint_step, job.name, job.error]);
      let r = rows.get(job.id);
      if (!r || r.sig !== sig) {
        const tr = row(job);
        if (r) r.tr.replaceWith(tr);
        r = {tr, sig};
        rows.set(job.id, r);
      }
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (r.tr !== want) tbody.insertBefore(r.tr, want);
      prev = r.tr;
    }
    for (const [id, r] of rows) {
      if (!seen.has(id)) {
        r.tr.remove();
        rows.delete(id);
      }
    }
    empty.hidden = jobs.length > 0;
    more.hidden = !cursor;
  }

  async function refresh() {
    try {
      const r = await get(query('/v1/jobs', {state, limit: Math.min(500, Math.max(50, limit))}));
      if (!alive) return;
      jobs = r.jobs;
      cursor = r.next_cursor;
      clear(error);
      draw();
    } catch (e) {
      if (!alive) return;
      add(clear(error), h('div.error', {role: 'alert'}, `Cannot list jobs: ${errorText(e)}`));
    }
  }

  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const r = await get(query('/v1/jobs', {state, limit: 50, cursor}));
      const have = new Set(jobs.map((j) => j.id));
      jobs = jobs.concat(r.jobs.filter((j) => !have.has(j.id)));
      limit = jobs.length;
      cursor = r.next_cursor;
      draw();
    } catch (e) {
      notify(e);
    } finally {
      more.disabled = false;
    }
  });

  async function loop() {
    await refresh();
    if (alive) timer = setTimeout(loop, document.hidden ? REFRESH_MS * 5 : REFRESH_MS);
  }
  await loop();

  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
