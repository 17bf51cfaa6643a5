// Line and area charts in inline SVG: one or more series over the timeline's points, each on the left or
// the right axis, smooth monotone curves, a tooltip under the pointer or the arrow keys, and an empty
// state. The activity chart draws messages (left axis) and active users (right axis) as areas; the LLM
// chart draws each model's cost, or the tokens by kind, as lines on one axis.
// Partial points (the API's `partial` flag: the current hour or day, a rolling window's first) are
// drawn as such: the line into and out of them dashed, their markers hollow, the read-out says so.

import { formatBucket, formatCompact, formatDateTime, formatInteger, formatTime, partialWords, pointUnit } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
// A series: `key` (its data-series), `label`, `tone` (its colour: the CSS class tone-<tone>), `axis`
// ("left" or "right"), `value(point)`, `format(value)` for the read-out.
const ACTIVITY_SERIES = [
  { key: "messages", tone: "messages", label: "Messages", axis: "left", value: (p) => p.message_count, format: formatInteger },
  { key: "users", tone: "users", label: "Active users", axis: "right", value: (p) => p.active_users, format: formatInteger },
];
const AXES = ["left", "right"];

function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/**
 * A round tick step (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^n) and the top. `whole`: the figures are counts,
 * so the step is a whole number and the top at least `ticks`; otherwise (dollars) any decimal step.
 */
function niceScale(max, ticks, whole = true) {
  const rough = (whole ? Math.max(max, 1) : max > 0 ? max : 1) / ticks;
  const power = 10 ** Math.floor(Math.log10(rough));
  const steps = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * power);
  const step = whole
    ? steps.find((s) => s >= rough && Number.isInteger(s)) ?? Math.ceil(rough)
    : steps.find((s) => s >= rough * (1 - 1e-9)) ?? rough;
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
 * The activity chart: messages (left axis) and active users (right axis) of `timeline` as areas.
 * `now` is the API's `generated_at`: where a partial last point ends. Returns {focusPoint(index)}.
 */
export function renderActivityChart(container, tooltip, { timeline, period, now = null, hidden = new Set() }) {
  return renderChart(container, tooltip, {
    points: timeline, series: ACTIVITY_SERIES, period, now, hidden,
    name: "Activity chart", emptyText: "No activity in this period", areas: true,
  });
}

/** The widest tick label of an axis in pixels, roughly (11 px system font). */
function labelWidth(labels) {
  return Math.max(0, ...labels.map((label) => label.length)) * 6.6;
}

/**
 * Draw a chart into `container` (cleared first). `tooltip` is an element positioned over it.
 * `points` are the timeline's points ({timestamp, partial, …}, ascending), `series` what is drawn of
 * each (see ACTIVITY_SERIES), `hidden` the keys of series not drawn. `axes.left` / `axes.right`:
 * {whole: counts (true) or decimals, format: a tick's text}. `areas` fills under each line; `total`
 * ({label, format}) adds the sum of the drawn series to the read-out. `now` is the API's
 * `generated_at`: where a partial last point ends. Returns {focusPoint(index)} for tests and keyboard use.
 */
