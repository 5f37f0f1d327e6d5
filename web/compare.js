// #/compare?jobs=1,2,3&key=loss_total: one metric of several jobs on one chart
// (live for jobs still running), with a job picker and a key picker.

import {get, query} from './api.js';
import {add, h, fmt, stateBadge, notify, errorText, metricOrder, color, num, TERMINAL, isEvaluation} from './util.js';
import {MetricChart, Series, chartControls, csvUrl} from './charts.js';
import {JobStream} from './live.js';

const MAX_JOBS = 10;
const MAX_STREAMS = 4; // browsers allow 6 connections per host over HTTP/1.1
const prefs = {smoothing: 0.6, log: false};

function jobLabel(j) {
  return `#${j.id}${j.name ? ` ${j.name}` : ''}`;
}

export async function render(root, {search}) {
  const ids = [...new Set((search.get('jobs') || '').split(',').map(Number).filter((n) => n > 0))].slice(0, MAX_JOBS);
  let key = search.get('key') || 'loss_total';
  const streams = [];
  let chart = null;

  const list = await get(query('/v1/jobs', {limit: 100}));
  const known = new Map(list.jobs.map((j) => [j.id, j]));
  // Selected jobs not among the 100 newest.
  await Promise.all(ids.filter((i) => !known.has(i)).map((i) => get(`/v1/jobs/${i}`)
    .then((j) => known.set(j.id, j))
    .catch((e) => notify(`job ${i}: ${errorText(e)}`))));
  const selected = ids.filter((i) => known.has(i)).map((i) => known.get(i));

  // Keys: those the selected jobs have written (their summaries).
  const summaries = new Map();
  await Promise.all(selected.map((j) => get(`/v1/jobs/${j.id}/metrics`)
    .then((s) => summaries.set(j.id, new Map(s.metrics.map((m) => [m.key, m]))))
    .catch((e) => notify(e))));
  const keys = new Set(['loss_total']);
  for (const s of summaries.values()) for (const k of s.keys()) keys.add(k);
  for (const j of selected) for (const k of Object.keys(j.latest || {})) keys.add(k);
  if (!keys.has(key)) keys.add(key);

  // The picker: jobs (checkboxes) and the key.
  const boxes = [...known.values()].sort((a, b) => b.id - a.id).map((j) => {
    const cb = h('input', {type: 'checkbox', value: String(j.id), id: `cmp-${j.id}`, checked: ids.includes(j.id)});
    return h('li', {}, h('label', {for: cb.id}, cb, ` ${jobLabel(j)} `, stateBadge(j.state),
      h('span.muted', ` ${isEvaluation(j) ? `evaluate ${j.spec.model} ${j.spec.version}` : j.spec ? j.spec.estimator : ''} ${j.step}/${j.total_steps || '?'}`)));
  });
  const keySel = h('select#cmp-key', {}, [...keys].sort(metricOrder).map((k) => h('option', {value: k, selected: k === key}, k)));
  const apply = h('button', {type: 'submit'}, 'Compare');
  const picker = h('form.compare-picker', {'aria-label': 'jobs and metric to compare'},
    h('fieldset', {}, h('legend', `Jobs (up to ${MAX_JOBS})`), h('ul.job-pick', {}, boxes)),
    h('div.field', {}, h('label', {for: 'cmp-key'}, 'Metric'), keySel),
    apply);
  picker.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const pick = [...picker.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value).slice(0, MAX_JOBS);
    location.hash = `#/compare?jobs=${pick.join(',')}&key=${encodeURIComponent(keySel.value)}`;
  });

  const chartSlot = h('div.charts.single#compare-chart');
  const table = h('tbody');
  add(root, h('h1', 'Compare'), picker);
  if (!selected.length) {
    add(root, h('p.muted', 'Pick two or more jobs and a metric.'));
    return () => {};
  }
  add(root, 
    chartControls((w) => { prefs.smoothing = w; chart && chart.setSmoothing(w); },
      (log) => { prefs.log = log; chart && chart.setLog(log); }, prefs),
    chartSlot,
    h('div.table-wrap', {}, h('table.compare-table', {},
      h('thead', {}, h('tr', {}, ['Job', 'State', 'Points', 'Last', 'Min', 'Max', 'CSV'].map((c) => h('th', {scope: 'col'}, c)))),
      table)));

  const series = selected.map((j, i) => {
    const s = new Series(j.id, key, jobLabel(j), color(i), {exact: key === 'lr'});
    const m = summaries.get(j.id) && summaries.get(j.id).get(key);
    s.count = m ? m.count : 0;
    add(table, h('tr', {dataset: {job: j.id}},
      h('td', {}, h('span.swatch', {style: `background:${s.color}`}), h('a', {href: `#/jobs/${j.id}`}, jobLabel(j))),
      h('td', {}, stateBadge(j.state)),
      h('td.num', m ? String(m.count) : '0'),
      h('td.num', m ? fmt(m.last) : '–'),
      h('td.num', m ? fmt(m.min) : '–'),
      h('td.num', m ? fmt(m.max) : '–'),
      h('td', {}, h('a', {href: csvUrl(j.id, key), download: `job-${j.id}-${key}.csv`}, 'CSV'))));
    return s;
  });
  chart = new MetricChart(chartSlot, {title: `${key} of jobs ${selected.map((j) => j.id).join(', ')}`, key,
    series, header: h('header', {}, h('h3', key)), height: 360, ...prefs});
  await chart.load().catch((e) => {
    chart.status.textContent = `cannot load: ${errorText(e)}`;
    notify(e);
  });

  // Live: jobs still running append their points.
  for (const j of selected.filter((x) => !TERMINAL.has(x.state)).slice(0, MAX_STREAMS)) {
    const s = series.find((x) => x.jobId === j.id);
    streams.push(new JobStream(j.id, j.last_event_id ?? 0, {
      metrics(points) {
        const pts = points.filter((p) => p.key === key).map((p) => [p.step, num(p.value)]);
        if (pts.length && s.append(pts)) chart.scheduleRedraw();
      },
      rewind(step) {
        s.rewind(step);
        chart.scheduleRedraw();
      },
    }));
  }

  return () => {
    for (const st of streams) st.close();
    if (chart) chart.destroy();
  };
}
