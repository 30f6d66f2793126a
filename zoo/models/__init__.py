"""Explicit imports register the models (no directory scanning)."""

from zoo.models import (
    baselines,  # noqa: F401
    hdrunet,  # noqa: F401
    singlehdr,  # noqa: F401
    twostage,  # noqa: F401
)
