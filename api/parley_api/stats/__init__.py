"""The stats endpoint's collector and response schemas."""
