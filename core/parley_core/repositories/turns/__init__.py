"""The bot's durable turns: accept a message, claim a user's work, store an answer, count what was sent.

A user's text message is *accepted* by one statement that remembers its update id, stores it in
``messages`` and queues it in ``bot_inbox`` — only then is Telegram told it arrived. A *turn* is
one LLM answer to the queued messages of one user; it belongs to whichever bot process holds the
user's lease (``users.lease_holder``, a ``bot_instances`` id). The answer is stored together with
a ``bot_outbox`` row before anything is sent; each part Telegram accepts is counted there, so a
turn resumed after a crash sends only what is missing.

Every function is one statement, safe on an AUTOCOMMIT connection. In the common case a message
costs three: :func:`accept_message` (which also takes the lease and loads the history),
:func:`finish_turn` after the LLM, :func:`record_delivery` after Telegram accepted the answer.
"""

from parley_core.repositories.turns.answers import finish_turn, record_preview, record_transcript
from parley_core.repositories.turns.lease import release_lease
from parley_core.repositories.turns.outbox import (
    forget_replies,
    postpone_delivery,
    record_delivery,
    record_part,
)
from parley_core.repositories.turns.records import (
    Accepted,
    AcceptStatus,
    Attachment,
    AttachmentKind,
    Delivered,
    HistoryMessage,
    LeaseTerms,
    OutboxItem,
    PendingMessage,
    ReplyDraft,
    StoredAnswer,
    UserWork,
)
from parley_core.repositories.turns.retry import Retry, retry_last_answer
from parley_core.repositories.turns.summaries import Summary, Unsummarised, store_summary, unsummarised
from parley_core.repositories.turns.work import accept_message, claim_work

__all__ = [
    "AcceptStatus",
    "Accepted",
    "Attachment",
    "AttachmentKind",
    "Delivered",
    "HistoryMessage",
    "LeaseTerms",
    "OutboxItem",
    "PendingMessage",
    "ReplyDraft",
    "Retry",
    "StoredAnswer",
    "Summary",
    "Unsummarised",
    "UserWork",
    "accept_message",
    "claim_work",
    "finish_turn",
    "forget_replies",
    "postpone_delivery",
    "record_delivery",
    "record_part",
    "record_preview",
    "record_transcript",
    "release_lease",
    "retry_last_answer",
    "store_summary",
    "unsummarised",
]
