"""parley_operator."""
