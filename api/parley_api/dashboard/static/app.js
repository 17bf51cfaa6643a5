// The dashboard: login, the overview of one period, and every state in between
// (loading, empty, signed out by a 401, rate limited by a 429, API unreachable).

import { clearCredentials, fetchExport, fetchStats, loadCredentials, makeCredentials, saveCredentials } from "./api.js";
import { renderActivityChart, renderChart } from "./chart.js";
import {
  describeChange, formatAgo, formatCompact, formatDate, formatDateTime, formatDuration, formatFigure, formatInteger,
  formatLatency, formatRate, formatShare, formatSpan, formatTime, formatUsd, formatUsdTick, partialWords, pointUnit,
  windowLength,
} from "./format.js";

const PERIODS = ["day", "week", "month"];
const DEFAULT_PERIOD = "week";
const WINDOWS = ["rolling", "calendar"];
const DEFAULT_WINDOW = "rolling";
const FALLBACK_WARNING_SHARE = 0.2; // the ParleyLlmFallbackRatioHigh alert's default threshold
const AUTO_REFRESH_SECONDS = 60;
const UNREACHABLE_RETRY_SECONDS = [5, 10, 30, 60];
const RETENTION_DAYS = [1, 7, 30]; // the response's d1, d7, d30
const WEEK_MS = 7 * 24 * 60 * 60 * 1000;
const MODEL_TONES = 8; // colours of the LLM chart's models (tone-m1 … tone-m8), then again from the first
const LLM_MODES = ["cost", "tokens"];
const PERCENTILES = [["p50", "latency_p50_ms"], ["p95", "latency_p95_ms"], ["p99", "latency_p99_ms"]];
const PERCENTILE_BIN = "the upper end of the 10 % latency bin holding the percentile";
const BUDGET_WARNING_SHARE = 0.8; // BUDGET_WARN_PERCENT's default: the bot warns the user from there
const BUDGET_PERIODS = [
  { period: "day", label: "Budget today", words: "today", limit: "daily" },
  { period: "month", label: "Budget this month", words: "this month", limit: "monthly" },
];
const $ = (selector, root = document) => root.querySelector(selector);

const state = {
  credentials: null,
  period: DEFAULT_PERIOD,
  window: DEFAULT_WINDOW,
  data: null,
  hiddenSeries: new Set(),
  llmMode: "cost", // the LLM chart: each model's cost, or the tokens by kind
  llmHidden: { cost: new Set(), tokens: new Set() },
  sequence: 0,
  controller: null,
  countdown: null,
  refreshTimer: null,
  unreachableStreak: 0,
  loadedAt: 0,
};

// ---------------------------------------------------------------- URL, period and window

// The two segmented radio groups of the top bar: which period, and how its window is placed.
const CHOICES = {
  period: { group: "#period-control", values: PERIODS, fallback: DEFAULT_PERIOD },
  window: { group: "#window-control", values: WINDOWS, fallback: DEFAULT_WINDOW },
};

/** The period and window of the address bar (`?period=week&window=calendar`; no window = rolling). */
function viewFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const view = {};
  for (const [name, choice] of Object.entries(CHOICES)) {
    const value = params.get(name);
    view[name] = choice.values.includes(value) ? value : choice.fallback;
  }
  return view;
}

function writeViewToUrl({ replace = false } = {}) {
  const url = new URL(window.location.href);
  url.searchParams.set("period", state.period);
  if (state.window === DEFAULT_WINDOW) url.searchParams.delete("window");
  else url.searchParams.set("window", state.window);
  if (url.href === window.location.href) return;
  window.history[replace ? "replaceState" : "pushState"]({ period: state.period, window: state.window }, "", url);
}

function showChoice(name, value) {
  for (const button of document.querySelectorAll(`${CHOICES[name].group} [role=radio]`)) {
    const selected = button.dataset[name] === value;
    button.setAttribute("aria-checked", String(selected));
    button.tabIndex = selected ? 0 : -1;
  }
}

function showView() {
  showChoice("period", state.period);
  showChoice("window", state.window);
}

function select(name, value, { focus = false } = {}) {
  const choice = CHOICES[name];
  if (!choice.values.includes(value)) return;
  showChoice(name, value);
  if (focus) $(`${choice.group} [data-${name}="${value}"]`).focus();
  if (value === state[name]) return;
  state[name] = value;
  writeViewToUrl();
  load();
}

/** One radio group: a click selects; ←/→/↑/↓ move (wrapping), Home/End go to the ends. */
function wireRadioGroup(name) {
  const { group: selector, values } = CHOICES[name];
  const group = $(selector);
  group.addEventListener("click", (event) => {
    const button = event.target.closest("[role=radio]");
    if (button) select(name, button.dataset[name], { focus: true });
  });
  group.addEventListener("keydown", (event) => {
    const index = values.indexOf(state[name]);
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    let next = null;
    if (event.key in moves) next = values[(index + moves[event.key] + values.length) % values.length];
    else if (event.key === "Home") next = values[0];
    else if (event.key === "End") next = values[values.length - 1];
    if (next === null) return;
    event.preventDefault();
    select(name, next, { focus: true });
  });
}

function wireViewControls() {
  wireRadioGroup("period");
  wireRadioGroup("window");
  window.addEventListener("popstate", () => {
    const view = viewFromUrl();
    const changed = view.period !== state.period || view.window !== state.window;
    state.period = view.period;
    state.window = view.window;
    showView();
    if (changed && state.credentials) load();
  });
}

