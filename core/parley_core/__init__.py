"""parley_core."""
