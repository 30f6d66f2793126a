"""Explicit imports register the models (no directory scanning)."""
from zoo.models import hdrunet  # noqa: F401
from zoo.models import baselines  # noqa: F401
from zoo.models import singlehdr  # noqa: F401
from zoo.models import twostage  # noqa: F401