// ---------------------------------------------------------------- views

function showLogin(message = "", { kind = "error" } = {}) {
  stopTimers();
  state.data = null;
  $("#dashboard-view").hidden = true;
  $("#login-view").hidden = false;
  document.title = "Sign in · Parley";
  const box = $("#login-message");
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = !message;
  const username = $("#login-username");
  (username.value ? $("#login-password") : username).focus();
}

function showDashboard() {
  $("#login-view").hidden = true;
  $("#dashboard-view").hidden = false;
  $("#current-user").textContent = state.credentials.username;
  document.title = "Overview · Parley";
  showView();
}

function setBanner(text, { retry = false, tone = "error" } = {}) {
  const banner = $("#banner");
  $("#banner-text").textContent = text;
  banner.dataset.tone = tone;
  banner.hidden = !text;
  $("#banner-retry").hidden = !retry;
}

function setLoading(loading) {
  const overview = $("#overview");
  overview.setAttribute("aria-busy", String(loading));
  overview.classList.toggle("is-refreshing", loading && state.data !== null);
  overview.classList.toggle("is-initial", state.data === null);
  $("#progress").hidden = !loading;
  $("#refresh-button").disabled = loading;
}

// ---------------------------------------------------------------- timers

function stopTimers() {
  if (state.countdown) clearInterval(state.countdown.timer);
  state.countdown = null;
  clearTimeout(state.refreshTimer);
  state.refreshTimer = null;
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    if (document.visibilityState === "visible") load({ quiet: true });
    else scheduleRefresh();
  }, AUTO_REFRESH_SECONDS * 1000);
}

/** Show `render(seconds)` every second, then call `done` — e.g. "retry in 37 s". */
function countDown(seconds, render, done) {
  stopTimers();
  const end = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    render(left);
    if (left === 0) {
      stopTimers();
      done();
    }
  };
  state.countdown = { timer: setInterval(tick, 1000) };
  tick();
}

// ---------------------------------------------------------------- loading

async function load({ quiet = false } = {}) {
  if (!state.credentials) return;
  stopTimers();
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  const sequence = ++state.sequence;
  const view = { period: state.period, window: state.window };
  if (!quiet || state.data === null) setLoading(true);
  const result = await fetchStats(view.period, view.window, state.credentials, { signal: controller.signal });
  if (sequence !== state.sequence || result.kind === "aborted") return; // a newer request won
  setLoading(false);
  handleResult(result, view);
}

function handleResult(result, view) {
  switch (result.kind) {
    case "ok":
      state.unreachableStreak = 0;
      setBanner("");
      state.data = result.data;
      state.loadedAt = Date.now();
      render(result.data, view);
      scheduleRefresh();
      break;
    case "unauthorized":
      signOut("Your session has ended: the server no longer accepts these credentials. Please sign in again.");
      break;
    case "rate_limited":
      countDown(
        result.retryAfter,
        (left) => setBanner(`Too many requests, retry in ${left} s.`, { tone: "warning" }),
        () => load(),
      );
      break;
    case "unavailable":
      countDown(
        result.retryAfter,
        (left) => setBanner(`The API cannot reach its database right now, retry in ${left} s.`, { retry: true }),
        () => load(),
      );
      break;
    case "unreachable": {
      const wait = UNREACHABLE_RETRY_SECONDS[Math.min(state.unreachableStreak, UNREACHABLE_RETRY_SECONDS.length - 1)];
      state.unreachableStreak += 1;
      countDown(
        wait,
        (left) => setBanner(`Cannot reach the API. Check your connection; retrying in ${left} s.`, { retry: true }),
        () => load(),
      );
      break;
    }
    default:
      setBanner(`Unexpected answer from the API (HTTP ${result.status})${result.detail ? `: ${result.detail}` : ""}.`, { retry: true });
  }
  if (state.data === null) renderPlaceholders();
}

// ---------------------------------------------------------------- rendering

function renderPlaceholders() {
  $("#overview").classList.add("is-initial");
}

/** "the previous 7 × 24 h" and its exact span, for the comparison badges and the footer. */
function comparison(data) {
  const length = windowLength(data.period, data.window);
  return { words: `the previous ${length}`, span: formatSpan(data.previous_start, data.previous_end) };
}

function renderCards(data) {
  const { summary } = data;
  const against = comparison(data);
  for (const card of document.querySelectorAll(".stat[data-metric]")) {
    const metric = card.dataset.metric;
    const value = summary[metric];
    const previous = summary.previous[metric];
    const valueNode = $("[data-role=value]", card);
    valueNode.textContent = formatFigure(metric, value);
    valueNode.dataset.value = String(value);
    const change = describeChange(value, previous);
    const badge = $("[data-role=badge]", card);
    badge.textContent = change.text;
    badge.dataset.direction = change.direction;
    badge.setAttribute("aria-label", `${change.words} vs ${against.words}`);
    badge.title = `${change.words} vs ${against.words} (${against.span})`;
    const before = $("[data-role=previous]", card);
    before.textContent = `vs ${formatFigure(metric, previous)} in ${against.words}`;
    before.title = `${against.span}: the window of equal length just before this one`;
  }
}

