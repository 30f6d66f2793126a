"""Official HDRUNet checkpoints: a plain state dict with the official layer names (the zoo uses the same names)."""

from __future__ import annotations

import torch


def convert_official(obj) -> dict[str, torch.Tensor] | None:
    """The official file is a plain state dict (DataParallel ``module.`` keys stripped by the official loader too)."""
    if not isinstance(obj, dict) or not obj:
        return None
    keys = list(obj)
    if all(k.startswith("module.") for k in keys):
        return {k[len("module.") :]: v for k, v in obj.items()}
    return None
