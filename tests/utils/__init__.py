"""Test factories and helpers (`create_random_<x>`), shared by the test packages."""
