"""Explicit imports register the models (no directory scanning)."""
