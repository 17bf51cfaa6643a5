"""Load tests (locust): scenarios and the `make load` runner."""