function cell(text, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function userCell(userId) {
  const td = document.createElement("td");
  const span = document.createElement("span");
  span.className = "user-id";
  span.textContent = String(userId);
  span.title = `Telegram user ${userId}`;
  td.append(span);
  return td;
}

function barCell(value, max, text) {
  const td = document.createElement("td");
  td.className = "num bar-cell";
  const bar = document.createElement("span");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = `${max ? Math.max(2, (value / max) * 100) : 0}%`;
  bar.append(fill);
  const label = document.createElement("span");
  label.className = "bar-label";
  label.textContent = text;
  td.append(label, bar);
  return td;
}

function setEmpty(id, empty) {
  $(`[data-empty-for="${id}"]`).hidden = !empty;
  $(`#${id}`).hidden = empty;
}

function renderTopUsers(users, now) {
  const body = $("#top-users tbody");
  const max = users.length ? users[0].total_messages : 0;
  body.replaceChildren(...users.map((user, index) => {
    const row = document.createElement("tr");
    row.dataset.userId = String(user.user_id);
    const when = cell(formatAgo(user.last_activity, now), "num muted");
    when.title = `${formatDateTime(user.last_activity)} UTC`;
    row.append(
      cell(String(index + 1), "num rank"),
      userCell(user.user_id),
      barCell(user.total_messages, max, formatInteger(user.total_messages)),
      cell(formatInteger(user.dialog_count), "num col-optional"),
      when,
    );
    return row;
  }));
  setEmpty("top-users", users.length === 0);
}

function renderRecentDialogs(dialogs, previewsEnabled, now) {
  const list = $("#recent-dialogs");
  list.replaceChildren(...dialogs.map((dialog) => {
    const item = document.createElement("li");
    item.className = "dialog";
    item.dataset.userId = String(dialog.user_id);
    const head = document.createElement("div");
    head.className = "dialog-head";
    const user = document.createElement("span");
    user.className = "user-id";
    user.textContent = String(dialog.user_id);
    const meta = document.createElement("span");
    meta.className = "dialog-meta";
    meta.textContent = `${formatInteger(dialog.message_count)} messages · ${formatDuration(dialog.duration_minutes)}`;
    meta.dataset.messages = String(dialog.message_count);
    const time = document.createElement("time");
    time.className = "dialog-time";
    time.dateTime = dialog.last_message_at;
    time.textContent = formatAgo(dialog.last_message_at, now);
    time.title = `${formatDateTime(dialog.last_message_at)} UTC`;
    head.append(user, meta, time);
    item.append(head);
    if (previewsEnabled && dialog.preview) {
      const preview = document.createElement("p");
      preview.className = "dialog-preview";
      preview.textContent = dialog.preview; // text, never HTML: previews are user input
      preview.title = dialog.preview;
      item.append(preview);
    }
    return item;
  }));
  setEmpty("recent-dialogs", dialogs.length === 0);
  $("#recent-sub").textContent = previewsEnabled
    ? "Latest conversations, newest first"
    : "Latest conversations, newest first · previews are turned off on this server";
}

function renderLlmUsage(usage) {
  $("#llm-requests").textContent = formatInteger(usage.requests);
  // A warning only when many answers overall needed a fallback model (as the alert says), never because
  // the fallback model's own answers are, naturally, all fallback ones.
  const fallbackTotal = $("#llm-fallback");
  const many = usage.fallback_share > FALLBACK_WARNING_SHARE;
  fallbackTotal.textContent = formatShare(usage.fallback_share);
  fallbackTotal.classList.toggle("is-warning", many);
  fallbackTotal.title = `${formatInteger(usage.fallback_count)} of ${formatInteger(usage.requests)} answers came from a ` +
    `fallback model${many ? ` — more than ${formatShare(FALLBACK_WARNING_SHARE)}` : ""}`;
  const body = $("#llm-models tbody");
  const max = Math.max(0, ...usage.models.map((m) => m.requests));
  body.replaceChildren(...usage.models.map((model) => {
    const row = document.createElement("tr");
    row.dataset.model = model.model;
    const name = cell(model.model, "model-name");
    name.title = model.model;
    const share = cell(formatShare(model.answer_share), "num");
    share.dataset.label = "Share of answers";
    share.dataset.role = "answer-share";
    share.title = `${formatInteger(model.requests)} of ${formatInteger(usage.requests)} answers`;
    const fallback = cell(formatShare(model.fallback_share), "num muted");
    fallback.title = `${formatInteger(model.fallback_count)} of this model's ${formatInteger(model.requests)} answers ` +
      "were given as fallback";
    const tokens = cell(formatInteger(model.total_tokens), "num col-optional muted");
    tokens.title = `${formatInteger(model.prompt_tokens)} prompt + ${formatInteger(model.completion_tokens)} completion`;
    tokens.dataset.label = "Tokens";
    const requests = barCell(model.requests, max, formatInteger(model.requests));
    const latency = cell(formatLatency(model.avg_latency_ms), "num");
    requests.dataset.label = "Requests";
    fallback.dataset.label = "Fallback";
    latency.dataset.label = "Avg. latency";
    const answers = `of this model's ${formatInteger(model.requests)} answers`;
    const stopped = cell(formatInteger(model.stopped_count), "num muted");
    stopped.dataset.label = "Stopped";
    stopped.dataset.role = "stopped";
    stopped.title = `${formatInteger(model.stopped_count)} ${answers} were stopped by the user while being written`;
    const retried = cell(formatInteger(model.retried_count), "num muted");
    retried.dataset.label = "Retried";
    retried.dataset.role = "retried";
    retried.title = `${formatInteger(model.retried_count)} ${answers} were asked again for with /retry`;
    row.append(name, requests, share, fallback, latency, percentilesCell(model), stopped, retried, tokens);
    return row;
  }));
  setEmpty("llm-models", usage.models.length === 0);
  const counted = (value) => `${formatInteger(value)} of ${formatInteger(usage.requests)} answers`;
  const stoppedTotal = $("#llm-stopped");
  stoppedTotal.textContent = formatInteger(usage.stopped_count);
  stoppedTotal.title = `${counted(usage.stopped_count)} were stopped by the user while being written`;
  const retriedTotal = $("#llm-retried");
  retriedTotal.textContent = formatInteger(usage.retried_count);
  retriedTotal.title = `${counted(usage.retried_count)} were asked again for with /retry`;
}

/** "840 ms / 1.2 s / 2.4 s": a model's latency percentiles, a dash for one that is unknown. */
function percentilesCell(model) {
  const td = document.createElement("td");
  td.className = "num percentiles";
  td.dataset.label = "p50 / p95 / p99";
  td.dataset.role = "percentiles";
  const parts = PERCENTILES.map(([label, field]) => {
    const figure = document.createElement("span");
    figure.dataset.role = label;
    figure.textContent = formatLatency(model[field]);
    return figure;
  });
  const figures = document.createElement("span"); // one block: the stacked layout makes each child a line
  figures.className = "percentile-figures";
  figures.append(parts[0], " / ", parts[1], " / ", parts[2]);
  td.append(figures);
  td.title = `${PERCENTILES.map(([label, field]) => `${label} ${formatLatency(model[field])}`).join(", ")}: ` +
    `each ${PERCENTILE_BIN}`;
  return td;
}

// ---------------------------------------------------------------- LLM usage over time

/**
 * The LLM chart's points from `llm_timeline` (one entry per point and model, the same points and partial
 * flags as `activity_timeline`): each model's cost, and the tokens by kind of all models together. With
 * no model in the period, the activity timeline's points, so the chart still has its time axis.
 */
function llmPoints(data) {
  const byTime = new Map();
  const models = [];
  const blank = (timestamp, partial) => ({ timestamp, partial, cost: {}, prompt_tokens: 0, completion_tokens: 0 });
  for (const entry of data.llm_timeline) {
    if (!byTime.has(entry.timestamp)) byTime.set(entry.timestamp, blank(entry.timestamp, false));
    const point = byTime.get(entry.timestamp);
    if (!models.includes(entry.model)) models.push(entry.model);
    point.partial ||= entry.partial === true;
    point.cost[entry.model] = entry.cost_usd;
    point.prompt_tokens += entry.prompt_tokens;
    point.completion_tokens += entry.completion_tokens;
  }
  const points = byTime.size
    ? [...byTime.values()]
    : data.activity_timeline.map((point) => blank(point.timestamp, point.partial === true));
  return { points, models };
}

/** The series of the LLM chart in `mode`: one per model (its cost), or prompt and completion tokens. */
function llmSeries(mode, models) {
  if (mode === "tokens") {
    return [
      { key: "prompt", tone: "prompt", label: "Prompt tokens", axis: "left", value: (p) => p.prompt_tokens, format: formatInteger },
      { key: "completion", tone: "completion", label: "Completion tokens", axis: "left", value: (p) => p.completion_tokens, format: formatInteger },
    ];
  }
  return models.map((model, index) => ({
    key: model, tone: `m${(index % MODEL_TONES) + 1}`, label: model, axis: "left",
    value: (p) => p.cost[model] ?? 0, format: formatUsd,
  }));
}

function drawLlmChart() {
  if (!state.data) return;
  const { points, models } = llmPoints(state.data);
  const mode = state.llmMode;
  const cost = mode === "cost";
  let emptyText = "No answers from a model in this period";
  if (models.length && cost) emptyText = "No answer with a known cost in this period";
  if (models.length && !cost) emptyText = "No tokens counted in this period";
  renderChart($("#llm-chart"), $("#llm-chart-tooltip"), {
    points,
    series: llmSeries(mode, models),
    period: state.data.period,
    now: state.data.generated_at,
    hidden: state.llmHidden[mode],
    name: cost ? "LLM cost chart" : "LLM tokens chart",
    emptyText,
    axes: { left: cost ? { whole: false, format: formatUsdTick } : { whole: true, format: formatCompact } },
    total: cost ? { label: "All models", format: formatUsd } : { label: "All tokens", format: formatInteger },
  });
}

/** The LLM chart's legend: a toggle per series (each model's cost in the period, or the tokens of a kind). */
function renderLlmLegend(points, models) {
  const mode = state.llmMode;
  const hidden = state.llmHidden[mode];
  const series = llmSeries(mode, models);
  $("#llm-chart-series").replaceChildren(...series.map((s) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "legend-item";
    button.dataset.series = s.key;
    button.setAttribute("aria-pressed", String(!hidden.has(s.key)));
    const swatch = document.createElement("span");
    swatch.className = `legend-swatch tone-${s.tone}`;
    swatch.setAttribute("aria-hidden", "true");
    const label = document.createElement("span");
    label.className = mode === "cost" ? "legend-label legend-label--model" : "legend-label";
    label.textContent = s.label;
    const sum = points.reduce((acc, point) => acc + s.value(point), 0);
    const figure = document.createElement("span");
    figure.className = "legend-axis";
    figure.dataset.role = "sum";
    figure.textContent = s.format(sum);
    button.title = `${s.label}: ${s.format(sum)} in the period`;
    button.append(swatch, label, figure);
    return button;
  }));
}

