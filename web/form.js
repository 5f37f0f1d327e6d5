// Forms built from GET /v1/job-schema: one input per key with its default,
// bounds and help. Only keys changed from their default are sent; the
// server's 422 errors ($.lr, $.measures[1], ...) are shown next to their
// fields. jobForm is the "New job" form (the schema's `fields`, kind fixed
// to train); schemaForm is the form itself, also used for evaluations
// (`evaluate_fields`, with kind, model and version fixed).

import {get, post} from './api.js';
import {h, errorText} from './util.js';

function newKey() {
  return window.crypto && crypto.randomUUID ? crypto.randomUUID()
    : `k-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

const isChoices = (f) => f.type === 'array' && Array.isArray(f.enum);

function input(f, id, datasets) {
  const described = `${id}-help ${id}-err`;
  const common = {id, name: f.name, 'aria-describedby': described};
  if (isChoices(f)) { // a list from a closed set: one checkbox per value
    const def = new Set(Array.isArray(f.default) ? f.default : []);
    return h('div.choices', {...common, role: 'group', 'aria-labelledby': `${id}-label`},
      f.enum.map((v) => h('label', {}, h('input', {type: 'checkbox', name: f.name, value: String(v),
        checked: def.has(v)}), ` ${v}`)));
  }
  if (f.type === 'boolean') {
    return h('input', {...common, type: 'checkbox', checked: f.default === true});
  }
  if (Array.isArray(f.enum)) {
    const sel = h('select', common);
    if (f.default == null) sel.append(h('option', {value: ''}, '(default)'));
    for (const v of f.enum) sel.append(h('option', {value: String(v), selected: v === f.default}, String(v)));
    return sel;
  }
  if (f.type === 'integer' || f.type === 'number') {
    return h('input', {...common, type: 'number', inputmode: f.type === 'integer' ? 'numeric' : 'decimal',
      step: f.type === 'integer' ? '1' : 'any', min: f.minimum, max: f.maximum,
      value: f.default == null ? '' : String(f.default), placeholder: f.default == null ? '(default)' : null});
  }
  const list = f.name === 'dataset' && datasets.length ? `${id}-list` : null;
  const el = h('input', {...common, type: 'text', list, autocomplete: 'off',
    value: f.default == null ? '' : String(f.default), placeholder: f.default == null || f.default === '' ? '(default)' : null});
  if (list) return [el, h('datalist', {id: list}, datasets.map((d) => h('option', {value: d.name}, d.kind)))];
  return el;
}

function bounds(f) {
  if (f.minimum == null && f.maximum == null) return '';
  return ` [${f.minimum ?? '…'}, ${f.maximum ?? '…'}]`;
}

// Read one field: {value} to send, {} to leave out, {error} for bad input.
function read(f, el) {
  if (isChoices(f)) { // none ticked is sent as []: the server says why that is wrong
    const v = [...el.querySelectorAll('input:checked')].map((c) => c.value);
    const def = Array.isArray(f.default) ? f.default.map(String) : null;
    return def && v.length === def.length && v.every((x) => def.includes(x)) ? {} : {value: v};
  }
  if (f.type === 'boolean') return el.checked === (f.default === true) ? {} : {value: el.checked};
  const raw = el.value.trim();
  if (raw === '') return {};
  let v = raw;
  if (f.type === 'integer' || f.type === 'number' || (Array.isArray(f.enum) && typeof f.enum[0] === 'number')) {
    if (el.validity && el.validity.badInput) return {error: 'not a number'};
    v = Number(raw);
    if (!Number.isFinite(v)) return {error: 'not a number'};
  }
  if (f.default != null && v === f.default) return {};
  return {value: v};
}

const focusable = (el) => (el.matches('input, select') ? el : el.querySelector('input, select') || el);

// The "New job" form: the schema's `fields`, and the datasets as suggestions.
export async function jobForm(parent, {onSubmitted, onCancel} = {}) {
  const [schema, ds] = await Promise.all([get('/v1/job-schema'), get('/v1/datasets').catch(() => ({datasets: []}))]);
  return schemaForm(parent, {fields: schema.fields, fixed: {kind: 'train'}, datasets: ds.datasets || [],
    onSubmitted, onCancel});
}

// A form of schema fields that POSTs /v1/jobs; onSubmitted(job) after a
// 201/200. opts: fixed ({key: value} sent always, their fields not shown),
// id and prefix (the form's id and its inputs' id prefix), title, intro,
// submitLabel, datasets (suggestions for a `dataset` field); for other uses of
// the fields (the sweep form: web/sweeps.js): extra (a node shown above the
// fields), submitTo(body, headers) (instead of POST /v1/jobs; may throw an
// Error with a message to show), errorField(path) (the field a 422 error's
// path names, default its first key).
export function schemaForm(parent, {fields, fixed = {}, id = 'job-form', prefix = 'f-', title = 'New job',
  intro = 'Every key of the job JSON (GET /v1/job-schema). Keys left at their default are not sent.',
  submitLabel = 'Submit job', datasets = [], onSubmitted, onCancel, extra = null,
  submitTo = (body, headers) => post('/v1/jobs', body, {headers}),
  errorField = (path) => String(path || '').replace(/^\$\.?/, '').split(/[.[]/)[0]} = {}) {
  fields = fields.filter((f) => !(f.name in fixed));
  const els = {};
  const errs = {};
  const grid = h('div.form-grid');
  for (const f of fields) {
    const fid = `${prefix}${f.name}`;
    const control = input(f, fid, datasets);
    els[f.name] = Array.isArray(control) ? control[0] : control;
    errs[f.name] = h('p.field-error', {id: `${fid}-err`});
    const def = f.default == null ? 'no default' : `default ${isChoices(f) ? f.default.join(', ') : JSON.stringify(f.default)}`;
    grid.append(h(`div.field${isChoices(f) ? '.wide' : ''}`, {dataset: {field: f.name}},
      isChoices(f) ? h('span.label', {id: `${fid}-label`}, f.name) : h('label', {for: fid}, f.name),
      control,
      h('p.help', {id: `${fid}-help`}, `${f.help}${bounds(f)}; ${def}`),
      errs[f.name]));
  }
  const formErr = h('div.form-error', {role: 'alert'});
  const submit = h('button', {type: 'submit'}, submitLabel);
  const cancel = h('button', {type: 'button'}, 'Close');
  cancel.addEventListener('click', () => onCancel && onCancel());
  const form = h(`form.job-form#${id}`, {novalidate: true, 'aria-label': title},
    h('h2', title),
    intro ? h('p.muted', intro) : null,
    formErr, extra, grid,
    h('div.buttons', {}, submit, cancel));
  let idemKey = newKey();
  let lastBody = null;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formErr.textContent = '';
    for (const e of Object.values(errs)) e.textContent = '';
    for (const el of Object.values(els)) el.removeAttribute('aria-invalid');
    const body = {...fixed};
    let bad = null;
    for (const f of fields) {
      const r = read(f, els[f.name]);
      if (r.error) {
        errs[f.name].textContent = r.error;
        els[f.name].setAttribute('aria-invalid', 'true');
        bad = bad || els[f.name];
      } else if ('value' in r) {
        body[f.name] = r.value;
      }
    }
    if (bad) {
      formErr.textContent = 'Fix the fields marked below.';
      focusable(bad).focus();
      return;
    }
    const text = JSON.stringify(body);
    if (text !== lastBody) idemKey = newKey(); // same body again: a retry, replayed by the server
    lastBody = text;
    submit.disabled = true;
    submit.textContent = 'Submitting…';
    try {
      const job = await submitTo(body, {'Idempotency-Key': idemKey});
      idemKey = newKey();
      lastBody = null;
      if (onSubmitted) onSubmitted(job);
    } catch (e) {
      let first = null;
      const other = [];
      for (const fe of e.errors || []) {
        const name = errorField(fe.path);
        if (errs[name]) {
          errs[name].textContent = (errs[name].textContent ? `${errs[name].textContent}; ` : '') + fe.message;
          els[name].setAttribute('aria-invalid', 'true');
          first = first || els[name];
        } else {
          other.push(fe.path && fe.path !== '$' ? `${fe.path}: ${fe.message}` : fe.message);
        }
      }
      formErr.textContent = e.errors && e.errors.length
        ? `${errorText(e)}${other.length ? ': ' + other.join('; ') : ''}`
        : errorText(e);
      if (first) focusable(first).focus();
    } finally {
      submit.disabled = false;
      submit.textContent = submitLabel;
    }
  });
  parent.append(form);
  const first = els.name || Object.values(els)[0];
  if (first) focusable(first).focus();
  return form;
}
