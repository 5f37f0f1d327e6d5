#!/usr/bin/env node
// The dashboard in a real browser: Debian's headless Chromium driven by
// playwright-core (web/node_modules), against a real `dimd serve` on loopback.
//
//   node tests/browser/run.mjs PATH_TO_DIMD OUT_DIR
//
// Prints "ok - NAME" or "not ok - NAME: REASON" per test and ends with
// "N passed, M failed"; exits 1 when a test failed or none ran. Screenshots,
// page-weight.json and the daemon's log go to OUT_DIR.

import {spawn} from 'node:child_process';
import {createRequire} from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import {fileURLToPath} from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB = path.resolve(HERE, '../../web');
const CHROMIUM = process.env.DIMD_CHROMIUM || '/usr/bin/chromium';
const SCALE = Number(process.env.DIMD_TEST_TIMEOUT_SCALE || 1); // slow machines: 2, 3, ...

const [dimdArg, outArg] = process.argv.slice(2);
if (!dimdArg || !outArg) {
  console.error('usage: node tests/browser/run.mjs PATH_TO_DIMD OUT_DIR');
  process.exit(2);
}
const DIMD = path.resolve(dimdArg);
const OUT = path.resolve(outArg);
fs.mkdirSync(OUT, {recursive: true});
for (const f of fs.readdirSync(OUT)) if (/\.(png|json|log)$/.test(f)) fs.rmSync(path.join(OUT, f));

// ---------------------------------------------------------------- helpers

class Failure extends Error {}

function check(cond, message) {
  if (!cond) throw new Failure(message);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs, everyMs = 200) {
  const end = Date.now() + timeoutMs * SCALE;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Failure(`timed out after ${Math.round((timeoutMs * SCALE) / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

// A grey-scale PNG (8 bits per pixel) written with zlib; pix(x, y) -> 0..255.
function png(w, hgt, pix) {
  const table = new Uint32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = table[(c ^ b) & 255] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(hgt, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  const raw = Buffer.alloc((w + 1) * hgt);
  for (let y = 0; y < hgt; y++) for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = pix(x, y);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// ---------------------------------------------------------------- the daemon

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dimd-browser-'));
let daemon = null;
let browser = null;
let base = null;
let writeToken = null;

function startDaemon() {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(path.join(OUT, 'daemon.log'), 'w');
    daemon = spawn(DIMD, ['serve', '--state_dir', path.join(work, 'state'), '--port', '0',
      '--index_max_images', '2000'], {cwd: work, stdio: ['ignore', 'pipe', log]});
    let out = '';
    let url = null;
    let tokenFile = null;
    const timer = setTimeout(() => reject(new Error(`dimd serve printed no "listening on" and "token file" lines in 30 s; stdout: ${out.slice(0, 400)}`)), 30000 * SCALE);
    daemon.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${DIMD}: ${e.message}`));
    });
    daemon.on('exit', (code, sig) => {
      clearTimeout(timer);
      if (!url || !tokenFile) reject(new Error(`dimd serve exited (${code ?? sig}) before listening; see ${path.join(OUT, 'daemon.log')}`));
    });
    daemon.stdout.on('data', (d) => {
      out += d;
      fs.appendFileSync(path.join(OUT, 'daemon.log'), d);
      let m = /^dimd: listening on (http:\/\/\S+)$/m.exec(out);
      if (m) url = m[1].replace(/\/$/, '');
      m = /^dimd: token file (.+)$/m.exec(out);
      if (m) tokenFile = m[1].trim();
      if (url && tokenFile) {
        clearTimeout(timer);
        const lines = fs.readFileSync(tokenFile, 'utf8').split('\n').filter(Boolean);
        if (lines.length !== 1) reject(new Error(`token file ${tokenFile}: expected one line`));
        resolve({url, token: lines[0]});
      }
    });
  });
}

async function api(method, p, body, token = writeToken) {
  const headers = {Authorization: `Bearer ${token}`};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(base + p, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) throw new Failure(`${method} ${p}: ${res.status} ${text.slice(0, 300)}`);
  return data;
}

async function stopAll() {
  if (browser) {
    await browser.close().catch(() => {});
    browser = null;
  }
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    const gone = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    const t = setTimeout(() => daemon.kill('SIGKILL'), 10000);
    await gone;
    clearTimeout(t);
  }
  fs.rmSync(work, {recursive: true, force: true});
}

// Last resorts: never leave a daemon behind, never hang.
process.on('exit', () => {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
});
setTimeout(() => {
  console.log(`not ok - the suite: still running after ${300 * SCALE} s`);
  console.log(`${results.filter(Boolean).length} passed, ${results.filter((r) => !r).length + 1} failed`);
  process.exit(1);
}, 300000 * SCALE).unref();

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    await stopAll();
    process.exit(1);
  });
}

// ---------------------------------------------------------------- the tests

const results = [];

async function test(name, fn, timeoutMs = 60000) {
  const t0 = Date.now();
  let timer;
  try {
    await Promise.race([fn(), new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Failure(`the test took more than ${Math.round((timeoutMs * SCALE) / 1000)} s`)), timeoutMs * SCALE);
    })]);
    results.push(true);
    console.log(`ok - ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push(false);
    const reason = (e && e.message ? e.message : String(e)).split('\n')[0];
    console.log(`not ok - ${name}: ${reason}`);
    if (!(e instanceof Failure) && e && e.stack) console.log(e.stack.split('\n').slice(1, 4).map((l) => `#${l}`).join('\n'));
    if (lastPage) await lastPage.screenshot({path: path.join(OUT, `failed-${results.length}.png`), fullPage: true}).catch(() => {});
  } finally {
    clearTimeout(timer);
  }
}

let lastPage = null;
const pageErrors = [];

async function newPage(context, label) {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (401|404|422|409)/.test(m.text())) pageErrors.push(`${label} console: ${m.text()}`);
  });
  lastPage = page;
  return page;
}

async function signIn(page, token) {
  await page.goto(`${base}/`);
  await page.locator('#token').fill(token);
  await page.locator('#signin button[type=submit]').click();
  await page.locator('#jobs-table').waitFor({timeout: 15000 * SCALE});
}

const points = (page, key, sel = '#charts') => page.evaluate(([s, k]) => {
  const f = document.querySelector(`${s} figure[data-key="${k}"]`);
  return f ? Number(f.dataset.points) : -1;
}, [sel, key]);