/** The same figures as a table for screen readers: each model's cost, then the tokens by kind. */
function renderLlmTable(points, models, period) {
  const head = $("#llm-chart-table thead tr");
  const column = (text) => {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = text;
    return th;
  };
  head.replaceChildren(column("Time"), ...models.map((model) => column(`${model}: cost`)),
    column("Prompt tokens"), column("Completion tokens"));
  const valued = (value, text) => {
    const td = cell(text);
    td.dataset.value = String(value);
    return td;
  };
  $("#llm-chart-table tbody").replaceChildren(...points.map((point, index) => {
    const row = document.createElement("tr");
    const when = period === "day" ? formatDateTime(point.timestamp) : formatDateTime(point.timestamp).split(",")[0];
    row.dataset.partial = String(point.partial);
    row.append(
      cell(point.partial ? `${when} (partial ${pointUnit(period)}, ${partialWords(points, index)})` : when),
      ...models.map((model) => valued(point.cost[model] ?? 0, formatUsd(point.cost[model] ?? 0))),
      valued(point.prompt_tokens, formatInteger(point.prompt_tokens)),
      valued(point.completion_tokens, formatInteger(point.completion_tokens)),
    );
    return row;
  }));
}

/** Everything of the LLM chart's card for the response shown, in the mode chosen. */
function renderLlmChart(data) {
  const { points, models } = llmPoints(data);
  const cost = state.llmMode === "cost";
  showLlmMode();
  $("#llm-chart-title").textContent = cost ? "Cost over time by model" : "Tokens over time by kind";
  const per = `per ${pointUnit(data.period)} (UTC), ${windowWords(data)}`;
  $("#llm-chart-sub").textContent = cost
    ? `US dollars each model's answers cost ${per} · ${formatUsd(data.llm_usage.cost_usd)} in all`
    : `Prompt and completion tokens of all models ${per}`;
  renderLlmLegend(points, models);
  renderPartialNote(points, data.period, $("#llm-chart-partial-note"));
  renderLlmTable(points, models, data.period);
  drawLlmChart();
}

