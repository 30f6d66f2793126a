"""Explicit imports register the models (no directory scanning)."""
from zoo.models import hdrunet  # noqa: F401
