// A two-series area chart in inline SVG: messages (left axis) and active users (right axis),
// smooth monotone curves, a tooltip under the pointer or the arrow keys, and an empty state.
// Partial points (the API's `partial` flag: the current hour or day, a rolling window's first) are
// drawn as such: the line into and out of them dashed, their markers hollow, the read-out says so.

import { formatBucket, formatCompact, formatDateTime, formatInteger, formatTime, partialWords, pointUnit } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const SERIES = [
  { key: "messages", field: "message_count", label: "Messages", axis: "left" },
  { key: "users", field: "active_users", label: "Active users", axis: "right" },
];

function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/** A round whole tick step (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^n; the figures are counts) and the top. */
function niceScale(max, ticks) {
  const rough = Math.max(max, 1) / ticks;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]
    .map((m) => m * power)
    .find((s) => s >= rough && Number.isInteger(s)) ?? Math.ceil(rough);
  return { top: step * ticks, step };
}

/**
 * Monotone cubic (Fritsch–Carlson) curve through points: smooth, never overshooting below zero.
 * Returns one cubic command per segment (segment i runs from point i to point i + 1).
 */
function monotoneSegments(points) {
  const n = points.length;
  if (n < 2) return [];
  const dx = [];
  const slope = [];
  for (let i = 0; i < n - 1; i += 1) {
    dx.push(points[i + 1][0] - points[i][0]);
    slope.push((points[i + 1][1] - points[i][1]) / dx[i]);
  }
  const tangent = [slope[0]];
  for (let i = 1; i < n - 1; i += 1) {
    tangent.push(slope[i - 1] * slope[i] <= 0 ? 0 : (3 * (dx[i - 1] + dx[i])) /
      ((2 * dx[i] + dx[i - 1]) / slope[i - 1] + (dx[i] + 2 * dx[i - 1]) / slope[i]));
  }
  tangent.push(slope[n - 2]);
  const segments = [];
  for (let i = 0; i < n - 1; i += 1) {
    const [x0, y0] = points[i];
    const [x1, y1] = points[i + 1];
    const h = dx[i] / 3;
    segments.push(`C${x0 + h},${y0 + tangent[i] * h} ${x1 - h},${y1 - tangent[i + 1] * h} ${x1},${y1}`);
  }
  return segments;
}

/**
 * The path of the segments `keep(i)` selects, consecutive ones joined into one subpath; "" for none.
 * With a single point (no segment) the whole curve is a lone move to it.
 */
function curvePath(points, segments, keep = () => true) {
  if (points.length === 1) return `M${points[0][0]},${points[0][1]}`;
  let d = "";
  let open = false;
  segments.forEach((segment, i) => {
    if (!keep(i)) {
      open = false;
      return;
    }
    if (!open) d += `M${points[i][0]},${points[i][1]}`;
    d += segment;
    open = true;
  });
  return d;
}

/**
 * Draw the chart into `container` (cleared first). `tooltip` is an element positioned over it.
 * `now` is the API's `generated_at`: where a partial last point ends. Returns {focusPoint(index)}
 * for tests and keyboard use.
 */
