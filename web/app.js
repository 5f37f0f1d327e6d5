// The dashboard's entry: the token prompt, the header, and the hash router.
// Each view is a module loaded on first use: render(root, params) -> cleanup.

import {session, saveSession, signOut, whoami, setUnauthorizedHandler, ApiError} from './api.js';
import {add, h, clear, errorText, notify} from './util.js';

const main = document.getElementById('main');
let cleanup = null;
let renderSeq = 0;

const ROUTES = [
  [/^\/jobs\/?$/, 'jobs', () => import('./jobs.js'), () => ({})],
  [/^\/jobs\/(\d+)$/, 'jobs', () => import('./job.js'), (m) => ({id: Number(m[1])})],
  [/^\/sweeps\/?$/, 'sweeps', () => import('./sweeps.js'), () => ({})],
  [/^\/sweeps\/(\d+)$/, 'sweeps', () => import('./sweeps.js'), (m) => ({id: Number(m[1])})],
  [/^\/compare\/?$/, 'compare', () => import('./compare.js'), () => ({})],
  [/^\/models\/?$/, 'models', () => import('./models.js'), () => ({})],
  [/^\/models\/([a-z0-9][a-z0-9_-]{0,62})$/, 'models', () => import('./models.js'), (m) => ({name: m[1]})],
];

export function parseHash(hash = location.hash) {
  const s = hash.replace(/^#/, '') || '/jobs';
  const q = s.indexOf('?');
  const path = q < 0 ? s : s.slice(0, q);
  const search = new URLSearchParams(q < 0 ? '' : s.slice(q + 1));
  return {path, search};
}

function teardown() {
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
    cleanup = null;
  }
}

async function route() {
  const seq = ++renderSeq;
  teardown();
  if (!session()) {
    showSignIn();
    return;
  }
  const {path, search} = parseHash();
  const hit = ROUTES.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll('nav a')) {
    a.toggleAttribute('aria-current', !!hit && a.dataset.nav === hit[1]);
  }
  if (!hit) {
    add(clear(main), h('h1', 'Not found'), h('p', `No page ${path}. `, h('a', {href: '#/jobs'}, 'Jobs')));
    return;
  }
  const [re, , load, params] = hit;
  const root = h('section.view');
  try {
    const mod = await load();
    if (seq !== renderSeq) return;
    add(clear(main), root);
    const p = {...params(re.exec(path)), search};
    const c = await mod.render(root, p);
    if (seq !== renderSeq) {
      if (typeof c === 'function') c();
      return;
    }
    cleanup = typeof c === 'function' ? c : null;
  } catch (e) {
    if (seq !== renderSeq) return;
    if (!(e instanceof ApiError)) console.error(e); // a bug, not an answer of the API
    add(root, h('div.error', {role: 'alert'}, `This page failed: ${errorText(e)}`));
    if (!root.isConnected) add(clear(main), root);
  }
}

function updateHeader() {
  const s = session();
  const who = document.getElementById('who');
  const out = document.getElementById('signout');
  clear(who);
  if (s) {
    who.append('signed in as ', h('strong', s.name || `token ${s.id}`), ` (${s.scope})`);
  }
  out.hidden = !s;
  document.body.dataset.scope = s ? s.scope : 'none';
}

function showSignIn(message) {
  updateHeader();
  const input = h('input#token', {type: 'password', name: 'token', autocomplete: 'off', required: true,
    spellcheck: false, placeholder: 'dimd_…', 'aria-describedby': 'token-help token-error'});
  const err = h('p.field-error#token-error', {role: 'alert'});
  const button = h('button', {type: 'submit'}, 'Sign in');
  const form = h('form.signin#signin', {},
    h('h1', 'Sign in'),
    h('label', {for: 'token'}, 'API token'),
    input,
    h('p.help#token-help', 'A token of this daemon (STATE_DIR/token, or one made with POST /v1/tokens). ',
      'It is kept for this browser tab only.'),
    err,
    button);
  if (message) err.textContent = message;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    err.textContent = '';
    if (!t) {
      err.textContent = 'Enter a token.';
      return;
    }
    button.disabled = true;
    try {
      const me = await whoami(t);
      saveSession({token: t, id: me.id, name: me.name, scope: me.scope});
      updateHeader();
      route();
    } catch (e) {
      err.textContent = e.status === 401 ? `This token is not accepted: ${errorText(e)}` : errorText(e);
      input.focus();
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  add(clear(main), form);
  input.focus();
}

document.getElementById('signout').addEventListener('click', () => {
  teardown();
  signOut();
  showSignIn();
});

setUnauthorizedHandler((err) => {
  teardown();
  signOut();
  showSignIn(`Signed out: the daemon no longer accepts this token (${err.detail}).`);
});

window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (ev) => {
  if (ev.reason && ev.reason.name === 'AbortError') return;
  notify(ev.reason);
});

updateHeader();
route();
