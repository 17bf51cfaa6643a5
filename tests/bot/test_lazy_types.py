"""aiogram's Telegram types are built on first use, and then validate exactly as aiogram's eager build.

Each check runs in a fresh interpreter: whether aiogram was imported before parley_bot decides the mode.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from parley_bot import lazy_types

NESTED_UPDATE = """{
    "update_id": 7,
    "message": {
        "message_id": 2, "date": 0, "text": "/start hi",
        "chat": {"id": 1, "type": "private"},
        "from": {"id": 1, "is_bot": False, "first_name": "Ada"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        "reply_to_message": {
            "message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"},
            "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}],
        },
    },
}"""

CHECK = f"""
from aiogram.methods import Response, SendMessage
from aiogram.types import Message, PhotoSize, Poll, Update, LinkPreviewOptions
update = Update.model_validate({NESTED_UPDATE})
assert isinstance(update.message, Message)
assert isinstance(update.message.reply_to_message.photo[0], PhotoSize)
assert update.message.entities[0].extract_from(update.message.text) == "/start"
sent = SendMessage(chat_id=1, text="x", link_preview_options=LinkPreviewOptions(is_disabled=True))
assert sent.model_dump(exclude_none=True)["link_preview_options"]["is_disabled"] is True
answer = Response[Message].model_validate(
    {{"ok": True, "result": {{"message_id": 3, "date": 0, "chat": {{"id": 1, "type": "private"}}}}}}
)
assert answer.result.message_id == 3
try:
    Update.model_validate({{"update_id": "not a number"}})
except ValueError:
    pass
else:
    raise AssertionError("invalid update accepted")
print("lazy" if not Poll.__pydantic_complete__ else "eager")
"""


def run(prelude: str) -> str:
    """Run CHECK after ``prelude`` in a new interpreter; returns what it printed."""
    code = textwrap.dedent(prelude) + CHECK
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_types_are_built_on_first_use_when_parley_bot_comes_first() -> None:
    assert run("import parley_bot.__main__\n") == "lazy"


def test_aiogram_imported_first_keeps_its_eager_build() -> None:
    assert run("import aiogram.types\nimport parley_bot.__main__\n") == "eager"


def test_the_bot_tests_run_with_lazily_built_types_as_production_does() -> None:
    assert lazy_types.active()  # conftest imports parley_bot before anything imports aiogram