function showLlmMode() {
  for (const button of document.querySelectorAll("#llm-chart-mode [role=radio]")) {
    const selected = button.dataset.mode === state.llmMode;
    button.setAttribute("aria-checked", String(selected));
    button.tabIndex = selected ? 0 : -1;
  }
}

function selectLlmMode(mode, { focus = false } = {}) {
  if (!LLM_MODES.includes(mode)) return;
  if (mode !== state.llmMode) {
    state.llmMode = mode;
    if (state.data) renderLlmChart(state.data);
    else showLlmMode();
  }
  if (focus) $(`#llm-chart-mode [data-mode="${mode}"]`).focus();
}

/** The mode control (a radio group like the period's) and the legend's toggles of the LLM chart. */
function wireLlmChart() {
  const group = $("#llm-chart-mode");
  group.addEventListener("click", (event) => {
    const button = event.target.closest("[role=radio]");
    if (button) selectLlmMode(button.dataset.mode, { focus: true });
  });
  group.addEventListener("keydown", (event) => {
    const index = LLM_MODES.indexOf(state.llmMode);
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    let next = null;
    if (event.key in moves) next = LLM_MODES[(index + moves[event.key] + LLM_MODES.length) % LLM_MODES.length];
    else if (event.key === "Home") next = LLM_MODES[0];
    else if (event.key === "End") next = LLM_MODES[LLM_MODES.length - 1];
    if (next === null) return;
    event.preventDefault();
    selectLlmMode(next, { focus: true });
  });
  $("#llm-chart-series").addEventListener("click", (event) => {
    const button = event.target.closest("[data-series]");
    if (!button || !state.data) return;
    const hidden = state.llmHidden[state.llmMode];
    const key = button.dataset.series;
    const visible = hidden.has(key);
    const shown = [...document.querySelectorAll("#llm-chart-series [data-series]")]
      .filter((item) => !hidden.has(item.dataset.series));
    // Never hide every series: an empty plot would read as "nothing spent".
    if (!visible && shown.length <= 1) return;
    if (visible) hidden.delete(key);
    else hidden.add(key);
    button.setAttribute("aria-pressed", String(visible));
    drawLlmChart();
  });
}

// ---------------------------------------------------------------- top spenders

/** "$0.042 of $0.05", "1,234 of 50,000 tokens" */
function meterText(meter) {
  return meter.unit === "usd"
    ? `${formatUsd(meter.used)} of ${formatUsd(meter.limit)}`
    : `${formatInteger(meter.used)} of ${formatInteger(meter.limit)} tokens`;
}

/**
 * One budget cell of a spender: the period's dollar meter (else its tokens meter) as a bar with "used of
 * limit"; amber above 80 %, red once exhausted; "exempt", or "no limit" when no limit of the period applies.
 */
