// A 2-D scatter of labelled points on a plain <canvas> (the projection of a
// model's test-set embeddings), with hover read-out and a class legend that
// toggles classes on and off.

import {h, color, className} from './util.js';

export function scatter(parent, {points, names, xLabel = 'PC1', yLabel = 'PC2', height = 420}) {
  const canvas = h('canvas.scatter', {role: 'img', 'aria-label': `${points.length} test images projected on two principal components, coloured by class`});
  const tip = h('div.scatter-tip', {hidden: true});
  const wrap = h('div.scatter-wrap', {}, canvas, tip);
  const hidden = new Set();
  const counts = new Map();
  for (const p of points) counts.set(p[2], (counts.get(p[2]) || 0) + 1);
  const labels = [...counts.keys()].sort((a, b) => a - b);
  const legend = h('ul.legend', {'aria-label': 'classes'}, labels.map((l) => {
    const b = h('button.legend-item', {type: 'button', 'aria-pressed': 'true', dataset: {label: l}},
      h('span.swatch', {style: `background:${color(l)}`}), `${className(names, l)} (${counts.get(l)})`);
    b.addEventListener('click', () => {
      if (hidden.has(l)) hidden.delete(l);
      else hidden.add(l);
      b.setAttribute('aria-pressed', String(!hidden.has(l)));
      draw();
    });
    return h('li', {}, b);
  }));
  parent.append(wrap, legend);

  // Data bounds with a 4% margin.
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
  if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
  const mx = (x1 - x0) * 0.04;
  const my = (y1 - y0) * 0.04;
  x0 -= mx; x1 += mx; y0 -= my; y1 += my;
  const pad = {l: 44, r: 10, t: 10, b: 34};
  let W = 0, H = 0;
  const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    W = Math.max(240, wrap.clientWidth || 480);
    H = height;
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    canvas.style.width = `${W}px`;
    canvas.style.height = `${H}px`;
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = '#fff';
    g.fillRect(0, 0, W, H);
    g.strokeStyle = '#ccc';
    g.strokeRect(pad.l, pad.t, W - pad.l - pad.r, H - pad.t - pad.b);
    g.fillStyle = '#555';
    g.font = '12px system-ui, sans-serif';
    g.textAlign = 'center';
    g.fillText(xLabel, pad.l + (W - pad.l - pad.r) / 2, H - 8);
    g.save();
    g.translate(14, pad.t + (H - pad.t - pad.b) / 2);
    g.rotate(-Math.PI / 2);
    g.fillText(yLabel, 0, 0);
    g.restore();
    g.globalAlpha = 0.75;
    let drawn = 0;
    for (const [x, y, label] of points) {
      if (hidden.has(label)) continue;
      g.fillStyle = color(label);
      g.fillRect(sx(x) - 1.5, sy(y) - 1.5, 3, 3);
      drawn++;
    }
    g.globalAlpha = 1;
    canvas.dataset.points = String(drawn);
  }

  canvas.addEventListener('mousemove', (ev) => {
    const r = canvas.getBoundingClientRect();
    const mx2 = ev.clientX - r.left;
    const my2 = ev.clientY - r.top;
    let best = null;
    let bd = 64; // within 8 px
    for (const p of points) {
      if (hidden.has(p[2])) continue;
      const dx = sx(p[0]) - mx2;
      const dy = sy(p[1]) - my2;
      const d = dx * dx + dy * dy;
      if (d < bd) {
        bd = d;
        best = p;
      }
    }
    if (!best) {
      tip.hidden = true;
      return;
    }
    tip.hidden = false;
    tip.textContent = `${className(names, best[2])} · test image ${best[3]}`;
    tip.style.left = `${Math.min(W - 160, mx2 + 12)}px`;
    tip.style.top = `${my2 + 12}px`;
  });
  canvas.addEventListener('mouseleave', () => { tip.hidden = true; });

  const ro = new ResizeObserver(() => {
    if (Math.abs((wrap.clientWidth || 0) - W) > 1) draw();
  });
  ro.observe(wrap);
  draw();
  return {canvas, destroy: () => ro.disconnect()};
}

// An embedding as a strip of cells, blue (negative) to red (positive),
// scaled by its largest magnitude.
export function embeddingStrip(values, {cell = 0} = {}) {
  const n = values.length;
  const w = Math.max(240, Math.min(720, n * (cell || Math.max(2, Math.floor(720 / n)))));
  const hgt = 28;
  const c = h('canvas.strip', {width: w, height: hgt, role: 'img', 'aria-label': `embedding of ${n} values`});
  const g = c.getContext('2d');
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  m = m || 1;
  for (let i = 0; i < n; i++) {
    const t = values[i] / m; // -1 .. 1
    const a = Math.round(255 * (1 - Math.abs(t)));
    g.fillStyle = t >= 0 ? `rgb(255,${a},${a})` : `rgb(${a},${a},255)`;
    const x0 = Math.floor((i * w) / n);
    const x1 = Math.floor(((i + 1) * w) / n);
    g.fillRect(x0, 0, Math.max(1, x1 - x0), hgt);
  }
  c.dataset.values = String(n);
  return c;
}
