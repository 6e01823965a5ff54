// Small SVG charts for the dashboard: no library, no network. Every chart marks its <svg> with
// data-chart (its name), data-points (data points drawn) and data-total (sum of the values),
// so that a test reading the DOM can tell a chart with data from an empty one.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, value, anchor) {
    const t = el("text", { x, y, "text-anchor": anchor || "start" }, parent);
    t.textContent = value;
    return t;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "-";
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + "k";
    return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }

  function hhmm(ms) {
    const d = new Date(ms);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  function frame(container, name, width, height, points, total) {
    container.replaceChildren();
    const svg = el("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": name,
      "data-chart": name, "data-points": points, "data-total": total,
    }, container);
    return svg;
  }

  function empty(container, name, message) {
    const div = document.createElement("div");
    div.className = "empty";
    div.dataset.chart = name;
    div.dataset.points = "0";
    div.dataset.total = "0";
    div.textContent = message || "no data yet";
    container.replaceChildren(div);
  }

  // Vertical bars: items [{label, value, color}]; opts.width / opts.height: the drawing size
  function bars(container, name, items, opts) {
    const total = items.reduce((s, i) => s + i.value, 0);
    if (!items.length) return empty(container, name);
    const W = (opts && opts.width) || 640, H = (opts && opts.height) || 210;
    const L = 44, R = 10, T = 18, B = 34;
    const svg = frame(container, name, W, H, items.length, total);
    const max = niceMax(Math.max(...items.map((i) => i.value)));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    for (const f of [0, 0.5, 1]) {
      el("line", { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: "axis" }, svg);
      text(svg, L - 6, y(max * f) + 4, fmt(max * f), "end");
    }
    const slot = (W - L - R) / items.length;
    items.forEach((item, k) => {
      const x = L + k * slot + slot * 0.15, w = slot * 0.7;
      el("rect", {
        x, y: y(item.value), width: w, height: Math.max(0, y(0) - y(item.value)),
        fill: item.color || "#3b6fd8", "data-label": item.label, "data-value": item.value,
      }, svg);
      text(svg, x + w / 2, y(item.value) - 4, fmt(item.value), "middle");
      text(svg, x + w / 2, H - B + 16, item.label, "middle");
    });
  }

  // Horizontal bars, one row per item: for long labels (lag per partition)
  function rows(container, name, items) {
    const total = items.reduce((s, i) => s + i.value, 0);
    if (!items.length) return empty(container, name);
    const W = 640, row = 14, T = 4, L = 230, R = 110;
    const H = T * 2 + row * items.length;
    const svg = frame(container, name, W, H, items.length, total);
    const max = niceMax(Math.max(1, ...items.map((i) => i.value)));
    items.forEach((item, k) => {
      const y = T + k * row;
      text(svg, L - 6, y + 11, item.label, "end");
      el("line", { x1: L, x2: W - R, y1: y + row - 1, y2: y + row - 1, class: "axis" }, svg);
      el("rect", {
        x: L, y: y + 3, height: row - 5, width: ((W - L - R) * item.value) / max,
        fill: item.color || "#3b6fd8", "data-label": item.label, "data-value": item.value,
      }, svg);
      text(svg, W - R + 6, y + 11, fmt(item.value) + (item.note || ""));
    });
  }

  // Lines over time: series [{name, color, points: [[ms, value], ...]}]; with opts.stepMs the
  // missing steps between opts.from and opts.to count as zero (for counts); with opts.gapMs
  // (for measurements such as latency) the line breaks where points are further apart.
  function lines(container, name, series, opts) {
    const real = series.reduce((s, x) => s + x.points.length, 0);
    const total = series.reduce((s, x) => s + x.points.reduce((a, p) => a + p[1], 0), 0);
    if (!real) return empty(container, name);
    const W = 640, H = 210, L = 44, R = 10, T = 24, B = 26;
    const svg = frame(container, name, W, H, real, Math.round(total * 1000) / 1000);
    const from = opts.from, to = opts.to;
    const drawn = series.map((s) => {
      if (!opts.stepMs) return s.points;
      const byT = new Map(s.points.map((p) => [p[0], p[1]]));
      const out = [];
      for (let t = Math.floor(from / opts.stepMs) * opts.stepMs; t <= to; t += opts.stepMs) {
        out.push([t, byT.get(t) || 0]);
      }
      return out;
    });
    const max = niceMax(Math.max(...drawn.flat().map((p) => p[1])));
    const x = (t) => L + ((W - L - R) * (t - from)) / Math.max(1, to - from);
    const y = (v) => T + (H - T - B) * (1 - v / max);
    for (const f of [0, 0.5, 1]) {
      el("line", { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: "axis" }, svg);
      text(svg, L - 6, y(max * f) + 4, fmt(max * f), "end");
    }
    for (const f of [0, 0.5, 1]) {
      text(svg, x(from + (to - from) * f), H - 8, hhmm(from + (to - from) * f),
        f === 0 ? "start" : f === 1 ? "end" : "middle");
    }
    series.forEach((s, k) => {
      const segments = [[]];
      drawn[k].forEach((p, i, all) => {
        if (i && opts.gapMs && p[0] - all[i - 1][0] > opts.gapMs) segments.push([]);
        segments[segments.length - 1].push(p);
      });
      for (const pts of segments.filter((seg) => seg.length > 1)) {
        el("polyline", {
          points: pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "),
          fill: "none", stroke: s.color, "stroke-width": 2, "data-series": s.name,
        }, svg);
      }
      for (const p of s.points) {
        el("circle", { cx: x(p[0]), cy: y(p[1]), r: 3, fill: s.color, "data-value": p[1] }, svg);
      }
      const lx = L + 8 + k * 150;
      el("rect", { x: lx, y: 6, width: 10, height: 10, fill: s.color }, svg);
      text(svg, lx + 14, 15, s.name);
    });
  }

  return { bars, rows, lines, empty, fmt };
})();
