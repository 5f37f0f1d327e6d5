// #/models: every model; #/models/NAME: its versions, their evaluations
// (evaluations.js, loaded with this page), the 2-D projection of the test
// set's embeddings by class, and an image upload that shows the image's
// embedding and its nearest training images.

import {get, post, del, query, authUrl, canWrite} from './api.js';
import {add, h, clear, fmt, fmtPercent, fmtBytes, age, ageTitle, notify, errorText, classNames, className,
  color} from './util.js';
import {scatter, embeddingStrip} from './scatter.js';

const K = 8;

export async function render(root, params) {
  return params.name ? renderModel(root, params) : renderList(root);
}

function metricSummary(m) {
  m = m || {};
  const probe = ['probe_y', 'probe_fc', 'probe_conv'].find((k) => k in m);
  return probe ? `${probe} ${fmtPercent(m[probe])}` : 'loss_total' in m ? `loss ${fmt(m.loss_total)}` : '–';
}

async function renderList(root) {
  const r = await get('/v1/models');
  add(root, h('h1', 'Models'));
  if (!r.models.length) {
    add(root, h('p.muted', 'No model yet. Promote a job\'s checkpoint from its page (Promote to a model).'));
    return;
  }
  add(root, h('div.table-wrap', {}, h('table.models#models-table', {},
    h('thead', {}, h('tr', {}, ['Name', 'Versions', 'Latest', 'Created', 'Source', 'Dataset', 'Y dim', 'Metrics']
      .map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, r.models.map((m) => {
      const v = m.latest;
      return h('tr', {dataset: {model: m.name}},
        h('td', {}, h('a', {href: `#/models/${m.name}`}, m.name)),
        h('td.num', String(m.versions)),
        h('td', v ? v.version : '–'),
        h('td', {title: v ? ageTitle(v.created_at) : null}, v ? `${age(v.created_at)} ago` : '–'),
        h('td', {}, v && v.job_id ? h('a', {href: `#/jobs/${v.job_id}`}, `job ${v.job_id} step ${v.step}`) : v ? `step ${v.step}` : '–'),
        h('td', v ? v.dataset : '–'),
        h('td.num', v ? String(v.y_dim) : '–'),
        h('td', v ? metricSummary(v.metrics) : '–'));
    })))));
}

async function renderModel(root, {name, search}) {
  const [model, ds] = await Promise.all([get(`/v1/models/${name}`), get('/v1/datasets').catch(() => ({datasets: []}))]);
  const versions = model.versions;
  add(root, h('p.crumbs', {}, h('a', {href: '#/models'}, 'Models'), ` / ${name}`), h('h1', `Model ${name}`));
  if (!versions.length) {
    add(root, h('p.muted', 'Every version of this model was deleted.'));
    return;
  }
  const want = search.get('version');
  const v = versions.find((x) => x.version === want) || versions[versions.length - 1];
  const dsInfo = (ds.datasets || []).find((d) => d.name === v.dataset);
  // the version's own class names (kept since versions record them), else what the page knows
  const names = Array.isArray(v.classes) ? v.classes : classNames(v.dataset, dsInfo);
  let plot = null;
  let alive = true;
  const urls = [];
  // The Evaluations section (and the Evaluate buttons' form) once loaded.
  const evalSlot = h('section.evaluations#evaluations', {'aria-labelledby': 'evals-h'});
  const evals = import('./evaluations.js').then((m) => {
    if (!alive) return null;
    return m.evaluationsSection(evalSlot, {model: name, versions, selected: v.version});
  }).catch((e) => {
    if (alive) add(evalSlot, h('div.error', {role: 'alert'}, `Cannot show the evaluations: ${errorText(e)}`));
    return null;
  });
  const onEvaluate = (version) => evals.then((s) => s && s.evaluate(version));

  // Versions table.
  const tbody = h('tbody');
  for (const x of versions.slice().reverse()) {
    const tr = h('tr', {dataset: {version: x.version}, 'aria-current': x === v ? 'true' : null},
      h('td', {}, x === v ? h('strong', x.version) : h('a', {href: `#/models/${name}?version=${x.version}`}, x.version)),
      h('td', {title: ageTitle(x.created_at)}, `${age(x.created_at)} ago`),
      h('td', {}, x.job_id ? h('a', {href: `#/jobs/${x.job_id}`}, `job ${x.job_id}`) : 'deleted job', ` step ${x.step}`),
      h('td', `${x.preset}, ${x.input.channels}×${x.input.height}×${x.input.width}, y ${x.y_dim}`),
      h('td', metricSummary(x.metrics)),
      h('td.num', String(x.index_images)),
      h('td', x.pinned ? 'pinned' : ''),
      h('td', {}, h('a', {href: authUrl(x.links.checkpoint), download: `${name}-${x.version}.dimdckpt`, title: x.checkpoint_sha256}, fmtBytes(x.bytes))),
      h('td', {}, h('div.actions', {}, versionActions(name, x, onEvaluate))));
    add(tbody, tr);
  }
  const projSlot = h('div.projection#projection', {}, h('p.muted', 'Computing the projection…'));
  const drop = uploadArea(onFile);
  const result = h('div.encode-result#encode-result', {'aria-live': 'polite'});

  add(root, 
    h('div.table-wrap', {}, h('table.versions', {},
      h('thead', {}, h('tr', {}, ['Version', 'Created', 'Source', 'Encoder', 'Metrics', 'Index', '', 'Checkpoint', ''].map((c) => h('th', {scope: 'col'}, c)))),
      tbody)),
    evalSlot,
    h('div.model-panels', {},
      h('section.panel', {'aria-labelledby': 'proj-h'},
        h('h2#proj-h', `What ${v.version} learned: test images by class`),
        projSlot),
      h('section.panel', {'aria-labelledby': 'enc-h'},
        h('h2#enc-h', 'Encode an image'),
        h('p.muted', `${v.version} encodes it to Y (${v.y_dim} values) and finds its ${K} nearest training images (cosine).`),
        drop, result)));

  get(`/v1/models/${name}/versions/${v.version}/projection`).then((p) => {
    if (!alive) return;
    clear(projSlot);
    const ev = p.explained_variance || [];
    const pct = (i) => (ev[i] != null ? ` (${(ev[i] * 100).toFixed(1)}% of variance)` : '');
    add(projSlot, h('p.muted', `${p.n ?? p.points.length} ${p.split || 'test'} images, first two principal components of Y.`));
    plot = scatter(projSlot, {points: p.points, names, xLabel: `PC1${pct(0)}`, yLabel: `PC2${pct(1)}`});
  }).catch((e) => {
    if (!alive) return;
    add(clear(projSlot), h('div.error', {role: 'alert'}, `Cannot compute the projection: ${errorText(e)}`));
  });

  async function onFile(file) {
    clear(result);
    if (!file) return;
    const type = file.type === 'image/png' || file.type === 'image/jpeg' ? file.type : await sniff(file);
    if (!type) {
      add(result, h('div.error', {role: 'alert'}, `${file.name}: not a PNG or JPEG image`));
      return;
    }
    const url = URL.createObjectURL(file);
    urls.push(url);
    add(result, h('div.upload-preview', {}, h('img', {src: url, alt: `the uploaded image ${file.name}`}),
      h('span', `${file.name} (${fmtBytes(file.size)})`)), h('p.muted', 'Encoding…'));
    const q = {version: v.version};
    const [enc, nb] = await Promise.allSettled([
      post(query(`/v1/models/${name}/encode`, q), file, {type}),
      post(query(`/v1/models/${name}/neighbors`, {...q, k: K}), file, {type}),
    ]);
    if (!alive) return;
    result.lastChild.remove();
    if (enc.status === 'fulfilled') {
      const e = enc.value.embeddings[0];
      let norm = 0;
      for (const x of e) norm += x * x;
      add(result, h('div.embedding', {},
        h('h3', `Embedding (${enc.value.tap}, ${enc.value.dim} values, norm ${fmt(Math.sqrt(norm), 3)})`),
        embeddingStrip(e),
        h('details', {}, h('summary', 'values'), h('p.mono.values', e.map((x) => fmt(x, 3)).join(' ')))));
    } else {
      add(result, h('div.error', {role: 'alert'}, `Encode failed: ${errorText(enc.reason)}`));
    }
    if (nb.status === 'fulfilled') {
      const list = nb.value.neighbors;
      add(result, h('h3', `${list.length} nearest training images`),
        h('table.neighbors#neighbors', {},
          h('thead', {}, h('tr', {}, ['#', 'Training image', 'Class', 'Cosine'].map((c) => h('th', {scope: 'col'}, c)))),
          h('tbody', {}, list.map((n, i) => h('tr', {dataset: {label: n.label}},
            h('td.num', String(i + 1)),
            h('td.num', String(n.index)),
            h('td', {}, h('span.swatch', {style: `background:${color(n.label)}`}), className(names, n.label)),
            h('td', {}, h('meter', {min: -1, max: 1, value: n.cosine, 'aria-label': `cosine ${n.cosine}`}), ` ${fmt(n.cosine, 4)}`))))));
      const votes = new Map();
      for (const n of list) votes.set(n.label, (votes.get(n.label) || 0) + 1);
      const top = [...votes.entries()].sort((a, b) => b[1] - a[1])[0];
      if (top) add(result, h('p', `Most neighbours are ${className(names, top[0])} (${top[1]} of ${list.length}).`));
    } else {
      add(result, h('div.error', {role: 'alert'}, `Neighbours failed: ${errorText(nb.reason)}`));
    }
  }

  return () => {
    alive = false;
    evals.then((s) => s && s.destroy());
    if (plot) plot.destroy();
    for (const u of urls) URL.revokeObjectURL(u);
  };
}

async function sniff(file) {
  const b = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'image/png';
  if (b[0] === 0xff && b[1] === 0xd8) return 'image/jpeg';
  return null;
}

function versionActions(name, x, onEvaluate) {
  if (!canWrite()) return [];
  const base = `/v1/models/${name}/versions/${x.version}`;
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const ev = h('button.small', {type: 'button', dataset: {action: 'evaluate'}, 'aria-controls': 'eval-slot',
    title: `evaluate ${name} ${x.version}: probes, SVM, NDM, MINE, reconstruction`}, 'Evaluate');
  ev.addEventListener('click', () => onEvaluate(x.version));
  const pin = h('button.small', {type: 'button', dataset: {action: x.pinned ? 'unpin' : 'pin'}}, x.pinned ? 'Unpin' : 'Pin');
  pin.addEventListener('click', async () => {
    pin.disabled = true;
    try {
      await post(`${base}/${x.pinned ? 'unpin' : 'pin'}`);
      reload();
    } catch (e) {
      notify(e);
      pin.disabled = false;
    }
  });
  const out = [ev, pin];
  if (!x.pinned) {
    const d = h('button.small.danger', {type: 'button', dataset: {action: 'delete'}}, 'Delete');
    let armed = 0;
    d.addEventListener('click', async () => {
      if (!armed) {
        d.textContent = 'Confirm delete';
        armed = setTimeout(() => { armed = 0; d.textContent = 'Delete'; }, 4000);
        return;
      }
      clearTimeout(armed);
      d.disabled = true;
      try {
        await del(base);
        notify(`${name} ${x.version} deleted`, 'info');
        location.hash = `#/models/${name}`;
        reload();
      } catch (e) {
        notify(e);
        d.disabled = false;
      }
    });
    out.push(d);
  }
  return out;
}

// A drop zone with a file input inside its label (keyboard and screen readers
// use the input; mice may drop a file anywhere on the zone).
function uploadArea(onFile) {
  const inp = h('input#upload', {type: 'file', accept: 'image/png,image/jpeg'});
  inp.addEventListener('change', () => onFile(inp.files[0]));
  const zone = h('div.dropzone#dropzone', {},
    h('label', {for: 'upload'}, 'Choose a PNG or JPEG image, or drop one here'), inp);
  zone.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    const f = ev.dataTransfer && ev.dataTransfer.files[0];
    if (f) onFile(f);
  });
  return zone;
}
