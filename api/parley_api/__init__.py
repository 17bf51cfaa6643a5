"""parley_api."""
