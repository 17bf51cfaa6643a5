"""What the bot decides: plain async functions with keyword-only arguments, no aiogram types."""