async function main() {
  const t0 = Date.now();
  const require = createRequire(path.join(WEB, 'package.json'));
  let chromium;
  try {
    ({chromium} = require('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not installed in web/node_modules (run npm ci in web/): ${e.message}`);
  }
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install chromium)`);

  ({url: base, token: writeToken} = await startDaemon());
  const readToken = (await api('POST', '/v1/tokens', {name: 'browser-read', scope: 'read'})).token;
  // A short job for the compare and model tests; it trains while the first tests run.
  const shortJob = await api('POST', '/v1/jobs', {name: 'browser-short', steps: 100, batch: 8, mi_dim: 16,
    y_dim: 16, probe: 'none', checkpoint_every: 50});
  browser = await chromium.launch({executablePath: CHROMIUM, headless: true});
  const ctx = await browser.newContext({viewport: {width: 1280, height: 900}});
  const page = await newPage(ctx, 'write');

  // Static files of the dashboard by path with their body sizes; the first
  // load is everything up to the jobs table after signing in.
  const files = new Map();
  const apiBytes = {n: 0, bytes: 0};
  page.on('response', async (res) => {
    const u = new URL(res.url());
    if (!/^https?:$/.test(u.protocol) || u.origin !== base) return; // not blob: URLs
    let len = 0, wire = 0;
    try {
      len = (await res.body()).length;
      wire = (await res.request().sizes()).responseBodySize;
    } catch {
      return; // a stream (events) or a navigation away
    }
    if (u.pathname.startsWith('/v1/')) {
      apiBytes.n++;
      apiBytes.bytes += len;
    } else if (!files.has(u.pathname)) {
      const h = res.headers();
      files.set(u.pathname, {bytes: len, wire, status: res.status(), type: h['content-type'] || '',
                             encoding: h['content-encoding'] || ''});
    }
  });
  let firstLoad = null;
  let formJob = null;
  let evalJob = null;

  await test('the token prompt refuses a wrong token and accepts the right one', async () => {
    await page.goto(`${base}/`);
    await page.locator('#token').waitFor();
    check(await page.locator('#jobs-table').count() === 0, 'the jobs table shows before signing in');
    await page.locator('#token').fill(`dimd_${'0'.repeat(48)}`);
    await page.locator('#signin button[type=submit]').click();
    const err = page.locator('#token-error');
    await until('an error for the wrong token', async () => /not accepted/i.test(await err.textContent()), 10000);
    check(await page.locator('#jobs-table').count() === 0, 'a wrong token opened the jobs table');
    check(await page.evaluate(() => sessionStorage.length) === 0, 'a wrong token was kept');
    await page.locator('#token').fill(writeToken);
    await page.locator('#signin button[type=submit]').click();
    await page.locator('#jobs-table').waitFor({timeout: 10000 * SCALE});
    await page.waitForLoadState('networkidle');
    await until('the short job in the table', () => page.locator(`tr[data-job="${shortJob.id}"]`).count(), 10000);
    firstLoad = new Map(files);
    // the browser asked for gzip and got it, for every text file of the page
    for (const [p, f] of firstLoad) {
      if (!/^(text\/|image\/svg)/.test(f.type)) continue;
      check(f.status === 200 && f.encoding === 'gzip', `${p}: status ${f.status}, Content-Encoding "${f.encoding}"`);
      check(f.wire > 0 && f.wire < f.bytes, `${p}: ${f.wire} bytes on the wire for ${f.bytes}`);
    }
    const who = await page.locator('#who').textContent();
    check(/write/.test(who), `the header says "${who}", not the write scope`);
    check(await page.evaluate(() => !!sessionStorage.getItem('dimd.session')), 'the token is not in sessionStorage');
    check(await page.locator('#new-job').isVisible(), 'no "New job" button for a write token');
  });

  await test('a validation error from the server appears next to its field', async () => {
    await page.locator('#new-job').click();
    await page.locator('#job-form').waitFor();
    // every key of the schema but kind (fixed: it is the training form)
    const fields = await page.locator('#job-form .field').count();
    const schema = await api('GET', '/v1/job-schema');
    const shown = schema.fields.filter((f) => f.name !== 'kind').length;
    check(fields === shown && shown === schema.fields.length - 1,
      `the form has ${fields} fields, the schema ${schema.fields.length} with kind`);
    check(await page.locator('#f-kind').count() === 0, 'a kind field in the training form');
    await page.locator('#f-lr').fill('-1');
    await page.locator('#f-batch').fill('0');
    await page.locator('#job-form button[type=submit]').click();
    const lrErr = page.locator('.field[data-field="lr"] .field-error');
    await until('an error by the lr field', async () => (await lrErr.textContent()).length > 0, 10000);
    const lrText = await lrErr.textContent();
    check(/lr/.test(lrText) && /range|must|between/i.test(lrText), `the lr error says "${lrText}"`);
    check(await lrErr.isVisible(), 'the lr error is not visible');
    check(await page.locator('#f-lr').getAttribute('aria-invalid') === 'true', 'the lr input is not marked invalid');
    const batchText = await page.locator('.field[data-field="batch"] .field-error').textContent();
    check(/batch/.test(batchText), `the batch error says "${batchText}"`);
    const stepsText = await page.locator('.field[data-field="steps"] .field-error').textContent();
    check(stepsText === '', `a valid field has an error: "${stepsText}"`);
    check(/invalid/i.test(await page.locator('#job-form .form-error').textContent()), 'no summary above the form');
    const jobs = await api('GET', '/v1/jobs');
    check(jobs.jobs.length === 1, `an invalid form made a job (${jobs.jobs.length} jobs)`);
    await page.locator('#f-lr').scrollIntoViewIfNeeded();
    await page.screenshot({path: path.join(OUT, 'submit-form-error.png')});
  });

  await test('a job submitted from the form shows its loss curve growing live', async () => {
    await page.locator('#f-lr').fill('0.0001');
    await page.locator('#f-batch').fill('8');
    await page.locator('#f-name').fill('browser-form');
    await page.locator('#f-steps').fill('20000');
    await page.locator('#f-mi_dim').fill('16');
    await page.locator('#f-y_dim').fill('16');
    await page.locator('#f-checkpoint_every').fill('100');
    await page.locator('#f-probe').selectOption('none');
    // the lr schedule: a select of its names, number inputs for its steps and factors
    check(await page.locator('select#f-lr_schedule').count() === 1, 'lr_schedule is not a select');
    const choices = await page.locator('#f-lr_schedule option').allTextContents();
    check(choices.join(',') === 'constant,cosine,step', `lr_schedule offers ${choices.join(', ')}`);
    for (const k of ['lr_warmup', 'lr_final', 'lr_step_factor', 'lr_horizon']) {
      check(await page.locator(`#f-${k}`).getAttribute('type') === 'number', `${k} is not a number input`);
    }
    await page.locator('#f-lr_schedule').selectOption('cosine');
    await page.locator('#f-lr_warmup').fill('50');
    const historyRequests = [];
    const eventRequests = [];
    const onRequest = (r) => {
      if (/\/metrics\/loss_total\?/.test(r.url())) historyRequests.push(r.url());
      if (/\/events\?/.test(r.url())) eventRequests.push(new URL(r.url()));
    };
    page.on('request', onRequest);
    await page.locator('#job-form button[type=submit]').click();
    await until('the job page', () => /^#\/jobs\/\d+$/.test(new URL(page.url()).hash), 10000);
    const id = Number(new URL(page.url()).hash.split('/')[2]);
    formJob = await api('GET', `/v1/jobs/${id}`);
    check(formJob.name === 'browser-form' && formJob.spec.steps === 20000 && formJob.spec.batch === 8 &&
      formJob.spec.probe === 'none' && formJob.spec.lr === 0.0001 && formJob.spec.lr_schedule === 'cosine' &&
      formJob.spec.lr_warmup === 50 && formJob.spec.lr_horizon === 0 && formJob.spec.lr_final === 0.01,
    `the job's spec is not the form's: ${JSON.stringify(formJob.spec)}`);
    // The short job runs first (one worker): wait for this one's first points.
    const n1 = await until('the first points of loss_total', async () => {
      const n = await points(page, 'loss_total');
      return n > 0 ? n : 0;
    }, 60000);
    const fetched = historyRequests.length;
    const n2 = await until('the loss_total curve to gain points', async () => {
      const n = await points(page, 'loss_total');
      return n >= n1 + 20 ? n : 0;
    }, 30000);
    check(historyRequests.length === fetched, `the page fetched the history again (${historyRequests.length - fetched} more requests) instead of following the events`);
    check(eventRequests.length >= 1 && eventRequests[0].pathname === `/v1/jobs/${id}/events`, 'the page opened no events stream');
    const from = eventRequests[0].searchParams.get('last_event_id');
    check(from === null || Number(from) <= formJob.last_event_id + 5, `the events stream starts at ${from}`);
    const state = await api('GET', `/v1/jobs/${id}`);
    check(state.state === 'RUNNING', `the job is ${state.state}`);
    // Every loss term of the model has a chart.
    for (const k of ['loss_total', 'loss_local', 'loss_prior_enc', 'loss_prior_disc']) {
      check(await points(page, k) > 0, `no ${k} chart with points`);
    }
    // the lr the steps took: a chart rising through the warm-up, and the stat that names the schedule
    check(await points(page, 'lr') > 0, 'no lr chart with points');
    const lrs = await api('GET', `/v1/jobs/${id}/metrics/lr`);
    const v = lrs.points.map((p) => p[1]);
    check(v.length > 2 && v[0] < v[v.length - 1] && Math.abs(v[0] - 0.0001 / 50) < 1e-9,
      `the lr points do not start a warm-up at lr/50: ${JSON.stringify(v.slice(0, 3))}`);
    const lrChart = await page.evaluate(() => {
      const f = document.querySelector('#charts figure[data-key="lr"]');
      const ticks = f && f.dataset.yticks ? f.dataset.yticks.split(' ') : [];
      return {legend: f ? f.querySelector('.u-legend').textContent : '', ticks};
    });
    check(!/smoothed/.test(lrChart.legend), `the lr chart is smoothed: "${lrChart.legend}"`);
    check(new Set(lrChart.ticks).size > 1, `the lr chart's y ticks read ${JSON.stringify(lrChart.ticks)}`);
    const lrStat = await page.locator('#lr-now').textContent();
    check(/cosine, warm-up 50, to ×0\.01 by the end/.test(lrStat), `the LR stat says "${lrStat}"`);
    page.off('request', onRequest);
    console.log(`# loss_total: ${n1} points, then ${n2} from the events stream`);
    await page.screenshot({path: path.join(OUT, 'job-page.png'), fullPage: true});
  }, 100000);

  await test('zooming a chart fetches that step range at full resolution', async () => {
    check(formJob, 'no job from the form');
    await until('60 points of loss_total', async () => (await points(page, 'loss_total')) >= 60, 30000);
    const zoomRequest = page.waitForRequest((r) => /\/metrics\/loss_total\?.*to_step=\d+/.test(r.url()), {timeout: 15000 * SCALE});
    const over = page.locator('#charts figure[data-key="loss_total"] .u-over');
    const box = await over.boundingBox();
    check(box, 'no plot area');
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2, {steps: 5});
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height / 2, {steps: 5});
    await page.mouse.up();
    const req = await zoomRequest;
    const q = new URL(req.url()).searchParams;
    const lo = Number(q.get('after_step')) + 1;
    const hi = Number(q.get('to_step'));
    check(hi > lo, `the zoom asked for steps ${lo} to ${hi}`);
    check(Number(q.get('max_points')) >= 100, `max_points ${q.get('max_points')} is below the chart's width`);
    const fig = page.locator('#charts figure[data-key="loss_total"]');
    await until('the zoomed range drawn', async () => (await fig.getAttribute('data-zoom')) === `${lo}-${hi}`, 10000);
    await over.dblclick({position: {x: box.width / 2, y: box.height / 2}});
    await until('the zoom reset', async () => (await fig.getAttribute('data-zoom')) === null, 10000);
  });

  await test('smoothing and log y redraw the curves', async () => {
    const legend = () => page.locator('#charts figure[data-key="loss_total"] .u-legend').textContent();
    check(/smoothed/.test(await legend()), 'no smoothed series at the default smoothing');
    await page.locator('#smoothing').fill('0');
    await until('the raw curve only', async () => !/smoothed/.test(await legend()), 5000);
    await page.locator('#logy').check();
    await until('a log y axis', () => page.evaluate(() => {
      const f = document.querySelector('#charts figure[data-key="loss_total"]');
      return f && f.querySelector('.u-over') && Number(f.dataset.points) > 0;
    }), 5000);
    const before = await points(page, 'loss_total');
    await until('points after the rebuild', async () => (await points(page, 'loss_total')) > before, 20000);
    await page.locator('#logy').uncheck();
    await page.locator('#smoothing').fill('0.6');
    await until('the smoothed curve back', async () => /smoothed/.test(await legend()), 5000);
  });

  await test('cancelling the job in the table shows CANCELLED', async () => {
    check(formJob, 'no job from the form');
    await page.evaluate(() => { location.hash = '#/jobs'; });
    const row = page.locator(`#jobs-table tr[data-job="${formJob.id}"]`);
    await row.waitFor();
    const state = await row.locator('[data-col="state"]').textContent();
    check(/RUNNING/.test(state), `the row says ${state}`);
    // The row shows the job's latest values (the job's "latest" object).
    await until('the latest loss in the row', async () => Number.isFinite(Number(await row.locator('[data-col="loss"]').textContent())), 5000);
    const frac = Number(await row.locator('[data-col="progress"] progress').getAttribute('value'));
    check(frac > 0 && frac < 1, `the progress bar is at ${frac}`);
    await row.locator('button[data-action="cancel"]').click();
    await until('CANCELLED in the row', async () => /CANCELLED/.test(await page.locator(`#jobs-table tr[data-job="${formJob.id}"] [data-col="state"]`).textContent()), 10000);
    const j = await api('GET', `/v1/jobs/${formJob.id}`);
    check(j.state === 'CANCELLED', `the server says ${j.state}`);
    check(await page.locator(`#jobs-table tr[data-job="${formJob.id}"] button[data-action="cancel"]`).count() === 0,
      'a cancelled job still has a Cancel button');
    await page.screenshot({path: path.join(OUT, 'jobs.png')});
  });

  await test('compare overlays one metric of two jobs', async () => {
    check(formJob, 'no job from the form');
    await until('the short job to finish', async () => (await api('GET', `/v1/jobs/${shortJob.id}`)).state === 'SUCCEEDED', 60000, 500);
    await page.evaluate(() => { location.hash = '#/compare'; });
    await page.locator('.compare-picker').waitFor();
    await page.locator(`#cmp-${shortJob.id}`).check();
    await page.locator(`#cmp-${formJob.id}`).check();
    await page.locator('#cmp-key').selectOption('loss_total');
    await page.locator('.compare-picker button[type=submit]').click();
    const fig = page.locator('#compare-chart figure');
    await fig.waitFor();
    await until('both curves drawn', async () => {
      const s = (await fig.getAttribute('data-series')) || '';
      const n = s.split(',').map(Number);
      return n.length === 2 && n[0] > 0 && n[1] > 0;
    }, 15000);
    const hash = new URL(page.url()).hash;
    check(/jobs=\d+,\d+/.test(hash) && /key=loss_total/.test(hash), `the compare URL is ${hash}`);
    const legend = await fig.locator('.u-legend').textContent();
    check(legend.includes(`#${shortJob.id}`) && legend.includes(`#${formJob.id}`), `the legend is "${legend}"`);
    const [a, b] = (await fig.getAttribute('data-series')).split(',').map(Number);
    check(a === 100 || b === 100, `the short job's 100 steps are not all drawn (${a}, ${b})`);
    await page.screenshot({path: path.join(OUT, 'compare.png')});
  });

  await test('a promoted model shows its projection and the neighbours of an uploaded image', async () => {
    await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, shortJob.id);
    const form = page.locator('form.promote');
    await form.waitFor();
    await form.locator('input[name="name"]').fill('browser-fm');
    await form.locator('button[type=submit]').click();
    await until('the model page', () => new URL(page.url()).hash === '#/models/browser-fm', 60000);
    const canvas = page.locator('#projection canvas.scatter');
    await canvas.waitFor({timeout: 60000 * SCALE});
    const drawn = Number(await canvas.getAttribute('data-points'));
    const proj = await api('GET', '/v1/models/browser-fm/versions/latest/projection');
    check(drawn === proj.points.length && drawn > 100, `the scatter drew ${drawn} of ${proj.points.length} points`);
    const coloured = await canvas.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 40) n++;
      return n;
    });
    check(coloured > 500, `only ${coloured} coloured pixels on the projection`);
    const legend = await page.locator('#projection .legend').textContent();
    check(/Ankle boot/.test(legend) && /T-shirt\/top/.test(legend), `the legend has no Fashion-MNIST class names: ${legend}`);
    const file = path.join(work, 'boot.png');
    fs.writeFileSync(file, png(28, 28, (x, y) => ((y > 14 && y < 24 && x > 3 && x < 25) || (y > 6 && y <= 14 && x > 14 && x < 25) ? 220 : 0)));
    await page.locator('#upload').setInputFiles(file);
    const rows = page.locator('#neighbors tbody tr');
    await until('8 neighbours', async () => (await rows.count()) === 8, 30000);
    const classes = await rows.locator('td:nth-child(3)').allTextContents();
    const names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
    check(classes.every((c) => names.includes(c.trim())), `neighbour classes: ${classes.join(', ')}`);
    const cos = (await rows.locator('td:nth-child(4)').allTextContents()).map((t) => Number(t.trim()));
    check(cos.every((c, i) => c <= 1 && c >= -1 && (i === 0 || c <= cos[i - 1] + 1e-9)), `cosines not sorted: ${cos}`);
    const strip = Number(await page.locator('#encode-result canvas.strip').getAttribute('data-values'));
    check(strip === 16, `the embedding strip has ${strip} values, y_dim is 16`);
    await page.screenshot({path: path.join(OUT, 'model.png'), fullPage: true});
  }, 120000);

  // The tiny budget of the evaluation tests: the linear probe and the SVM are
  // solved to convergence on four rows each (conv, fc, Y, pixels), which takes
  // tens of seconds on two busy cores even with few images.
  const TINY = {max_train: 200, max_test: 100, probe_epochs: 2, ndm_steps: 40,
    mine_steps: 40, recon_epochs: 2, grid_pairs: 4};
  const MEASURES = ['linear', 'svm', 'ndm', 'mine', 'recon']; // all but mlp: the form sends a list
  const ROWS = ['conv', 'fc', 'y', 'pixels']; // the taps, then the raw pixels (the baseline)
  const FIGURES = [...['linear', 'svm'].flatMap((m) => ROWS.map((t) => `${m}.${t}`)), 'ndm', 'ndm_sigmoid',
    'mine', 'ssim', 'ms_ssim', 'recon_mse'];
  const figures = (card) => card.locator('[data-fig]').evaluateAll((els) =>
    Object.fromEntries(els.map((el) => [el.dataset.fig, el.textContent.trim()])));

  await test('an evaluation submitted from the model page shows its figures and grid image', async () => {
    if (new URL(page.url()).hash !== '#/models/browser-fm') await page.evaluate(() => { location.hash = '#/models/browser-fm'; });
    await page.locator('table.versions tr[data-version="v1"] button[data-action="evaluate"]').click();
    const form = page.locator('#eval-form');
    await form.waitFor({timeout: 10000 * SCALE});
    // The form is GET /v1/job-schema's evaluate_fields, kind, model and version fixed.
    const schema = await api('GET', '/v1/job-schema');
    const shown = schema.evaluate_fields.filter((f) => !['kind', 'model', 'version'].includes(f.name));
    const fields = await form.locator('.field').evaluateAll((els) => els.map((el) => el.dataset.field));
    check(JSON.stringify(fields) === JSON.stringify(shown.map((f) => f.name)), `the form's fields are ${fields}`);
    const mField = shown.find((f) => f.name === 'measures');
    const boxes = form.locator('.field[data-field="measures"] input[type=checkbox]');
    check(await boxes.count() === mField.enum.length, `${await boxes.count()} measure checkboxes for ${mField.enum.length} measures`);
    check((await boxes.evaluateAll((b) => b.filter((x) => x.checked).length)) === mField.default.length, 'the default measures are not all ticked');
    check(!fields.includes('svm_seeds') && !fields.includes('svm_epochs'), 'the form still has SVM seeds or epochs');
    const epochs = shown.find((f) => f.name === 'probe_epochs');
    const pe = page.locator('#ev-probe_epochs');
    check(await pe.inputValue() === String(epochs.default) && await pe.getAttribute('min') === String(epochs.minimum) &&
      await pe.getAttribute('max') === String(epochs.maximum), 'probe_epochs has not the schema\'s default and bounds');
    check(await page.locator('#ev-max_train').inputValue() === '0', 'max_train is not 0 (all training images) by default');
    // The server's 422: next to probe_epochs and measures, nothing made.
    const jobsBefore = (await api('GET', '/v1/jobs')).jobs.length;
    await pe.fill('0');
    for (const b of await boxes.all()) await b.uncheck();
    await form.locator('button[type=submit]').click();
    const epochsErr = form.locator('.field[data-field="probe_epochs"] .field-error');
    await until('an error by the probe_epochs field', async () => (await epochsErr.textContent()).length > 0, 10000);
    const epochsText = await epochsErr.textContent();
    check(/range/.test(epochsText) && await epochsErr.isVisible(), `the probe_epochs error says "${epochsText}"`);
    check(await pe.getAttribute('aria-invalid') === 'true', 'probe_epochs is not marked invalid');
    const mText = await form.locator('.field[data-field="measures"] .field-error').textContent();
    check(/non-empty|measure/.test(mText), `the measures error says "${mText}"`);
    check(await form.locator('.field[data-field="ndm_steps"] .field-error').textContent() === '', 'a valid field has an error');
    check((await api('GET', '/v1/jobs')).jobs.length === jobsBefore, 'an invalid evaluation made a job');
    await page.screenshot({path: path.join(OUT, 'evaluate-form-error.png')});
    // The tiny budget, every measure but mlp.
    for (const [k, v] of Object.entries(TINY)) await page.locator(`#ev-${k}`).fill(String(v));
    for (const m of MEASURES) await form.locator(`.field[data-field="measures"] input[value="${m}"]`).check();
    const polls = [];
    const onRequest = (r) => { if (/\/v1\/jobs\/\d+$/.test(new URL(r.url()).pathname)) polls.push(Date.now()); };
    page.on('request', onRequest);
    await form.locator('button[type=submit]').click();
    const link = page.locator('#eval-submitted a');
    await link.waitFor({timeout: 10000 * SCALE});
    const t0 = Date.now();
    const id = Number((await link.getAttribute('href')).split('/').pop());
    evalJob = await api('GET', `/v1/jobs/${id}`);
    const sp = evalJob.spec;
    check(sp.kind === 'evaluate' && sp.model === 'browser-fm' && sp.version === 'v1' &&
      JSON.stringify(sp.measures) === JSON.stringify(MEASURES) &&
      Object.entries(TINY).every(([k, v]) => sp[k] === v), `the job's spec is not the form's: ${JSON.stringify(sp)}`);
    check(await page.locator(`details.eval-version[data-version="v1"][open] li[data-eval-job="${id}"] progress`).count() === 1,
      'the submitted evaluation is not listed under v1 with a progress bar');
    // Its job page (another tab) follows it live until the results show.
    const jp = await newPage(ctx, 'eval-job');
    lastPage = page;
    try {
      await signIn(jp, writeToken);
      await jp.evaluate((i) => { location.hash = `#/jobs/${i}`; }, id);
      await jp.locator('#eval-results').waitFor();
      const early = (await jp.locator('.job-head .state').textContent()).trim();
      // The version's block lists it as running, then shows its evaluation.
      const block = page.locator('details.eval-version[data-version="v1"]');
      const card = block.locator(`article.evaluation[data-job="${id}"]`);
      await card.waitFor({timeout: 240000 * SCALE});
      const took = Date.now() - t0;
      page.off('request', onRequest);
      check(await block.locator(`li[data-eval-job="${id}"]`).count() === 0, 'the finished job is still listed as running');
      check(polls.length <= Math.ceil(took / 2000) + 1, `${polls.length} GET /v1/jobs/ID in ${took} ms: polling too often`);
      console.log(`# evaluation job ${id} done in ${(took / 1000).toFixed(1)} s (${polls.length} polls); its page opened at ${early}`);
      const ev = (await api('GET', '/v1/models/browser-fm/versions/v1/evaluations')).evaluations.find((e) => e.job_id === id);
      check(ev, 'the API has no evaluation of the job');
      const figs = await figures(card);
      const bad = FIGURES.filter((k) => !(k in figs) || figs[k] === 'n/a' || !/\d/.test(figs[k]));
      check(!bad.length, `figures missing or n/a: ${bad.map((k) => `${k}=${figs[k]}`).join(', ')}`);
      check(!Object.keys(figs).some((k) => k.startsWith('mlp.')), 'MLP figures for a measure not selected');
      check(Math.abs(parseFloat(figs['linear.y']) - ev.results.linear.y * 100) < 0.051, `linear Y ${figs['linear.y']}, the API ${ev.results.linear.y}`);
      check(Math.abs(parseFloat(figs.mine) - ev.results.mine) < 1e-3 * Math.max(1, Math.abs(ev.results.mine)), `MINE ${figs.mine}, the API ${ev.results.mine}`);
      for (const m of ['linear', 'svm']) {
        for (const t of ROWS) {
          const shownPct = parseFloat(figs[`${m}.${t}`]);
          check(Math.abs(shownPct - ev.results[m][t] * 100) < 0.051 && shownPct >= 0 && shownPct <= 100,
            `${m} ${t} ${figs[`${m}.${t}`]}, the API ${ev.results[m][t]}`);
        }
      }
      check(!/±/.test(figs['svm.y']), `the SVM figure has a spread: ${figs['svm.y']}`);
      // The converged solves: lambda and iterations in each cell's tooltip and one line per classifier.
      const tip = await card.locator('[data-fig="linear.pixels"]').getAttribute('title');
      const fp = ev.results.linear.fit.pixels;
      check(tip && tip.includes(`${fp.iterations} iterations`) && tip.includes(fp.stop) && /λ \d/.test(tip),
        `the linear pixels tooltip says "${tip}" for ${JSON.stringify(fp)}`);
      const fitLine = (await card.locator('.eval-fit li[data-fit="linear"]').textContent()).trim();
      const its = ROWS.map((t) => ev.results.linear.fit[t].iterations).join(' · ');
      check(fitLine.startsWith('linear λ ') && fitLine.includes(`iterations ${its}`), `the linear fit line says "${fitLine}", iterations ${its}`);
      check(await card.locator('.eval-fit li[data-fit="svm"]').count() === 1, 'no fit line for the SVM');
      check(await card.locator('table.eval-acc thead th').evaluateAll((ths) => ths.map((t) => t.textContent).join(',')) ===
        'classifier,conv,fc,Y,pixels', 'the classifier table\'s columns are not conv, fc, Y, pixels');
      const head = await card.locator('header').textContent();
      check(head.includes(`${ev.results.n_train} train / ${ev.results.n_test} test`) && head.includes(MEASURES.join(', ')),
        `the evaluation's header is "${head}"`);
      check(/seconds: .*ndm \d.*total \d/.test(await card.locator('.eval-seconds').textContent()), 'no seconds per measure');
      const img = card.locator('.eval-grid img');
      check(/access_token=/.test(await img.getAttribute('src')), 'the grid image has no access_token');
      await img.scrollIntoViewIfNeeded();
      await until('the grid image loaded', () => img.evaluate((i) => i.complete && i.naturalWidth > 0), 10000);
      await page.locator('#evaluations').screenshot({path: path.join(OUT, 'model-evaluations.png')});
      // The job page followed it to the end: progress full, the same figures, no charts.
      const jr = jp.locator(`#eval-results article.evaluation[data-job="${id}"]`);
      await jr.waitFor({timeout: 15000 * SCALE});
      check(await jp.locator('.stats progress').getAttribute('value') === '1', 'the job page\'s progress is not full');
      check(JSON.stringify(await figures(jr)) === JSON.stringify(figs), 'the job page shows other figures');
      check(await jp.locator('figure.chart-card').count() === 0, 'the evaluation\'s page has charts');
    } finally {
      await jp.close();
    }
  }, 300000);

  await test('an evaluation job in the jobs table and on its page', async () => {
    check(evalJob, 'no evaluation job');
    const id = evalJob.id;
    await page.evaluate(() => { location.hash = '#/jobs'; });
    const row = page.locator(`#jobs-table tr[data-job="${id}"]`);
    await row.waitFor({timeout: 10000 * SCALE});
    const kind = (await row.locator('[data-col="kind"]').textContent()).replace(/\s+/g, ' ').trim();
    check(kind === 'evaluate browser-fm v1', `the row's kind says "${kind}"`);
    check(await row.locator('[data-col="kind"] a').getAttribute('href') === '#/models/browser-fm?version=v1', 'no link to the version');
    check(await row.locator('[data-col="progress"] progress').getAttribute('value') === '1', 'the progress bar is not full');
    const result = await row.locator('[data-col="result"]').textContent();
    check(/^linear Y \d+(\.\d)?%$/.test(result.trim()), `the row's result says "${result}"`);
    check(await row.locator('[data-col="loss"]').count() === 0, 'an evaluation with a loss cell');
    await row.locator(`a[href="#/jobs/${id}"]`).first().click();
    await page.locator(`#eval-results article.evaluation[data-job="${id}"]`).waitFor({timeout: 10000 * SCALE});
    check(await page.locator('figure.chart-card, #charts').count() === 0, 'the page has charts');
    const spec = await page.locator('#spec').textContent();
    check(/kind\s*"evaluate"/.test(spec) && /probe_epochs\s*2/.test(spec) && /max_train\s*200/.test(spec) && !/svm_seeds/.test(spec),
      `the spec shown is "${spec.slice(0, 200)}"`);
    await page.locator('#eval-version').click();
    await until('the version\'s model page', () => new URL(page.url()).hash === '#/models/browser-fm?version=v1', 5000);
    await page.locator(`details.eval-version[data-version="v1"][open] article.evaluation[data-job="${id}"]`).waitFor({timeout: 10000 * SCALE});
  });

  await test('a failed measure shows n/a and the failure', async () => {
    // No budget makes a measure diverge on purpose: render an Evaluation of the
    // API's shape whose MINE failed with the page's own module.
    const out = await page.evaluate(async () => {
      const {evaluationCard} = await import('/ui/evaluations.js');
      const card = evaluationCard({id: 9, job_id: null, created_at: new Date().toISOString(), links: {grid: null},
        results: {measures: ['linear', 'mine', 'recon'], n_train: 10, n_test: 5,
          linear: {conv: 0.5, fc: null, y: 0.25, pixels: 0.4, fit: {conv: null, fc: null, y: null,
            pixels: {lambda: 0.01, val_accuracy: 0.5, iterations: 7, path_iterations: 30, gnorm: 0.002, stop: 'iteration cap', seconds: 0.1}}},
          mine: null, ssim: 0.5, ms_ssim: null, ms_ssim_scales: 1, recon_mse: 0.01, failed: ['mine'],
          failure: 'mine: the DV estimate is not finite at step 7', seconds: {features: 1, linear: 0.5, mine: null, recon: 2}}});
      const fig = (k) => (card.querySelector(`[data-fig="${k}"]`) || {}).textContent;
      return {mine: fig('mine'), fc: fig('linear.fc'), y: fig('linear.y'), px: fig('linear.pixels'), msssim: fig('ms_ssim'), ndm: fig('ndm'),
        fit: (card.querySelector('.eval-fit') || {}).textContent,
        failed: (card.querySelector('.eval-failed') || {}).textContent, grid: !!card.querySelector('img'),
        head: card.querySelector('header').textContent, seconds: card.querySelector('.eval-seconds').textContent};
    });
    check(out.mine === 'n/a' && out.fc === 'n/a' && out.msssim === 'n/a', `null figures are not n/a: ${JSON.stringify(out)}`);
    check(out.y === '25.0%' && out.px === '40.0%' && out.ndm === undefined && !out.grid, `figures: ${JSON.stringify(out)}`);
    // a solve that hit its cap is named; rows without a fit are n/a
    check(/linear λ n\/a · n\/a · n\/a · 1e−2, iterations n\/a · n\/a · n\/a · 7 \(pixels: iteration cap\)/.test(out.fit),
      `the fit line says "${out.fit}"`);
    // An evaluation stored before the converged SVM: svm {mean, std}, no pixel row.
    const old = await page.evaluate(async () => {
      const {evaluationCard} = await import('/ui/evaluations.js');
      const card = evaluationCard({id: 3, job_id: 2, created_at: new Date().toISOString(), links: {grid: null},
        results: {measures: ['svm'], n_train: 10, n_test: 5, failed: [], failure: null, seconds: {svm: 1},
          svm: {mean: {conv: 0.5, fc: 0.25, y: 0.125}, std: {conv: 0.01, fc: 0.02, y: 0.03}}}});
      const fig = (k) => (card.querySelector(`[data-fig="${k}"]`) || {}).textContent;
      return {conv: fig('svm.conv'), y: fig('svm.y'), px: fig('svm.pixels'), fit: !!card.querySelector('.eval-fit')};
    });
    check(old.conv === '50.0%' && old.y === '12.5%' && old.px === 'n/a' && !old.fit, `an old SVM result shows ${JSON.stringify(old)}`);
    check(/failed: mine/.test(out.failed) && /not finite at step 7/.test(out.failed), `the failure says "${out.failed}"`);
    check(/deleted job/.test(out.head) && /mine n\/a/.test(out.seconds), `header "${out.head}", seconds "${out.seconds}"`);
  });

  await test('a probing job\'s probe charts have the pixel probe as a dashed baseline', async () => {
    // Submitted now: the worker is free. 10 steps, probed at its one checkpoint.
    const job = await api('POST', '/v1/jobs', {name: 'browser-probe', steps: 10, batch: 8, mi_dim: 16, y_dim: 16,
      probe: 'linear', probe_images: 100, checkpoint_every: 10});
    await until('the probing job to finish', async () => (await api('GET', `/v1/jobs/${job.id}`)).state === 'SUCCEEDED', 180000, 1000);
    const done = await api('GET', `/v1/jobs/${job.id}`);
    const px = done.latest.probe_pixels;
    check(px >= 0 && px <= 1, `probe_pixels ${px}`);
    await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, job.id);
    const fig = page.locator('#charts figure[data-key="probe_y"]');
    await fig.waitFor({timeout: 15000 * SCALE});
    await until('the probe_y chart with its baseline', async () => (await fig.getAttribute('data-series')) === '1,1', 15000);
    for (const k of ['probe_conv', 'probe_fc']) {
      check(await page.locator(`#charts figure[data-key="${k}"]`).getAttribute('data-series') === '1,1', `${k} has no baseline`);
    }
    check(await page.locator('#charts figure[data-key="probe_pixels"]').count() === 0, 'probe_pixels has a chart of its own');
    const legend = await fig.locator('.u-legend').textContent();
    check(legend.includes('pixels (baseline)'), `the probe_y legend is "${legend}"`);
    const stat = await page.locator('#probe-y').textContent();
    check(stat.includes(`(pixels ${(px * 100).toFixed(1)}%)`), `the stats say "${stat}" for probe_pixels ${px}`);
  }, 240000);

  await test('a sweep: leaderboard, trials\' curves overlaid with the stopped ones cut, scatter, form', async () => {
    const sw = await api('POST', '/v1/sweeps', {name: 'browser-sweep',
      base: {batch: 8, mi_dim: 16, y_dim: 16, probe: 'none'}, space: {lr: [0.0001, 0.001, 0.01, 0.5]},
      algorithm: 'asha', metric: 'loss_total', budget: {steps: 12}, asha: {min_resource: 3, reduction_factor: 3}});
    await until('the sweep to finish', async () => (await api('GET', `/v1/sweeps/${sw.id}`)).state === 'SUCCEEDED', 180000, 1000);
    const board = await api('GET', `/v1/sweeps/${sw.id}/leaderboard`);
    const nStopped = board.trials.filter((t) => t.state === 'STOPPED').length;
    check(nStopped >= 1, `ASHA stopped no trial: ${JSON.stringify(board.counts)}`);
    await page.evaluate((id) => { location.hash = `#/sweeps/${id}`; }, sw.id);
    await page.locator('#sweep-board tbody tr').first().waitFor({timeout: 15000 * SCALE});
    const rows = await page.locator('#sweep-board tbody tr').evaluateAll((trs) => trs.map((r) => [r.dataset.trial, r.dataset.state]));
    check(JSON.stringify(rows) === JSON.stringify(board.trials.map((t) => [String(t.trial), t.state])),
      `the leaderboard rows ${JSON.stringify(rows)} are not the API's order`);
    check((await page.locator('#sweep-best').textContent()).includes(`trial ${board.best.trial}`), 'the best trial is not shown');
    const fig = page.locator('#sweep-chart figure');
    await until('the overlaid curves', async () => {
      const n = await fig.getAttribute('data-series').catch(() => null);
      return n && n.split(',').length === 4 && n.split(',').every((c) => Number(c) > 0);
    }, 15000);
    // each curve has as many points as its trial's steps: the stopped ones end at their rung
    const counts = (await fig.getAttribute('data-series')).split(',').map(Number);
    const steps = board.trials.map((t) => t.step);
    check(JSON.stringify(counts) === JSON.stringify(steps), `curves of ${counts} points for trials at steps ${steps}`);
    const legend = await fig.locator('.u-legend').textContent();
    check((legend.match(/stopped, step 3/g) || []).length === board.trials.filter((t) => t.state === 'STOPPED' && t.step === 3).length,
      `the legend "${legend}" does not mark the stopped trials`);
    check(await page.locator('#sweep-scatter').getAttribute('data-points') === '4', 'the scatter does not have 4 points');
    check(await page.locator('#sweep-actions button[data-action="promote"]').count() === 1, 'no promote button');
    await page.screenshot({path: path.join(OUT, 'sweep.png'), fullPage: true});
    // the form: a bad base field is shown at its field, then a grid of 2 starts
    await page.evaluate(() => { location.hash = '#/sweeps'; });
    await page.locator(`#sweeps-table tr[data-sweep="${sw.id}"]`).waitFor({timeout: 10000 * SCALE});
    await page.locator('#new-sweep').click();
    await page.locator('#sweep-form').waitFor();
    await page.locator('#sw-f-batch').fill('0');
    await page.locator('#sw-f-mi_dim').fill('16');
    await page.locator('#sw-f-y_dim').fill('16');
    await page.locator('#sw-f-probe').selectOption('none');
    await page.locator('#sw-algorithm').selectOption('grid');
    await page.locator('.space-values').first().fill('0.001, 0.002');
    await page.locator('#sw-steps').fill('4');
    await page.locator('#sweep-form button[type=submit]').click();
    await until('the batch error at its field', async () => (await page.locator('#sw-f-batch-err').textContent()).length > 0, 10000);
    await page.locator('#sw-f-batch').fill('8');
    await page.locator('#sw-f-name').fill('browser-form-sweep');
    await page.locator('#sweep-form button[type=submit]').click();
    await until('the new sweep\'s page', async () => /#\/sweeps\/\d+$/.test(await page.evaluate(() => location.hash)), 10000);
    const nid = Number((await page.evaluate(() => location.hash)).split('/').pop());
    const made = await api('GET', `/v1/sweeps/${nid}`);
    check(made.name === 'browser-form-sweep' && made.spec.algorithm === 'grid' && made.spec.trials === 2 &&
      made.spec.base.batch === 8 && made.spec.base.probe === 'none' && JSON.stringify(made.spec.space.lr.values) === '[0.001,0.002]' &&
      made.spec.budget.steps === 4, `the form made ${JSON.stringify(made.spec)}`);
    await api('POST', `/v1/sweeps/${nid}/cancel`);
  }, 240000);

  await test('a read-only token sees no write buttons', async () => {
    const rctx = await browser.newContext({viewport: {width: 1280, height: 900}});
    const rp = await newPage(rctx, 'read');
    try {
      await signIn(rp, readToken);
      check(/read/.test(await rp.locator('#who').textContent()), 'the header does not say read');
      await until('the jobs listed', async () => (await rp.locator('#jobs-table tbody tr').count()) >= 2, 10000);
      const writeButtons = 'button[data-action], #new-job, #new-sweep, form.promote, #job-form, #eval-form, #sweep-form';
      check(await rp.locator(writeButtons).count() === 0, 'the jobs table has write buttons');
      await rp.evaluate((id) => { location.hash = `#/jobs/${id}`; }, shortJob.id);
      await until('the job page', async () => (await points(rp, 'loss_total')) > 0, 15000);
      check(await rp.locator(writeButtons).count() === 0, 'the job page has write buttons');
      check(await rp.locator('#charts figure .csv').count() > 0, 'no CSV links for a reader');
      const models = await api('GET', '/v1/models');
      if (models.models.some((m) => m.name === 'browser-fm')) {
        await rp.evaluate(() => { location.hash = '#/models/browser-fm'; });
        await rp.locator('table.versions').waitFor();
        check(await rp.locator(writeButtons).count() === 0, 'the model page has write buttons');
        check(await rp.locator('button[data-action="evaluate"]').count() === 0, 'a reader has an Evaluate button');
        check(await rp.locator('#upload').count() === 1, 'a reader cannot encode (read scope)');
        if (evalJob) { // a reader sees the evaluations, the grid image with the read token
          const img = rp.locator(`article.evaluation[data-job="${evalJob.id}"] .eval-grid img`);
          await img.waitFor({timeout: 10000 * SCALE});
          await until('the grid image for a reader', () => img.evaluate((i) => i.complete && i.naturalWidth > 0), 10000);
          await rp.evaluate((id) => { location.hash = `#/jobs/${id}`; }, evalJob.id);
          await rp.locator('#eval-results article.evaluation').waitFor({timeout: 10000 * SCALE});
          check(await rp.locator(writeButtons).count() === 0, 'the evaluation\'s page has write buttons');
        }
      }
    } finally {
      await rctx.close();
      lastPage = page;
    }
  });

  await test('API errors are shown, not swallowed', async () => {
    await page.evaluate(() => { location.hash = '#/jobs/999999'; });
    const err = page.locator('main .error');
    await err.waitFor({timeout: 10000 * SCALE});
    check(/no job 999999/.test(await err.textContent()), `the error says "${await err.textContent()}"`);
    await page.evaluate(() => { location.hash = '#/models/no-such-model'; });
    await until('the model error', async () => /no-such-model/.test((await page.locator('main .error').textContent().catch(() => '')) || ''), 10000);
  });

  await test('sign out forgets the token', async () => {
    await page.evaluate(() => { location.hash = '#/jobs'; });
    await page.locator('#jobs-table').waitFor();
    await page.locator('#signout').click();
    await page.locator('#token').waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('dimd.session')) === null, 'the session is still stored');
    await page.reload();
    await page.locator('#token').waitFor();
    check(await page.locator('#jobs-table').count() === 0, 'the jobs table shows after signing out');
  });

  await test('no script errors in the pages', async () => {
    check(pageErrors.length === 0, pageErrors.slice(0, 3).join(' | '));
  });

  // Page weight: the static files of the first load (sign-in page, then the
  // jobs table), and every static file the session loaded.
  const sum = (m, k = 'bytes') => [...m.values()].reduce((a, f) => a + f[k], 0);
  const perFile = (m) => Object.fromEntries([...m].map(([p, f]) => [p, {bytes: f.bytes, wire: f.wire}]));
  const weight = {
    first_load_bytes: firstLoad ? sum(firstLoad) : null,
    first_load_wire_bytes: firstLoad ? sum(firstLoad, 'wire') : null,
    first_load_files: firstLoad ? perFile(firstLoad) : null,
    all_views_bytes: sum(files),
    all_views_wire_bytes: sum(files, 'wire'),
    all_views_files: perFile(files),
    api_responses: apiBytes.n,
    note: 'bytes: decoded response bodies of / and /ui/*; wire: as sent (gzip); first load: the sign-in page, then the jobs table; all views: after the job, compare and model pages',
  };
  fs.writeFileSync(path.join(OUT, 'page-weight.json'), `${JSON.stringify(weight, null, 2)}\n`);
  console.log(`# page weight: first load ${weight.first_load_bytes} bytes, ${weight.first_load_wire_bytes} on the wire (${firstLoad ? firstLoad.size : 0} files); all views ${weight.all_views_bytes} bytes, ${weight.all_views_wire_bytes} on the wire (${files.size} files)`);
  console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots and page-weight.json in ${OUT}`);
}

let code = 0;
try {
  await main();
} catch (e) {
  results.push(false);
  console.log(`not ok - setup: ${e.message}`);
} finally {
  await stopAll();
}
const passed = results.filter(Boolean).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
code = failed || !results.length ? 1 : 0;
process.exit(code);
