"""How updates come in: polling or webhook, each confirming an update only once it is accepted."""

from parley_bot.intake.acceptance import Acceptance, AcceptanceMiddleware
from parley_bot.intake.polling import PollingIntake
from parley_bot.intake.webhook import add_webhook_route
from parley_bot.intake.webhook_watch import WebhookWatch

__all__ = ["Acceptance", "AcceptanceMiddleware", "PollingIntake", "WebhookWatch", "add_webhook_route"]
