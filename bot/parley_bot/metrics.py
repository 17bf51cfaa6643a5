"""Prometheus metrics of the bot, all listed in docs/metrics.md.

Label values are bounded sets (model names from settings, fixed error types), never user data.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# The first metrics of the bot: dashboards and alerts use these names and labels, so they stay as they are.
LLM_REQUEST_DURATION = Histogram(
    "llm_request_duration_seconds",
    "Duration of one LLM request (one attempt), by model and outcome.",
    ["model", "status"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
LLM_REQUESTS = Counter("llm_requests_total", "LLM requests (attempts) sent, by model.", ["model"])
LLM_ERRORS = Counter(
    "llm_errors_total", "Failed LLM requests, by model and error type.", ["model", "error_type"]
)
LLM_FALLBACK_USED = Counter(
    "llm_fallback_used_total", "User messages for which the fallback model was tried."
)
TELEGRAM_MESSAGES_RECEIVED = Counter(
    "telegram_messages_received_total", "Messages received from Telegram users."
)
TELEGRAM_MESSAGES_SENT = Counter("telegram_messages_sent_total", "Messages the bot sent to Telegram.")

# Parley's additions (documented in docs/metrics.md).
LLM_TOKENS = Counter(
    "llm_tokens_total", "Tokens used, by model and kind (prompt/completion).", ["model", "kind"]
)
LLM_COST = Counter(
    "llm_cost_usd_total",
    "US dollars spent, by model: the gateway's reported cost, else the LLM_PRICES estimate.",
    ["model"],
)
LLM_CIRCUIT_OPEN = Gauge("llm_circuit_open", "1 while the model's circuit breaker skips it.", ["model"])
BOT_REPLY_DURATION = Histogram(
    "bot_reply_duration_seconds",
    "From storing a text message to its stored reply being sent, by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
BOT_UPDATES_DUPLICATE = Counter(
    "bot_updates_duplicate_total", "Updates ignored because they were seen before."
)
BOT_RATE_LIMITED = Counter(
    "bot_rate_limited_total", "Turns that waited for the per-user rate limit (their messages stay queued)."
)
BOT_UPDATES_DEFERRED = Counter(
    "bot_updates_deferred_total",
    "Updates not confirmed to Telegram because they could not be stored (database unavailable); "
    "Telegram delivers them again.",
)
BOT_INTAKE_PAUSED = Gauge(
    "bot_intake_paused", "1 while polling waits for the database before confirming updates (polling mode)."
)
BOT_TURNS_RESUMED = Counter(
    "bot_turns_resumed_total",
    "Users whose queued messages or unsent replies were picked up after their process stopped.",
)
BOT_MESSAGES_STALE = Counter(
    "bot_messages_stale_total",
    'Messages told "could not answer in time" because they waited longer than BOT_STALE_MESSAGE_SECONDS.',
)
BOT_MESSAGES_COALESCED = Counter(
    "bot_messages_coalesced_total", "Messages answered together with an earlier one in the same turn."
)
BOT_MESSAGES_REFUSED = Counter(
    "bot_messages_refused_total", "Messages not taken (and told so) because the user's queue was full."
)
BOT_REPLIES_UNDELIVERABLE = Counter(
    "bot_replies_undeliverable_total",
    "Stored replies dropped because Telegram refused them for good (bot blocked, chat gone) or kept failing.",
)
BOT_BUDGET_REFUSALS = Counter(
    "bot_budget_refusals_total",
    "Turns refused because a budget was used up, by the limit's period (day/month) and unit (tokens/usd).",
    ["period", "unit"],
)
BOT_BUDGET_WARNINGS = Counter(
    "bot_budget_warnings_total",
    "Users told an answer took a budget to BUDGET_WARN_PERCENT, by period and unit.",
    ["period", "unit"],
)
# Every (period, unit) series exists from the start at 0, so rate() and alerts see the first refusal.
for _period in ("day", "month"):
    for _unit in ("tokens", "usd"):
        BOT_BUDGET_REFUSALS.labels(period=_period, unit=_unit)
        BOT_BUDGET_WARNINGS.labels(period=_period, unit=_unit)
BOT_ANSWERS_STOPPED = Counter(
    "bot_answers_stopped_total",
    "Answers a user stopped while they were being written (draft stop or Stop button).",
)
BOT_RETRIES = Counter("bot_retries_total", "/retry commands that queued the last question again.")
BOT_MODEL_CHOICES = Counter(
    "bot_model_choices_total", "Models users picked with /model (the default model included).", ["model"]
)
BOT_MODEL_WITHDRAWN = Counter(
    "bot_model_withdrawn_total",
    "Turns of users whose /model choice had left LLM_MODEL_CHOICES: answered with LLM_MODEL, and told so.",
)
BOT_SUMMARIES = Counter(
    "bot_summaries_total",
    "Long histories folded into a stored summary before an answer, by outcome (stored, failed).",
    ["outcome"],
)
for _outcome in ("stored", "failed"):  # both series from the start, like the budgets' above
    BOT_SUMMARIES.labels(outcome=_outcome)
BOT_ACCESS_DENIED = Counter("bot_access_denied_total", "Messages from users outside the allowlist.")
BOT_INFLIGHT_UPDATES = Gauge("bot_inflight_updates", "Updates being handled right now.")
BOT_LAST_SUCCESSFUL_POLL = Gauge(
    "bot_update_loop_last_success_timestamp_seconds",
    "Unix time of the last successful getUpdates call (polling mode; stays 0 in webhook mode).",
)
DATABASE_UP = Gauge(
    "database_up",
    "1 while this process's statements reach PostgreSQL, 0 from a failure for lack of the database "
    "until the next statement that works (heartbeats run every BOT_HEARTBEAT_SECONDS).",
)
WEBHOOK_PENDING_UPDATES = Gauge(
    "bot_webhook_pending_updates",
    "Updates Telegram holds for the webhook, as getWebhookInfo reports (webhook mode only).",
)
WEBHOOK_LAST_ERROR = Gauge(
    "bot_webhook_last_error_timestamp_seconds",
    "Unix time of Telegram's last failed delivery to the webhook (getWebhookInfo; 0: none reported).",
)
WEBHOOK_REGISTERED = Gauge(
    "bot_webhook_registered",
    "1 while getWebhookInfo reports this bot's webhook URL, 0 when another URL (or none) is set.",
)
WEBHOOK_LAST_RECEIVED = Gauge(
    "bot_webhook_last_received_timestamp_seconds",
    "Unix time this process last accepted an update from the webhook (its start until the first one).",
)
TELEGRAM_RETRY_AFTER = Counter(
    "telegram_flood_waits_total",
    "429 answers from Telegram honoured by waiting retry_after, by method.",
    ["method"],
)
TELEGRAM_SEND_ERRORS = Counter(
    "telegram_send_errors_total",
    "Telegram calls that failed for good, by method and reason.",
    ["method", "reason"],
)
TELEGRAM_RICH_FALLBACK = Counter(
    "telegram_rich_message_fallback_total",
    "Parts with a table sent as HTML after Telegram refused them as a rich message.",
)
TELEGRAM_FORMAT_FALLBACK = Counter(
    "telegram_format_fallback_total", "Replies re-sent as plain text after Telegram rejected their HTML."
)
