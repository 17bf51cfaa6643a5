// Formatting of figures, changes, times and durations. Times are shown in UTC, like the API's buckets.

const LOCALE = "en-US";
const integer = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const twoDecimals = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat(LOCALE, { notation: "compact", maximumFractionDigits: 1 });
const dollars = new Intl.NumberFormat(LOCALE, { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });
const cents = new Intl.NumberFormat(LOCALE, { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 4 });
const dollarTicks = new Intl.NumberFormat(LOCALE, {
  style: "currency", currency: "USD", notation: "compact", maximumSignificantDigits: 3,
});
const hourFormat = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC" });
const dayFormat = new Intl.DateTimeFormat(LOCALE, { month: "short", day: "numeric", timeZone: "UTC" });
const dateTimeFormat = new Intl.DateTimeFormat(LOCALE, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC",
});

/**
 * The length of a period's window, as the comparison names it: a rolling window is a number of 24-hour
 * spans ending now, a calendar one whole UTC hours or days ending with the current one.
 */
const WINDOW_LENGTH = {
  rolling: { day: "24 h", week: "7 × 24 h", month: "30 × 24 h" },
  calendar: { day: "24 hours", week: "7 days", month: "30 days" },
};

/** "7 × 24 h" (rolling week), "7 days" (calendar week), … */
export function windowLength(period, mode) {
  return (WINDOW_LENGTH[mode] ?? WINDOW_LENGTH.rolling)[period] ?? period;
}

/** The unit of one timeline point: "hour" for `day`, "day" otherwise. */
export function pointUnit(period) {
  return period === "day" ? "hour" : "day";
}

/**
 * How the partial point `index` of `timeline` (its `partial` flag comes from the API) is partial:
 * "from 14:37" for a rolling window's first point, which starts at the window's start, else "so far"
 * (the current hour or day, which ends now).
 */
export function partialWords(timeline, index) {
  return index === 0 && timeline.length > 1 ? `from ${formatTime(timeline[0].timestamp)}` : "so far";
}

/** 12,345 */
export function formatInteger(value) {
  return integer.format(value);
}

/** Figures of the summary cards: counts as integers, ratios with their decimals. */
export function formatFigure(metric, value) {
  if (metric === "avg_message_length") return oneDecimal.format(value);
  if (metric === "messages_per_active_user") return twoDecimals.format(value);
  return integer.format(value);
}

/** 12.3% from a share in [0, 1]. */
export function formatShare(share) {
  return `${oneDecimal.format(share * 100)}%`;
}

/**
 * A retention rate in [0, 1] as a whole percent: 50%. A rate above 0 never reads "0%" and one below 1
 * never "100%" ("<1%", ">99%"): the counts beside it say how many exactly.
 */
export function formatRate(rate) {
  if (rate > 0 && rate < 0.005) return "<1%";
  if (rate < 1 && rate >= 0.995) return ">99%";
  return `${integer.format(rate * 100)}%`;
}

/** Axis ticks: 950, 1.2K, 15K. */
export function formatCompact(value) {
  return compact.format(value);
}

/**
 * US dollars: $12.34 from a dollar up; below, up to four decimals ($0.0375), since one answer costs a
 * fraction of a cent; "<$0.0001" for less than that but more than nothing.
 */
export function formatUsd(value) {
  if (value > 0 && value < 0.00005) return "<$0.0001";
  return (value >= 1 ? dollars : cents).format(value);
}

/** A dollar axis's ticks: $0, $0.005, $0.01, $1.5K. */
export function formatUsdTick(value) {
  return dollarTicks.format(value);
}

/** 840 ms, 1.3 s */
export function formatLatency(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${integer.format(ms)} ms` : `${oneDecimal.format(ms / 1000)} s`;
}

/** 45 min, 2 h 5 min, 1 d 3 h */
export function formatDuration(minutes) {
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

/** A bucket's label on the time axis: the hour for `day`, the date otherwise. */
export function formatBucket(timestamp, period) {
  const date = new Date(timestamp);
  return period === "day" ? hourFormat.format(date) : dayFormat.format(date);
}

/** Nov 26 (the UTC day) */
export function formatDate(timestamp) {
  return dayFormat.format(new Date(timestamp));
}

/** Nov 26, 14:05 (UTC) */
export function formatDateTime(timestamp) {
  return dateTimeFormat.format(new Date(timestamp));
}

/** 14:05 (UTC) */
export function formatTime(timestamp) {
  return hourFormat.format(new Date(timestamp));
}

/** "Nov 26, 14:05 – Dec 3, 14:05 UTC": a window from `start` (inclusive) to `end`. */
export function formatSpan(start, end) {
  return `${formatDateTime(start)} – ${formatDateTime(end)} UTC`;
}

/** "5 min ago", measured against the server's clock (`now`), not the browser's. */
export function formatAgo(timestamp, now) {
  const seconds = Math.max(0, (new Date(now) - new Date(timestamp)) / 1000);
  if (seconds < 60) return "just now";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

/**
 * The change of `current` against `previous`:
 * {direction: "up" | "down" | "flat", text: "+12.5%", words: "up 12.5%"}.
 */
export function describeChange(current, previous) {
  if (current === previous) return { direction: "flat", text: "0%", words: "unchanged" };
  if (previous === 0) return { direction: "up", text: "new", words: "up from zero" };
  const percent = ((current - previous) / previous) * 100;
  const magnitude = Math.abs(percent) >= 100 ? integer.format(Math.abs(percent)) : oneDecimal.format(Math.abs(percent));
  if (magnitude === "0.0") return { direction: "flat", text: "0%", words: "unchanged" };
  return percent > 0
    ? { direction: "up", text: `+${magnitude}%`, words: `up ${magnitude}%` }
    : { direction: "down", text: `−${magnitude}%`, words: `down ${magnitude}%` };
}