function budgetCell(spender, { period, label, words, limit }) {
  const td = document.createElement("td");
  td.className = "budget-cell";
  td.dataset.label = label;
  td.dataset.period = period;
  const note = (text, className) => {
    const span = document.createElement("span");
    span.className = className;
    span.dataset.role = "budget";
    span.textContent = text;
    return span;
  };
  if (spender.exempt) {
    td.dataset.state = "exempt";
    td.title = "No budget limit applies to this user";
    td.append(note("exempt", "tag tag--exempt"));
    return td;
  }
  const own = spender.meters.filter((m) => m.period === period);
  const meter = own.find((m) => m.unit === "usd") ?? own.find((m) => m.unit === "tokens");
  if (!meter) {
    td.dataset.state = "none";
    td.title = `No ${limit} limit applies to this user`;
    td.append(note("no limit", "muted"));
    return td;
  }
  const fraction = meter.limit > 0 ? meter.used / meter.limit : 1;
  const level = meter.exhausted ? "exhausted" : fraction > BUDGET_WARNING_SHARE ? "warning" : "ok";
  Object.assign(td.dataset, { state: level, unit: meter.unit, used: String(meter.used), limit: String(meter.limit) });
  const head = document.createElement("span");
  head.className = "budget-head";
  const share = document.createElement("span");
  share.className = "budget-share";
  share.dataset.role = "share";
  share.textContent = meter.exhausted ? "exhausted" : formatRate(fraction);
  head.append(note(meterText(meter), "budget-text"), share);
  const bar = document.createElement("span");
  bar.className = "bar budget-bar";
  bar.setAttribute("aria-hidden", "true");
  const fill = document.createElement("span");
  fill.style.width = `${Math.min(100, fraction * 100)}%`;
  bar.append(fill);
  td.append(head, bar);
  const amount = (value) => (meter.unit === "usd" ? formatUsd(value) : `${formatInteger(value)} tokens`);
  const resets = `${formatDateTime(meter.resets_at)} UTC`;
  const other = own.find((m) => m !== meter);
  const when = words.charAt(0).toUpperCase() + words.slice(1);
  td.title = `${when} (UTC): ${amount(meter.used)} used of the ${amount(meter.limit)} ${limit} limit, ` +
    `${amount(meter.left)} left; ` +
    (meter.exhausted ? `exhausted: the user's next message is refused until ${resets}` : `resets ${resets}`) +
    (other ? `. Tokens: ${meterText(other)}` : "");
  return td;
}

/** Up to 10 users whose answers cost most in the period, most first, with their budgets now. */
function renderTopSpenders(spenders) {
  const body = $("#top-spenders tbody");
  body.replaceChildren(...spenders.map((spender) => {
    const row = document.createElement("tr");
    row.dataset.userId = String(spender.user_id);
    const user = document.createElement("th");
    user.scope = "row";
    const id = document.createElement("span");
    id.className = "user-id";
    id.textContent = String(spender.user_id);
    id.title = `Telegram user ${spender.user_id}`;
    user.append(id);
    const cost = cell(formatUsd(spender.cost_usd), "num");
    cost.dataset.label = "Cost in period";
    cost.dataset.role = "cost";
    cost.dataset.value = String(spender.cost_usd);
    cost.title = "What this user's answers in the period cost (those whose cost is known)";
    const messages = cell(formatInteger(spender.total_messages), "num");
    messages.dataset.label = "Messages";
    messages.dataset.role = "messages";
    messages.title = "The user's messages in the period, theirs and the bot's";
    row.append(user, cost, messages, ...BUDGET_PERIODS.map((period) => budgetCell(spender, period)));
    return row;
  }));
  setEmpty("top-spenders", spenders.length === 0);
}

/** DAU, WAU, MAU and stickiness: always the last 24 h, 7 × 24 h and 30 × 24 h ending now, whatever the period. */
function renderAudience(audience) {
  for (const tile of document.querySelectorAll(".stat[data-audience]")) {
    const key = tile.dataset.audience;
    const value = audience[key];
    const valueNode = $("[data-role=value]", tile);
    valueNode.textContent = key === "stickiness" ? formatShare(value) : formatInteger(value);
    valueNode.dataset.value = String(value);
  }
  const daily = formatInteger(audience.daily_active_users);
  const monthly = formatInteger(audience.monthly_active_users);
  const stickiness = $('.stat[data-audience="stickiness"]');
  $("[data-role=foot]", stickiness).textContent = audience.monthly_active_users
    ? `${daily} of the ${monthly} monthly active users`
    : "no monthly active users yet";
  stickiness.title = `Daily active users divided by monthly active users: ${daily} of the ${monthly} users with ` +
    "messages in the last 30 × 24 h had messages in the last 24 h";
}