export function renderActivityChart(container, tooltip, { timeline, period, now = null, hidden = new Set() }) {
  container.replaceChildren();
  tooltip.hidden = true;
  const width = Math.max(container.clientWidth, 280);
  const height = width < 560 ? 220 : 280;
  const margin = { top: 16, right: 48, bottom: 30, left: 48 };
  const innerW = width - margin.left - margin.right;
  const innerH = height - margin.top - margin.bottom;
  const empty = timeline.every((p) => p.message_count === 0 && p.active_users === 0);
  const unit = pointUnit(period);
  const partial = timeline.map((p) => p.partial === true); // from the API, never inferred here
  const partialCount = partial.filter(Boolean).length;
  container.setAttribute("aria-label", "Activity chart: use the left and right arrow keys to read each point" +
    (partialCount ? `; dashed parts and hollow points are partial ${unit}s` : ""));
  container.dataset.partialPoints = String(partialCount);

  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart-svg", "aria-hidden": "true", focusable: "false" }, container);
  const defs = el("defs", {}, svg);
  for (const series of SERIES) {
    const gradient = el("linearGradient", { id: `fill-${series.key}`, x1: 0, y1: 0, x2: 0, y2: 1, class: `gradient gradient--${series.key}` }, defs);
    el("stop", { offset: "0%", class: "stop-strong" }, gradient);
    el("stop", { offset: "100%", class: "stop-weak" }, gradient);
  }

  const count = timeline.length;
  const x = (i) => margin.left + (count <= 1 ? innerW / 2 : (i * innerW) / (count - 1));
  const ticks = 4;
  const scales = {};
  for (const series of SERIES) {
    const max = Math.max(0, ...timeline.map((p) => p[series.field]));
    scales[series.key] = niceScale(max, ticks);
  }
  const y = (series, value) => margin.top + innerH - (value / scales[series.key].top) * innerH;

  // Grid and axes: the left axis is the messages' scale, the right axis the users'.
  const grid = el("g", { class: "chart-grid" }, svg);
  for (let t = 0; t <= ticks; t += 1) {
    const gy = margin.top + innerH - (t * innerH) / ticks;
    el("line", { x1: margin.left, x2: margin.left + innerW, y1: gy, y2: gy, class: t === 0 ? "axis-line" : "grid-line" }, grid);
    for (const series of SERIES) {
      if (hidden.has(series.key) || empty) continue;
      const value = scales[series.key].step * t;
      const label = el("text", {
        x: series.axis === "left" ? margin.left - 8 : margin.left + innerW + 8,
        y: gy + 4,
        "text-anchor": series.axis === "left" ? "end" : "start",
        class: `tick tick--${series.key}`,
      }, grid);
      label.textContent = formatCompact(value);
    }
  }
  const labelEvery = Math.max(1, Math.ceil(count / Math.max(2, Math.floor(innerW / 64))));
  for (let i = 0; i < count; i += 1) {
    if ((count - 1 - i) % labelEvery !== 0) continue; // anchored on the latest bucket
    const label = el("text", { x: x(i), y: height - 8, "text-anchor": "middle", class: "tick" }, grid);
    label.textContent = formatBucket(timeline[i].timestamp, period);
  }

  if (empty) {
    const note = document.createElement("p");
    note.className = "chart-empty";
    note.textContent = "No activity in this period";
    container.appendChild(note);
    return { focusPoint() {} };
  }

  // Areas first (users behind messages), then lines on top: solid between whole points, dashed into
  // and out of a partial one; then a hollow marker on each partial point.
  const plotted = SERIES.filter((s) => !hidden.has(s.key));
  const dashed = (i) => partial[i] || partial[i + 1];
  for (const series of [...plotted].reverse()) {
    const points = timeline.map((p, i) => [x(i), y(series, p[series.field])]);
    const segments = monotoneSegments(points);
    const base = margin.top + innerH;
    const whole = curvePath(points, segments);
    el("path", { d: `${whole}L${x(count - 1)},${base}L${x(0)},${base}Z`, fill: `url(#fill-${series.key})`, class: `area area--${series.key}` }, svg);
    el("path", { d: curvePath(points, segments, (i) => !dashed(i)), class: `line line--${series.key}` }, svg);
    const partialLine = curvePath(points, segments, dashed);
    if (count > 1 && partialLine) {
      el("path", { d: partialLine, class: `line line--${series.key} line--partial` }, svg);
    }
  }
  for (const series of plotted) {
    partial.forEach((isPartial, i) => {
      if (!isPartial) return;
      el("circle", {
        cx: x(i), cy: y(series, timeline[i][series.field]), r: 3.5,
        class: `marker marker--partial marker--${series.key}`, "data-index": i,
      }, svg);
    });
  }

  // Hover/keyboard read-out: a guide line, one dot per series, and the HTML tooltip.
  const guide = el("line", { y1: margin.top, y2: margin.top + innerH, class: "guide", visibility: "hidden" }, svg);
  const dots = plotted.map((series) => ({ series, dot: el("circle", { r: 4.5, class: `dot dot--${series.key}`, visibility: "hidden" }, svg) }));
  const overlay = el("rect", { x: margin.left, y: margin.top, width: innerW, height: innerH, class: "overlay" }, svg);

  // The bucket the read-out showed before this redraw (a resize, a refresh, a series toggled).
  const keptAt = container.dataset.activeAt;
  let active = -1;
  function show(index) {
    active = Math.max(0, Math.min(count - 1, index));
    const point = timeline[active];
    container.dataset.activeAt = point.timestamp;
    const px = x(active);
    guide.setAttribute("x1", px);
    guide.setAttribute("x2", px);
    guide.setAttribute("visibility", "visible");
    for (const { series, dot } of dots) {
      dot.setAttribute("cx", px);
      dot.setAttribute("cy", y(series, point[series.field]));
      dot.setAttribute("visibility", "visible");
      dot.classList.toggle("dot--partial", partial[active]);
    }
    let title = `${formatBucket(point.timestamp, period)} (UTC)`;
    if (period === "day") {
      // An hour ends where the next point starts; the current one (partial) ends now.
      const next = timeline[active + 1]?.timestamp;
      const end = next ?? (partial[active] && now ? now : new Date(new Date(point.timestamp).getTime() + 3600e3));
      title = `${formatDateTime(point.timestamp)}–${formatTime(end)} UTC`;
    }
    const rows = plotted.map((series) => {
      const row = document.createElement("div");
      row.className = "tooltip-row";
      const swatch = document.createElement("span");
      swatch.className = `legend-swatch legend-swatch--${series.key}`;
      const name = document.createElement("span");
      name.textContent = series.label;
      const value = document.createElement("strong");
      value.textContent = formatInteger(point[series.field]);
      value.dataset.series = series.key;
      row.append(swatch, name, value);
      return row;
    });
    const heading = document.createElement("div");
    heading.className = "tooltip-title";
    heading.textContent = title;
    tooltip.replaceChildren(heading, ...rows);
    if (partial[active]) {
      const words = partialWords(timeline, active);
      const note = document.createElement("div");
      note.className = "tooltip-note";
      note.dataset.partial = "true";
      note.textContent = `Partial ${unit}, ${words}` +
        (words === "so far" && period !== "day" && now ? ` (to ${formatTime(now)} UTC)` : "");
      tooltip.append(note);
    }
    tooltip.hidden = false;
    const scale = container.clientWidth / width || 1;
    const left = px * scale;
    const flip = left > container.clientWidth * 0.6;
    tooltip.classList.toggle("chart-tooltip--left", flip);
    tooltip.style.left = `${container.offsetLeft + left}px`;
    tooltip.style.top = `${container.offsetTop + margin.top * scale}px`;
  }
  function hide() {
    active = -1;
    delete container.dataset.activeAt;
    guide.setAttribute("visibility", "hidden");
    for (const { dot } of dots) dot.setAttribute("visibility", "hidden");
    tooltip.hidden = true;
  }
  function indexAt(clientX) {
    const box = svg.getBoundingClientRect();
    const local = ((clientX - box.left) / box.width) * width;
    return count <= 1 ? 0 : Math.round(((local - margin.left) / innerW) * (count - 1));
  }
  overlay.addEventListener("pointermove", (event) => show(indexAt(event.clientX)));
  overlay.addEventListener("pointerdown", (event) => show(indexAt(event.clientX)));
  overlay.addEventListener("pointerleave", hide);
  container.onkeydown = (event) => {
    const moves = { ArrowRight: 1, ArrowLeft: -1 };
    if (event.key in moves) show(active < 0 ? (moves[event.key] > 0 ? 0 : count - 1) : active + moves[event.key]);
    else if (event.key === "Home") show(0);
    else if (event.key === "End") show(count - 1);
    else if (event.key === "Escape") hide();
    else return;
    event.preventDefault();
  };
  container.onblur = hide;
  // A redraw keeps the read-out on the bucket the user was looking at (keyboard or pointer), so an
  // arrow key after a refresh moves from there instead of jumping to an end of the chart.
  const kept = keptAt === undefined ? -1 : timeline.findIndex((p) => p.timestamp === keptAt);
  if (kept >= 0) show(kept);
  else delete container.dataset.activeAt;
  return { focusPoint: show };
}
