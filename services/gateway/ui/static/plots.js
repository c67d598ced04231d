// Inline SVG plots built in the DOM (createElementNS, text through textContent): the greedy score
// against the bounds across prompts, one prompt's empirical CDF with its band, a histogram.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
// Distinguishable for the common forms of colour blindness (as in the static report).
const COLOURS = { blue: "#1f77b4", orange: "#e66100", red: "#b2182b", grey: "#888888" };

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function svgRoot(w, h, cls, title) {
  const svg = svgEl("svg", { class: cls, role: "img", viewBox: `0 0 ${w} ${h}`, width: w, height: h });
  svg.append(svgEl("title", {}, title));
  return svg;
}

function yAxis(svg, px0, px1, py, ticks) {
  for (const t of ticks) {
    svg.append(svgEl("line", { x1: px0, y1: py(t), x2: px1, y2: py(t), stroke: "#eee" }));
    svg.append(svgEl("text", { x: px0 - 4, y: py(t) + 4, "text-anchor": "end", class: "a" }, t));
  }
  svg.append(svgEl("line", { x1: px0, y1: py(0), x2: px1, y2: py(0), stroke: "#333" }));
  svg.append(svgEl("line", { x1: px0, y1: py(0), x2: px0, y2: py(1), stroke: "#333" }));
}