/** One day-N cell of a signup week: "50% (1 of 2)", or a dash while no user of the week has reached day N. */
function retentionCell(figures, n, users) {
  const td = document.createElement("td");
  td.className = "retention-day";
  td.dataset.label = `Day ${n}`;
  td.dataset.day = `d${n}`;
  if (figures.rate === null) {
    const why = users === 0 ? "no users were first seen that week" : `not yet: no user's day ${n} has ended`;
    const dash = document.createElement("span");
    dash.className = "retention-none";
    dash.setAttribute("aria-hidden", "true");
    dash.textContent = "—";
    const words = document.createElement("span");
    words.className = "visually-hidden";
    words.textContent = why;
    td.dataset.rate = "none";
    td.title = why.charAt(0).toUpperCase() + why.slice(1);
    td.append(dash, words);
    return td;
  }
  const { eligible_users: eligible, retained_users: retained } = figures;
  const rate = document.createElement("span");
  rate.className = "heat";
  rate.dataset.role = "rate";
  rate.style.setProperty("--rate", String(figures.rate)); // the tint (CSSOM, not an inline style attribute)
  rate.textContent = formatRate(figures.rate);
  const counts = document.createElement("span");
  counts.className = "retention-counts";
  counts.dataset.role = "counts";
  counts.textContent = `(${formatInteger(retained)} of ${formatInteger(eligible)})`;
  td.dataset.rate = String(figures.rate);
  const waiting = users - eligible;
  td.title = `${formatInteger(retained)} of the ${formatInteger(eligible)} users whose day ${n} has ended came back ` +
    `on it${waiting > 0 ? `; ${formatInteger(waiting)} more have not reached day ${n} yet` : ""}`;
  td.append(rate, " ", counts);
  return td;
}

/** The last 8 signup weeks, oldest first (the current one last): users, then day 1, 7 and 30. */
function renderRetention(cohorts) {
  const body = $("#retention tbody");
  body.replaceChildren(...cohorts.map((cohort, index) => {
    const row = document.createElement("tr");
    row.dataset.cohortStart = cohort.cohort_start;
    const week = document.createElement("th");
    week.scope = "row";
    const start = document.createElement("time");
    start.dateTime = cohort.cohort_start.slice(0, 10);
    start.textContent = formatDate(cohort.cohort_start);
    const sunday = new Date(new Date(cohort.cohort_start).getTime() + WEEK_MS - 1);
    week.title = `Users first seen from Monday ${formatDate(cohort.cohort_start)} to Sunday ${formatDate(sunday)} (UTC)`;
    week.append(start);
    if (index === cohorts.length - 1) {
      row.dataset.current = "true";
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "this week";
      week.append(" ", tag);
    }
    const users = cell(formatInteger(cohort.users), "num");
    users.dataset.label = "Users";
    users.dataset.role = "users";
    row.append(week, users, ...RETENTION_DAYS.map((n) => retentionCell(cohort[`d${n}`], n, cohort.users)));
    return row;
  }));
  setEmpty("retention", cohorts.length === 0);
}

function renderChartTable(timeline, period) {
  const body = $("#chart-table tbody");
  body.replaceChildren(...timeline.map((point, index) => {
    const row = document.createElement("tr");
    const when = period === "day" ? formatDateTime(point.timestamp) : formatDateTime(point.timestamp).split(",")[0];
    row.dataset.partial = String(point.partial === true);
    row.append(
      cell(point.partial ? `${when} (partial ${pointUnit(period)}, ${partialWords(timeline, index)})` : when),
      cell(String(point.message_count)),
      cell(String(point.active_users)),
    );
    return row;
  }));
}

function drawChart() {
  if (!state.data) return;
  renderActivityChart($("#chart"), $("#chart-tooltip"), {
    timeline: state.data.activity_timeline,
    period: state.data.period,
    now: state.data.generated_at,
    hidden: state.hiddenSeries,
  });
}

/** "the last 7 × 24 h" (rolling), "the 7 days ending today" (calendar). */
function windowWords(data) {
  const length = windowLength(data.period, data.window);
  if (data.window !== "calendar") return `the last ${length}`;
  return `the ${length} ending ${data.period === "day" ? "with the current hour" : "today"}`;
}

/** A legend's note on partial points (from the API's flags), hidden when there is none. */
function renderPartialNote(timeline, period, note) {
  const indexes = timeline.flatMap((point, index) => (point.partial ? [index] : []));
  note.hidden = indexes.length === 0;
  if (indexes.length === 0) return;
  const unit = pointUnit(period);
  const words = indexes.map((index) => partialWords(timeline, index));
  $("[data-role=text]", note).textContent = indexes.length === 1
    ? `Dashed: partial ${unit}, ${words[0]}`
    : `Dashed: partial ${unit}s (${words.join("; ")})`;
  note.title = `Hollow points and dashed lines mark ${unit}s not covered in full: ` +
    indexes.map((index) => (index === 0 && timeline.length > 1
      ? `the first starts at the window's start (${formatTime(timeline[0].timestamp)} UTC)`
      : `the current ${unit} counts up to now`)).join(", ");
}

function render(data, view) {
  const { period } = data;
  const overview = $("#overview");
  overview.classList.remove("is-initial");
  overview.dataset.period = view.period;
  overview.dataset.window = view.window;
  overview.dataset.generatedAt = data.generated_at;
  renderCards(data);
  drawChart();
  renderPartialNote(data.activity_timeline, period, $("#chart-partial-note"));
  renderChartTable(data.activity_timeline, period);
  renderTopUsers(data.top_users, data.generated_at);
  renderRecentDialogs(data.recent_dialogs, data.previews_enabled, data.generated_at);
  renderLlmUsage(data.llm_usage);
  renderLlmChart(data);
  renderTopSpenders(data.top_spenders);
  renderAudience(data.audience);
  renderRetention(data.retention);
  const databaseEmpty = data.summary.total_users === 0 && data.summary.total_messages === 0;
  $("#empty-hint").hidden = !databaseEmpty;
  $("#activity-sub").textContent =
    `Messages and active users per ${pointUnit(period)} (UTC), ${windowWords(data)}`;
  $("#updated-at").textContent = `Updated ${formatTime(data.generated_at)} UTC`;
  const against = comparison(data);
  $("#period-footer").textContent =
    `Figures for ${windowWords(data)}, ${formatSpan(data.period_start, data.period_end)}` +
    `${data.window === "calendar" ? " (so far)" : ""}, compared with ${against.words}, ${against.span}.`;
}