export function renderChart(container, tooltip, {
  points, series, period, now = null, hidden = new Set(), name = "Chart", emptyText = "Nothing in this period",
  areas = false, axes = {}, total = null,
}) {
  container.replaceChildren();
  container.onkeydown = null; // an empty chart has nothing to read out
  container.onblur = null;
  tooltip.hidden = true;
  const width = Math.max(container.clientWidth, 280);
  const height = width < 560 ? 220 : 280;
  const count = points.length;
  const values = new Map(series.map((s) => [s.key, points.map((p) => s.value(p))]));
  const empty = series.length === 0 || [...values.values()].every((list) => list.every((v) => v === 0));
  const unit = pointUnit(period);
  const partial = points.map((p) => p.partial === true); // from the API, never inferred here
  const partialCount = partial.filter(Boolean).length;
  container.setAttribute("aria-label", `${name}: use the left and right arrow keys to read each point` +
    (partialCount ? `; dashed parts and hollow points are partial ${unit}s` : ""));
  container.dataset.partialPoints = String(partialCount);
  container.dataset.points = String(count);

  // Each axis's scale, from the series drawn on it (all of its series when every one is hidden).
  const plotted = series.filter((s) => !hidden.has(s.key));
  const ticks = 4;
  const scales = {};
  for (const axis of AXES) {
    const own = series.filter((s) => s.axis === axis);
    if (own.length === 0) continue;
    const drawn = own.filter((s) => !hidden.has(s.key));
    const max = Math.max(0, ...(drawn.length ? drawn : own).flatMap((s) => values.get(s.key)));
    const { whole = true, format = formatCompact } = axes[axis] ?? {};
    const scale = niceScale(max, ticks, whole);
    scale.labels = Array.from({ length: ticks + 1 }, (_, t) => format(scale.step * t));
    scale.drawn = drawn;
    scales[axis] = scale;
  }
  const margin = {
    top: 16,
    right: scales.right ? Math.max(48, 14 + labelWidth(scales.right.labels)) : 24,
    bottom: 30,
    left: Math.max(48, 14 + labelWidth(scales.left?.labels ?? [])),
  };
  const innerW = width - margin.left - margin.right;
  const innerH = height - margin.top - margin.bottom;
  const x = (i) => margin.left + (count <= 1 ? innerW / 2 : (i * innerW) / (count - 1));
  const y = (s, value) => margin.top + innerH - (value / scales[s.axis].top) * innerH;

  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart-svg", "aria-hidden": "true", focusable: "false" }, container);
  const fillId = (s) => `${container.id || "chart"}-fill-${s.tone}`;
  if (areas) {
    const defs = el("defs", {}, svg);
    for (const s of series) {
      const gradient = el("linearGradient", { id: fillId(s), x1: 0, y1: 0, x2: 0, y2: 1, class: `gradient gradient--${s.tone}` }, defs);
      el("stop", { offset: "0%", class: "stop-strong" }, gradient);
      el("stop", { offset: "100%", class: "stop-weak" }, gradient);
    }
  }

  // Grid and axes: each axis in the colour of its series when it has one drawn, else neutral.
  const grid = el("g", { class: "chart-grid" }, svg);
  for (let t = 0; t <= ticks; t += 1) {
    const gy = margin.top + innerH - (t * innerH) / ticks;
    el("line", { x1: margin.left, x2: margin.left + innerW, y1: gy, y2: gy, class: t === 0 ? "axis-line" : "grid-line" }, grid);
    for (const axis of AXES) {
      const scale = scales[axis];
      if (!scale || scale.drawn.length === 0 || empty) continue;
      const only = scale.drawn.length === 1 ? scale.drawn[0] : null;
      const label = el("text", {
        x: axis === "left" ? margin.left - 8 : margin.left + innerW + 8,
        y: gy + 4,
        "text-anchor": axis === "left" ? "end" : "start",
        class: only ? `tick tick--${only.tone} tone-${only.tone}` : "tick",
      }, grid);
      label.textContent = scale.labels[t];
    }
  }
  const labelEvery = Math.max(1, Math.ceil(count / Math.max(2, Math.floor(innerW / 64))));
  for (let i = 0; i < count; i += 1) {
    if ((count - 1 - i) % labelEvery !== 0) continue; // anchored on the latest bucket
    const label = el("text", { x: x(i), y: height - 8, "text-anchor": "middle", class: "tick" }, grid);
    label.textContent = formatBucket(points[i].timestamp, period);
  }

  if (empty || count === 0) {
    const note = document.createElement("p");
    note.className = "chart-empty";
    note.textContent = emptyText;
    container.appendChild(note);
    return { focusPoint() {} };
  }

  // Areas first (the later series behind the earlier), then lines on top: solid between whole points,
  // dashed into and out of a partial one; then a hollow marker on each partial point.
  const dashed = (i) => partial[i] || partial[i + 1];
  for (const s of [...plotted].reverse()) {
    const coords = values.get(s.key).map((value, i) => [x(i), y(s, value)]);
    const segments = monotoneSegments(coords);
    const whole = curvePath(coords, segments);
    const tone = `tone-${s.tone}`;
    if (areas) {
      const base = margin.top + innerH;
      el("path", { d: `${whole}L${x(count - 1)},${base}L${x(0)},${base}Z`, fill: `url(#${fillId(s)})`, class: `area area--${s.tone}` }, svg);
    }
    el("path", { d: curvePath(coords, segments, (i) => !dashed(i)), class: `line line--${s.tone} ${tone}`, "data-series": s.key }, svg);
    const partialLine = curvePath(coords, segments, dashed);
    if (count > 1 && partialLine) {
      el("path", { d: partialLine, class: `line line--${s.tone} ${tone} line--partial`, "data-series": s.key }, svg);
    }
  }
  for (const s of plotted) {
    partial.forEach((isPartial, i) => {
      if (!isPartial) return;
      el("circle", {
        cx: x(i), cy: y(s, values.get(s.key)[i]), r: 3.5,
        class: `marker marker--partial marker--${s.tone} tone-${s.tone}`, "data-index": i, "data-series": s.key,
      }, svg);
    });
  }

  // Hover/keyboard read-out: a guide line, one dot per series, and the HTML tooltip.
  const guide = el("line", { y1: margin.top, y2: margin.top + innerH, class: "guide", visibility: "hidden" }, svg);
  const dots = plotted.map((s) => ({ series: s, dot: el("circle", { r: 4.5, class: `dot dot--${s.tone} tone-${s.tone}`, visibility: "hidden" }, svg) }));
  const overlay = el("rect", { x: margin.left, y: margin.top, width: innerW, height: innerH, class: "overlay" }, svg);

  // The bucket the read-out showed before this redraw (a resize, a refresh, a series toggled).
  const keptAt = container.dataset.activeAt;
  let active = -1;
  function row(tone, label, text, key) {
    const line = document.createElement("div");
    line.className = "tooltip-row";
    const swatch = document.createElement("span");
    swatch.className = tone ? `legend-swatch tone-${tone}` : "legend-swatch legend-swatch--none";
    const words = document.createElement("span");
    words.className = "tooltip-label";
    words.textContent = label;
    const value = document.createElement("strong");
    value.textContent = text;
    value.dataset.series = key;
    line.append(swatch, words, value);
    return line;
  }
  function show(index) {
    active = Math.max(0, Math.min(count - 1, index));
    const point = points[active];
    container.dataset.activeAt = point.timestamp;
    const px = x(active);
    guide.setAttribute("x1", px);
    guide.setAttribute("x2", px);
    guide.setAttribute("visibility", "visible");
    for (const { series: s, dot } of dots) {
      dot.setAttribute("cx", px);
      dot.setAttribute("cy", y(s, values.get(s.key)[active]));
      dot.setAttribute("visibility", "visible");
      dot.classList.toggle("dot--partial", partial[active]);
    }
    let title = `${formatBucket(point.timestamp, period)} (UTC)`;
    if (period === "day") {
      // An hour ends where the next point starts; the current one (partial) ends now.
      const next = points[active + 1]?.timestamp;
      const end = next ?? (partial[active] && now ? now : new Date(new Date(point.timestamp).getTime() + 3600e3));
      title = `${formatDateTime(point.timestamp)}–${formatTime(end)} UTC`;
    }
    const rows = plotted.map((s) => row(s.tone, s.label, s.format(values.get(s.key)[active]), s.key));
    if (total && plotted.length > 1) {
      const sum = plotted.reduce((acc, s) => acc + values.get(s.key)[active], 0);
      const line = row(null, total.label, total.format(sum), "total");
      line.classList.add("tooltip-row--total");
      rows.push(line);
    }
    const heading = document.createElement("div");
    heading.className = "tooltip-title";
    heading.textContent = title;
    tooltip.replaceChildren(heading, ...rows);
    if (partial[active]) {
      const words = partialWords(points, active);
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
  const kept = keptAt === undefined ? -1 : points.findIndex((p) => p.timestamp === keptAt);
  if (kept >= 0) show(kept);
  else delete container.dataset.activeAt;
  return { focusPoint: show };
}