const Plots = {
  // cells: promptCells() of each prompt, in the order to draw; onPick(id) on a click.
  overview(cells, width, onPick) {
    const h = 300;
    const pad = 44;
    const w = Math.max(480, width);
    const step = (w - 2 * pad) / Math.max(1, cells.length);
    const px = (i) => pad + (i + 0.5) * step;
    const clamp = (y) => Math.max(0, Math.min(1, y));
    const py = (y) => h - pad - clamp(y) * (h - 2 * pad - 16);
    const svg = svgRoot(w, h, "overview", "Greedy score against the bounds, per prompt");
    svg.id = "overview-svg";
    yAxis(svg, pad, w - pad, py, [0, 0.25, 0.5, 0.75, 1]);
    const mark = Math.max(1.5, Math.min(5, step / 3));
    cells.forEach((c, i) => {
      const x = px(i);
      const g = svgEl("g", { class: "prompt", "data-id": c.id });
      g.append(svgEl("title", {}, `${c.id}: greedy ${Ui.fmt(c.greedy)}, mean ${Ui.fmt(c.mean)}, ` +
        `E[X] in [${Ui.fmt(c.mu_lower)}, ${Ui.fmt(c.mu_upper)}], P(leak) in [${Ui.fmt(c.p_lower)}, ${Ui.fmt(c.p_upper)}]`));
      g.append(svgEl("line", { x1: x, y1: py(c.mu_lower), x2: x, y2: py(c.mu_upper), stroke: COLOURS.blue, "stroke-width": Math.max(1, mark * 0.7), "stroke-opacity": 0.45 }));
      g.append(svgEl("circle", { cx: x, cy: py(c.mean), r: mark * 0.7, fill: COLOURS.blue }));
      if (c.p_upper !== null)
        g.append(svgEl("line", { x1: x - mark, y1: py(c.p_upper), x2: x + mark, y2: py(c.p_upper), stroke: COLOURS.red, "stroke-width": 2 }));
      if (c.greedy !== null) {
        const y = py(c.greedy);
        g.append(svgEl("polygon", { points: `${x},${y - mark} ${x + mark},${y} ${x},${y + mark} ${x - mark},${y}`, fill: COLOURS.orange }));
      }
      if (onPick) g.addEventListener("click", () => onPick(c.id));
      svg.append(g);
    });
    const legend = svgEl("text", { x: pad, y: 16, class: "a" });
    legend.append(svgEl("tspan", { fill: COLOURS.orange }, "◆ greedy score   "));
    legend.append(svgEl("tspan", { fill: COLOURS.blue }, "● sampled mean, bar: M_mu bounds   "));
    legend.append(svgEl("tspan", { fill: COLOURS.red }, "— upper bound on P(leak) = P(score = 1)"));
    svg.append(legend);
    svg.append(svgEl("text", { x: w / 2, y: h - 8, "text-anchor": "middle", class: "a" }, "prompts (in table order)"));
    return svg;
  },

  // The empirical CDF F_n of `scores` with the band F_n ± eps (clipped to [0, 1]).
  ecdf(scores, eps, greedy, title) {
    const w = 320;
    const h = 210;
    const pad = 36;
    const px = (x) => pad + x * (w - 2 * pad);
    const py = (y) => h - pad + 4 - y * (h - 2 * pad - 8);
    const xs = [...scores].sort((a, b) => a - b);
    const n = xs.length;
    const points = [[0, 0]];
    let i = 0;
    while (i < n) {
      const x = xs[i];
      while (i < n && xs[i] === x) i += 1;
      points.push([x, points[points.length - 1][1]]);
      points.push([x, i / n]);
    }
    points.push([1, 1]);
    const svg = svgRoot(w, h, "ecdf", title);
    svg.append(svgEl("text", { x: w / 2, y: 14, "text-anchor": "middle", class: "t" }, title));
    const e = eps || 0;
    const upper = points.map(([x, y]) => [x, Math.min(1, y + e)]);
    const lower = points.map(([x, y]) => [x, Math.max(0, y - e)]).reverse();
    const fmtPts = (pts) => pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
    svg.append(svgEl("polygon", { points: fmtPts(upper.concat(lower)), fill: COLOURS.blue, "fill-opacity": 0.18 }));
    svg.append(svgEl("polyline", { points: fmtPts(points), fill: "none", stroke: COLOURS.blue, "stroke-width": 1.8 }));
    svg.append(svgEl("line", { x1: px(0), y1: py(0), x2: px(1), y2: py(0), stroke: "#333" }));
    svg.append(svgEl("line", { x1: px(0), y1: py(0), x2: px(0), y2: py(1), stroke: "#333" }));
    for (const t of [0, 0.5, 1]) {
      svg.append(svgEl("text", { x: px(t), y: py(0) + 14, "text-anchor": "middle", class: "a" }, t));
      svg.append(svgEl("text", { x: px(0) - 4, y: py(t) + 4, "text-anchor": "end", class: "a" }, t));
    }
    svg.append(svgEl("text", { x: px(0.5), y: h - 4, "text-anchor": "middle", class: "a" }, `score (n = ${n}, band ± ${Ui.fmt(e)})`));
    if (greedy !== null && greedy !== undefined) {
      svg.append(svgEl("line", { x1: px(greedy), y1: py(0), x2: px(greedy), y2: py(1), stroke: COLOURS.orange, "stroke-width": 1.5, "stroke-dasharray": "4 3" }));
      svg.append(svgEl("text", { x: Math.min(px(greedy) + 3, w - 50), y: py(1) + 10, class: "a", fill: COLOURS.orange }, "greedy"));
    }
    return svg;
  },

  // Counts of the scores in `bins` equal bins over [0, 1]; a score of exactly 1 gets its own bar,
  // since "the draw is the full answer" is what the P(leak) bounds count.
  histogram(scores, bins) {
    const w = 420;
    const h = 220;
    const pad = 40;
    const counts = new Array(bins + 1).fill(0);
    for (const s of scores) counts[s >= 1 ? bins : Math.min(bins - 1, Math.floor(s * bins))] += 1;
    const top = Math.max(1, ...counts);
    const bw = (w - 2 * pad) / counts.length;
    const py = (c) => h - pad - (c / top) * (h - 2 * pad - 10);
    const svg = svgRoot(w, h, "histogram", "Histogram of the draws' scores");
    svg.id = "histogram-svg";
    counts.forEach((c, i) => {
      const label = i === bins ? "score = 1" : `[${(i / bins).toFixed(2)}, ${((i + 1) / bins).toFixed(2)})`;
      const bar = svgEl("rect", { x: pad + i * bw + 1, y: py(c), width: Math.max(1, bw - 2), height: h - pad - py(c), fill: i === bins ? COLOURS.red : COLOURS.blue, class: "bar" });
      bar.append(svgEl("title", {}, `${label}: ${c} draws`));
      svg.append(bar);
      if (c > 0) svg.append(svgEl("text", { x: pad + (i + 0.5) * bw, y: py(c) - 3, "text-anchor": "middle", class: "a" }, c));
    });
    svg.append(svgEl("line", { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, stroke: "#333" }));
    for (const t of [0, 0.5, 1]) {
      const x = pad + t * bins * bw;
      svg.append(svgEl("text", { x, y: h - pad + 14, "text-anchor": "middle", class: "a" }, t));
    }
    svg.append(svgEl("text", { x: w - pad - bw / 2, y: h - pad + 14, "text-anchor": "middle", class: "a", fill: COLOURS.red }, "=1"));
    svg.append(svgEl("text", { x: w / 2, y: h - 6, "text-anchor": "middle", class: "a" }, `score (${scores.length} draws)`));
    return svg;
  },
};
