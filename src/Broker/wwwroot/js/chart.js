// A small time-series line chart on a plain <canvas> (no chart library): one line per series over a sliding window,
// a rounded y scale, grid lines and time labels. `compact` draws a bare sparkline for number tiles. The window grows
// from `minWindowSeconds` to `windowSeconds` as data comes in, so a freshly opened page is not an empty chart.
// `minStep` keeps y ticks whole for counts (1) rather than 0.5 steps.

export class LineChart {
  constructor(canvas, { windowSeconds = 120, minWindowSeconds, compact = false, format = (v) => String(v), minMax = 1, minStep = 0 } = {}) {
    this.canvas = canvas;
    this.windowMs = windowSeconds * 1000;
    this.minWindowMs = Math.min(minWindowSeconds ?? (compact ? 20 : 40), windowSeconds) * 1000;
    this.compact = compact;
    this.format = format;
    this.minMax = minMax;
    this.minStep = minStep;
    this.series = new Map(); // key -> { color, label, points: [{ t, v }] }
    this.points = 0;
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /** Adds a value to a series (created on first use) and redraws. */
  add(key, value, { color = '#2f6fed', label = key, t = Date.now() } = {}) {
    let series = this.series.get(key);
    if (!series) {
      series = { color, label, points: [] };
      this.series.set(key, series);
    }
    series.points.push({ t, v: value });
    this.points++;
    this.canvas.dataset.points = String(this.points); // tests see the chart grow
    this.trim(t);
    this.draw();
  }

  remove(key) {
    this.series.delete(key);
    this.draw();
  }

  trim(now) {
    const oldest = now - this.windowMs - 5000;
    for (const series of this.series.values()) {
      while (series.points.length > 0 && series.points[0].t < oldest) series.points.shift();
    }
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }

    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const pad = this.compact ? { l: 1, r: 1, t: 3, b: 2 } : { l: 52, r: 14, t: 10, b: 24 };
    const plotW = width - pad.l - pad.r;
    const plotH = height - pad.t - pad.b;
    const now = Date.now();
    let oldest = now;
    for (const series of this.series.values()) if (series.points.length > 0) oldest = Math.min(oldest, series.points[0].t);
    // Whole 20 s steps, so the time labels (quarters) stay round.
    const span = Math.min(this.windowMs, Math.max(this.minWindowMs, Math.ceil((now - oldest) / 20_000) * 20_000));
    const start = now - span;

    let observed = this.minMax;
    for (const series of this.series.values()) {
      for (const p of series.points) if (p.t >= start && p.v > observed) observed = p.v;
    }
    // Ticks at a 1-2-5 step; a sparkline keeps some headroom so a flat line does not sit on the top edge.
    const step = Math.max(niceStep(observed / 4), this.minStep);
    const max = Math.ceil((this.compact ? observed * 1.2 : observed) / step) * step;

    const x = (t) => pad.l + ((t - start) / span) * plotW;
    const y = (v) => pad.t + plotH - (v / max) * plotH;

    if (!this.compact) {
      ctx.font = '11px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      ctx.strokeStyle = '#e8ecf3';
      ctx.fillStyle = '#8a94a6';
      ctx.lineWidth = 1;
      for (let v = 0; v <= max + step / 2; v += step) {
        const gy = Math.round(y(v)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(pad.l, gy);
        ctx.lineTo(width - pad.r, gy);
        ctx.stroke();
        ctx.textAlign = 'right';
        ctx.fillText(this.format(v), pad.l - 8, gy);
      }
      ctx.textAlign = 'center';
      ctx.textBaseline = 'top';
      for (let i = 0; i <= 4; i++) {
        const ago = Math.round((span / 1000) * (1 - i / 4));
        ctx.fillText(i === 4 ? 'now' : `−${formatAgo(ago)}`, pad.l + (i / 4) * plotW, height - pad.b + 8);
      }
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(pad.l, 0, plotW, height);
    ctx.clip();
    for (const series of this.series.values()) {
      const points = series.points.filter((p) => p.t >= start - 5000);
      if (points.length === 0) continue;
      ctx.beginPath();
      points.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.t), y(p.v)) : ctx.lineTo(x(p.t), y(p.v))));
      ctx.strokeStyle = series.color;
      ctx.lineWidth = this.compact ? 1.5 : 2;
      ctx.lineJoin = 'round';
      ctx.stroke();
      if (this.series.size === 1 || this.compact) {
        // A soft fill under a single line.
        ctx.lineTo(x(points[points.length - 1].t), y(0));
        ctx.lineTo(x(points[0].t), y(0));
        ctx.closePath();
        ctx.fillStyle = hexToRgba(series.color, 0.12);
        ctx.fill();
      }
      const last = points[points.length - 1];
      if (!this.compact) {
        ctx.beginPath();
        ctx.arc(x(last.t), y(last.v), 3, 0, Math.PI * 2);
        ctx.fillStyle = series.color;
        ctx.fill();
      }
    }
    ctx.restore();
  }
}

/** A half-circle gauge (0..max) with the value in the middle. */
export function drawGauge(canvas, value, { max = 100, label = '', color = '#2f6fed', format = (v) => v.toFixed(0) } = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0 || height === 0) return;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const radius = Math.min(width / 2, height) - 12;
  const cx = width / 2;
  const cy = height - 8;
  const share = Math.max(0, Math.min(1, value / max));
  ctx.lineCap = 'round';
  ctx.lineWidth = 12;
  ctx.strokeStyle = '#e9edf4';
  ctx.beginPath();
  ctx.arc(cx, cy, radius, Math.PI, 2 * Math.PI);
  ctx.stroke();
  ctx.strokeStyle = share > 0.85 ? '#d92d20' : share > 0.6 ? '#c77c02' : color;
  ctx.beginPath();
  ctx.arc(cx, cy, radius, Math.PI, Math.PI + Math.max(share, 0.005) * Math.PI);
  ctx.stroke();
  ctx.fillStyle = '#1d2433';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'alphabetic';
  ctx.font = '600 20px system-ui, sans-serif';
  ctx.fillText(format(value), cx, cy - 14);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#8a94a6';
  ctx.fillText(label, cx, cy);
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const multiple of [1, 2, 5]) {
    if (raw <= multiple * power) return multiple * power;
  }
  return 10 * power;
}

function formatAgo(seconds) {
  return seconds >= 120 && seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`;
}

function hexToRgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}
