"""Reading and setting the bot users' budgets: /api/v1/budgets, for admin accounts."""
