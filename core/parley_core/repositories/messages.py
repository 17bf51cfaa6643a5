"""Conversation messages: soft deletes (/reset) and reads for inspection.

The statements of a bot turn — storing a user's message, its answer and their delivery — are in
``turns``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley_core.models import HistorySummary, InboxMessage, Message, OutboxReply


async def soft_delete_history(conn: AsyncConnection, *, user_id: int) -> int:
    """Mark every live message of the user deleted (/reset); returns how many.

    Messages still waiting for an answer and replies not yet sent are dropped with them: what the
    user asked to forget is neither answered nor sent. The summary of the conversation goes too.
    """
    await conn.execute(delete(HistorySummary).where(HistorySummary.user_id == user_id))
    await conn.execute(delete(InboxMessage).where(InboxMessage.user_id == user_id))
    await conn.execute(delete(OutboxReply).where(OutboxReply.user_id == user_id))
    result = await conn.execute(
        update(Message)
        .where(Message.user_id == user_id, Message.deleted_at.is_(None))
        .values(deleted_at=func.now())
    )
    return result.rowcount


async def live_messages(conn: AsyncConnection, *, user_id: int) -> Sequence[Message]:
    """Every non-deleted message of the user, oldest first (for inspection and tests)."""
    rows = await conn.execute(
        select(Message.__table__)
        .where(Message.user_id == user_id, Message.deleted_at.is_(None))
        .order_by(Message.created_at)
    )
    return [Message(**row._mapping) for row in rows]