// ---------------------------------------------------------------- sign in / out

function signOut(message = "", kind = "error") {
  state.controller?.abort();
  state.sequence += 1;
  state.credentials = null;
  clearCredentials();
  $("#login-password").value = "";
  showLogin(message, { kind });
}

async function submitLogin(event) {
  event.preventDefault();
  const username = $("#login-username").value.trim();
  const password = $("#login-password").value;
  const message = $("#login-message");
  if (!username || !password) {
    message.textContent = "Enter your username and password.";
    message.dataset.kind = "error";
    message.hidden = false;
    return;
  }
  const button = $("#login-submit");
  button.disabled = true;
  button.textContent = "Signing in…";
  const credentials = makeCredentials(username, password);
  const result = await fetchStats(state.period, state.window, credentials);
  button.disabled = false;
  button.textContent = "Sign in";
  const refuse = (text) => {
    message.textContent = text;
    message.dataset.kind = "error";
    message.hidden = false;
  };
  switch (result.kind) {
    case "ok":
      state.credentials = credentials;
      saveCredentials(credentials);
      $("#login-password").value = "";
      message.hidden = true;
      showDashboard();
      setLoading(false);
      handleResult(result, { period: state.period, window: state.window });
      break;
    case "unauthorized":
      refuse("Wrong username or password.");
      $("#login-password").select();
      break;
    case "rate_limited":
      refuse(`Too many requests, retry in ${result.retryAfter} s.`);
      break;
    case "unreachable":
      refuse("Cannot reach the API. Check your connection and try again.");
      break;
    case "unavailable":
      refuse(`The API cannot reach its database right now, retry in ${result.retryAfter} s.`);
      break;
    default:
      refuse(`Unexpected answer from the API (HTTP ${result.status}).`);
  }
}

// ---------------------------------------------------------------- CSV exports

/** Download one table of the current period and window as CSV (the same figures the page shows). */
async function downloadExport(button) {
  if (!state.credentials) return;
  button.disabled = true;
  const result = await fetchExport(button.dataset.export, state.period, state.window, state.credentials);
  button.disabled = false;
  switch (result.kind) {
    case "ok": {
      const url = URL.createObjectURL(result.blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = result.filename;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      break;
    }
    case "unauthorized":
      signOut("Your session has ended: the server no longer accepts these credentials. Please sign in again.");
      break;
    case "rate_limited":
      setBanner(`Too many requests: the download can be retried in ${result.retryAfter} s.`, { tone: "warning" });
      break;
    case "unreachable":
      setBanner("Cannot reach the API to download the table. Check your connection.", { retry: false });
      break;
    default:
      setBanner(`The download failed (HTTP ${result.status})${result.detail ? `: ${result.detail}` : ""}.`);
  }
}

function wireExports() {
  for (const button of document.querySelectorAll("[data-export]")) {
    button.addEventListener("click", () => downloadExport(button));
  }
}

// ---------------------------------------------------------------- start

function wireLegend() {
  $("#chart-legend").addEventListener("click", (event) => {
    const button = event.target.closest("[data-series]");
    if (!button) return;
    const key = button.dataset.series;
    const visible = state.hiddenSeries.has(key);
    // Never hide both: an empty plot would read as "no activity".
    if (!visible && state.hiddenSeries.size === 1) return;
    if (visible) state.hiddenSeries.delete(key);
    else state.hiddenSeries.add(key);
    button.setAttribute("aria-pressed", String(visible));
    drawChart();
  });
}

function start() {
  Object.assign(state, viewFromUrl());
  writeViewToUrl({ replace: true });
  wireViewControls();
  wireLegend();
  wireLlmChart();
  wireExports();
  $("#login-form").addEventListener("submit", submitLogin);
  $("#logout-button").addEventListener("click", () => signOut("You have signed out.", "info"));
  $("#refresh-button").addEventListener("click", () => load());
  $("#banner-retry").addEventListener("click", () => load());
  // Back to a tab left alone for a while: refresh at once instead of at the next tick.
  document.addEventListener("visibilitychange", () => {
    const stale = Date.now() - state.loadedAt > AUTO_REFRESH_SECONDS * 1000;
    if (document.visibilityState === "visible" && state.credentials && !state.countdown && stale) load({ quiet: true });
  });
  let resizeFrame = 0;
  const resized = new ResizeObserver(() => {
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(() => {
      drawChart();
      drawLlmChart();
    });
  });
  resized.observe($("#chart"));
  resized.observe($("#llm-chart"));
  state.credentials = loadCredentials();
  if (state.credentials) {
    showDashboard();
    load();
  } else {
    showLogin();
  }
}

start();
