"""The one place that knows Telegram's limits: message length, HTML, pacing, flood waits, streaming."""

from parley_bot.telegram.output import TelegramOutput
from parley_bot.telegram.pacing import Pacer
from parley_bot.telegram.streaming import ReplyStream, StreamMode

__all__ = ["Pacer", "ReplyStream", "StreamMode", "TelegramOutput"]
