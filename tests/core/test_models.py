"""The schema's rules, enforced by PostgreSQL itself."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from parley_core.models import ApiUser, ApiUserSource, Message, MessageRole, User, UserSettings


async def test_user_with_messages_and_settings_round_trip(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        session.add(User(id=10**12, username="big_id", language_code="en"))
        await session.flush()
        session.add_all(
            [
                UserSettings(user_id=10**12, system_prompt="Be brief."),
                Message(user_id=10**12, role=MessageRole.USER, content="hi", content_length=2),
            ]
        )
    async with sessions() as session:
        settings = await session.get(UserSettings, 10**12)
        message = (await session.scalars(select(Message))).one()
    assert settings is not None
    assert settings.max_history_messages == 20
    assert message.role is MessageRole.USER
    assert message.fallback_used is False
    assert message.deleted_at is None
    assert message.created_at.tzinfo is not None


async def test_deleting_a_user_cascades(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine)
    async with sessions() as session, session.begin():
        session.add(User(id=1))
        await session.flush()
        session.add(Message(user_id=1, role=MessageRole.USER, content="x", content_length=1))
    async with sessions() as session, session.begin():
        await session.execute(delete(User).where(User.id == 1))
    async with sessions() as session:
        assert (await session.scalars(select(Message))).all() == []


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO messages (user_id, role, content, content_length) VALUES (1, 'robot', 'x', 1)",
        "INSERT INTO messages (user_id, role, content, content_length) VALUES (1, 'user', 'x', -1)",
        "INSERT INTO user_settings (user_id, max_history_messages) VALUES (1, 0)",
        "INSERT INTO api_users (username, password_hash, source) VALUES ('a', 'h', 'operator')",
        "INSERT INTO api_users (username, password_hash, source) VALUES ('a', 'h', 'magic')",
    ],
)
async def test_constraints_reject_bad_rows(engine: AsyncEngine, sql: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO users (id) VALUES (1)"))
    with pytest.raises((IntegrityError, DBAPIError)):
        async with engine.begin() as conn:
            await conn.execute(text(sql))


async def test_api_usernames_are_unique(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine)
    async with sessions() as session, session.begin():
        session.add(ApiUser(username="alice", password_hash="h", source=ApiUserSource.REGISTRATION))
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            session.add(
                ApiUser(
                    username="alice",
                    password_hash="h2",
                    source=ApiUserSource.OPERATOR,
                    owner_namespace="ns",
                    owner_name="alice",
                    owner_uid="uid-1",
                )
            )
