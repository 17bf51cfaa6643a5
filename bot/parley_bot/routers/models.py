"""/model: pick the model that answers you from the allowlist, with an inline keyboard."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_bot import metrics
from parley_bot.filters import AddressedToBot, IsCommand
from parley_bot.i18n import N_, _
from parley_bot.incoming import FromUser, profile_of
from parley_bot.services import models, preferences
from parley_bot.telegram import TelegramOutput
from parley_bot.telegram.formatting import escape
from parley_core.logging import get_logger
from parley_core.settings import BotSettings

log = get_logger(__name__)

LIST_CHANGED = N_("That list is out of date. Send /model again.")


def model_keyboard(settings: BotSettings, current: str) -> InlineKeyboardMarkup:
    """One button per offered model, the current one ticked."""
    rows = []
    for index, model in enumerate(settings.offered_models):
        label = _("{model} (default)").format(model=model) if model == settings.llm_model else model
        if model == current:
            label = f"✓ {label}"
        rows.append([InlineKeyboardButton(text=label, callback_data=models.button_data(index, model))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def command_model_handler(
    message: Message, *, user: User, engine: AsyncEngine, settings: BotSettings, output: TelegramOutput
) -> None:
    """Show the user's model and the ones they may pick."""
    current = await preferences.effective_settings(engine=engine, settings=settings, user_id=user.id)
    model = models.for_turn(current.model, settings).primary or settings.llm_model
    if len(settings.offered_models) < 2:
        await output.send_html(
            message.chat.id,
            _(
                "I answer with <code>{model}</code> (<code>{fallback}</code> when it fails); "
                "no other model is offered."
            ).format(model=escape(model), fallback=escape(settings.llm_fallback_model)),
        )
        return
    await output.send_html(
        message.chat.id,
        _(
            "Your model: <code>{model}</code>. Pick the one that should answer you "
            "(<code>{fallback}</code> stays the fallback when it fails):"
        ).format(model=escape(model), fallback=escape(settings.llm_fallback_model)),
        keyboard=model_keyboard(settings, model),
    )


async def model_button_handler(
    callback: CallbackQuery, *, engine: AsyncEngine, settings: BotSettings, output: TelegramOutput
) -> None:
    """Store the model a button names (for the user who pressed it)."""
    model = models.model_of_button(callback.data or "", settings)
    if model is None:
        await output.answer_callback(callback.id, _(LIST_CHANGED))
        return
    await models.set_model(
        engine=engine,
        profile=profile_of(callback.from_user),
        model=None if model == settings.llm_model else model,
    )
    metrics.BOT_MODEL_CHOICES.labels(model=model).inc()
    log.info("model_chosen", model=model)
    await output.answer_callback(callback.id, _("Model: {model}").format(model=model))
    if callback.message is not None:
        await output.edit_html(
            callback.message.chat.id,
            callback.message.message_id,
            _("OK — <code>{model}</code> answers you from now on. /model changes it.").format(
                model=escape(model)
            ),
        )


def create_router() -> Router:
    """/model, and presses of its buttons."""
    router = Router(name=__name__)
    router.message.register(
        command_model_handler, IsCommand(), AddressedToBot(), FromUser(), Command("model")
    )
    router.callback_query.register(model_button_handler, F.data.startswith(models.BUTTON_PREFIX))
    return router
