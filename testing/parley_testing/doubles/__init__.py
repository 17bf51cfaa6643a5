"""Doubles of the services this machine cannot reach, as strict as the real ones."""
