"""parley_bot."""
