// Job control buttons (cancel, pause, resume, delete, promote) and the promote
// form. Rendered only for write tokens.

import {post, del, canWrite, get} from './api.js';
import {h, notify, TERMINAL} from './util.js';

// Buttons for what the job's state allows. onChange(job | null) gets the job
// the server answered (null once deleted).
export function jobActions(job, onChange, {promote = true} = {}) {
  if (!canWrite()) return [];
  const id = job.id;
  const act = (label, verb, title) => {
    const b = h('button.small', {type: 'button', dataset: {action: verb}, title: `${title} job ${id}`}, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const j = await post(`/v1/jobs/${id}/${verb}`);
        onChange(j);
      } catch (e) {
        notify(e);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };
  const out = [];
  const s = job.state;
  if (s === 'QUEUED' || s === 'RUNNING') out.push(act('Pause', 'pause', 'pause'));
  if (s === 'PAUSED') out.push(act('Resume', 'resume', 'resume'));
  if (!TERMINAL.has(s)) out.push(act('Cancel', 'cancel', 'cancel'));
  if (TERMINAL.has(s)) out.push(deleteButton(id, onChange));
  if (promote && job.checkpoint_step != null) {
    const b = h('button.small', {type: 'button', dataset: {action: 'promote'}, title: `promote job ${id} to a model`}, 'Promote');
    b.addEventListener('click', () => promoteDialog(job));
    out.push(b);
  }
  return out;
}

// Two clicks: "Delete", then "Confirm delete" within 4 s.
function deleteButton(id, onChange) {
  const b = h('button.small.danger', {type: 'button', dataset: {action: 'delete'}, title: `delete job ${id}`}, 'Delete');
  let armed = 0;
  b.addEventListener('click', async () => {
    if (!armed) {
      b.textContent = 'Confirm delete';
      armed = setTimeout(() => {
        armed = 0;
        b.textContent = 'Delete';
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = 0;
    b.disabled = true;
    try {
      await del(`/v1/jobs/${id}`);
      notify(`job ${id} deleted`, 'info');
      onChange(null);
    } catch (e) {
      notify(e);
      b.disabled = false;
      b.textContent = 'Delete';
    }
  });
  return b;
}

// A name of the model form: lower-case letters, digits, '_' and '-'.
export function modelNameFor(job) {
  const base = String(job.name || `job-${job.id}`).toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^[-_]+/, '');
  return (base || `job-${job.id}`).slice(0, 63);
}

// The promote form: model name and which checkpoint. Errors of the 422 go
// next to their field ($.name, $.checkpoint; others above the buttons).
export function promoteForm(job, {onDone} = {}) {
  const id = `promote-${job.id}`;
  const name = h('input', {id: `${id}-name`, name: 'name', required: true, value: modelNameFor(job),
    pattern: '[a-z0-9][a-z0-9_\\-]{0,62}', 'aria-describedby': `${id}-name-err`});
  const ckpt = h('select', {id: `${id}-checkpoint`, name: 'checkpoint', 'aria-describedby': `${id}-checkpoint-err`},
    h('option', {value: 'latest'}, 'latest'), h('option', {value: 'best'}, 'best'));
  const pinned = h('input', {id: `${id}-pinned`, type: 'checkbox', name: 'pinned'});
  const errs = {
    name: h('p.field-error', {id: `${id}-name-err`}),
    checkpoint: h('p.field-error', {id: `${id}-checkpoint-err`}),
    form: h('p.field-error', {role: 'alert'}),
  };
  get(`/v1/jobs/${job.id}/checkpoints`).then((r) => {
    for (const c of r.checkpoints) ckpt.append(h('option', {value: String(c.step)}, `step ${c.step}`));
  }).catch((e) => {
    errs.checkpoint.textContent = `cannot list checkpoints: ${e.detail || e.message}`;
  });
  const submit = h('button', {type: 'submit'}, 'Promote');
  const form = h('form.promote', {novalidate: true, dataset: {job: job.id}},
    h('div.field', {}, h('label', {for: name.id}, 'Model name'), name, errs.name),
    h('div.field', {}, h('label', {for: ckpt.id}, 'Checkpoint'), ckpt, errs.checkpoint),
    h('div.field.check', {}, h('label', {for: pinned.id}, pinned, ' pinned')),
    errs.form,
    h('div.buttons', {}, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const e of Object.values(errs)) e.textContent = '';
    const c = ckpt.value;
    const body = {name: name.value.trim(), job_id: job.id, checkpoint: /^\d+$/.test(c) ? Number(c) : c};
    if (pinned.checked) body.pinned = true;
    submit.disabled = true;
    submit.textContent = 'Promoting…';
    try {
      const v = await post('/v1/models', body);
      notify(`${v.name} ${v.version} created from job ${job.id} step ${v.step}`, 'info');
      if (onDone) onDone(v);
      location.hash = `#/models/${v.name}`;
    } catch (e) {
      let placed = false;
      for (const fe of e.errors) {
        const key = String(fe.path || '').replace(/^\$\.?/, '');
        const slot = errs[key] || errs.form;
        slot.textContent = (slot.textContent ? `${slot.textContent}; ` : '') + fe.message;
        placed = true;
      }
      if (!placed) errs.form.textContent = e.detail || e.message;
    } finally {
      submit.disabled = false;
      submit.textContent = 'Promote';
    }
  });
  return form;
}

export function promoteDialog(job) {
  const dlg = h('dialog.promote-dialog', {'aria-label': `Promote job ${job.id}`});
  const close = h('button.close', {type: 'button', 'aria-label': 'close'}, '×');
  close.addEventListener('click', () => dlg.close());
  dlg.append(close, h('h2', `Promote job ${job.id} to a model`), promoteForm(job, {onDone: () => dlg.close()}));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}
