"""``load_weights``: the zoo's own checkpoints and the official layouts, detected, converted and checked.

A zoo checkpoint describes itself: ``{"format": "hdr-zoo/1", "model": <registry name>, "args": <create_model
arguments>, "zoo_version", "state_dict", ...}`` (``zoo run`` adds ``run_id``, the training config hash, and ``step``),
so ``zoo.factory.create_model_from_checkpoint(path)`` rebuilds the right architecture, ablation variants included,
from the file alone. Official layouts carry no model name: they need ``create_model(name)`` + ``load_weights``.

Files are read with ``torch.load(weights_only=True)``: no arbitrary unpickling. An official checkpoint that holds
pickled Python objects (the two-stage repo saves a StepLR object) is refused with the command that converts it once in
a trusted environment (``zoo convert``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import ZooError
from zoo.registry import spec_of

ZOO_FORMAT = "hdr-zoo/1"
TORCH_MAGICS = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive; the legacy format starts with a pickle protocol


def read_checkpoint(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path}: no such weights file")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith(TORCH_MAGICS):
        shown = "an empty file" if not head else f"a file starting with {head!r}"
        raise ZooError(f"{path}: not a torch checkpoint ({shown}); expected a file written by torch.save")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise ZooError(
                f"{path}: the file holds pickled Python objects, which the zoo does not unpickle; convert it once in a "
                f"trusted environment with `zoo convert twostage-official {path} OUT.pt --trust` and load OUT.pt"
            ) from None
        raise ZooError(f"{path}: not a readable torch checkpoint ({first[:160]})") from None


def save_torch(path: str | Path, payload: Any) -> Path:
    """``torch.save`` atomically (temporary file, then rename: an existing file stays until the new one is complete).

    Serialised in memory first, then written with a plain file write: a full disk then raises ``OSError`` (a
    ``ZooError`` naming the file), where ``torch.save`` to a path reports a short write as an opaque RuntimeError.
    """
    import io

    from zoo.io import atomic_write

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def zoo_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hdr-zoo")
    except PackageNotFoundError:  # a source tree on sys.path without an install
        return "unknown"


def save_checkpoint(path: str | Path, model: nn.Module, **extra: Any) -> Path:
    """Write the zoo's own format, atomically: {"format", "model", "args", "zoo_version", "state_dict", ...extra}."""
    payload = {
        "format": ZOO_FORMAT,
        "model": spec_of(model).name,
        "args": dict(getattr(model, "zoo_args", {})),
        "zoo_version": zoo_version(),
        "state_dict": model.state_dict(),
        **extra,
    }
    return save_torch(path, payload)


def checkpoint_architecture(source: Any, origin: str) -> tuple[str, dict[str, Any]] | None:
    """(registry name, model arguments) recorded in a zoo checkpoint; None for an official layout."""
    if not (isinstance(source, Mapping) and source.get("format") == ZOO_FORMAT):
        return None
    name, args = source.get("model"), source.get("args", {})
    if not isinstance(name, str) or not isinstance(args, Mapping):
        raise ZooError(
            f"{origin}: zoo checkpoint with a malformed model name or arguments; expected a string and a " "mapping"
        )
    return name, dict(args)


def _strip_prefix(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return dict(state)


def resolve_state_dict(model: nn.Module, source: Any, origin: str = "state dict") -> dict[str, torch.Tensor]:
    """Turn ``source`` (zoo checkpoint, official checkpoint object or plain state dict) into a state dict for
    ``model``; raise ``ZooError`` when it was saved for another model."""
    spec = spec_of(model)
    if isinstance(source, Mapping) and source.get("format") == ZOO_FORMAT:
        if source.get("model") != spec.name:
            raise ZooError(f"{origin}: weights are for model {source.get('model')!r}, not {spec.name!r}")
        return dict(source["state_dict"])
    if not isinstance(source, Mapping):
        raise ZooError(f"{origin}: expected a state dict or checkpoint mapping, got {type(source).__name__}")
    if spec.convert_official is not None:
        converted = spec.convert_official(source)
        if converted is not None:
            return converted
    state = source.get("state_dict", source) if isinstance(source.get("state_dict"), Mapping) else source
    return _strip_prefix(state, "module.")  # DataParallel prefix


def load_weights(model: nn.Module, source: str | Path | Mapping[str, Any], origin: str | None = None) -> nn.Module:
    """Load weights from a path or a mapping into ``model`` (strict). A key mismatch raises ``ZooError`` naming the
    missing and unexpected keys; a shape mismatch names the key and both shapes."""
    origin = origin or (str(source) if isinstance(source, str | Path) else "state dict")
    obj = read_checkpoint(source) if isinstance(source, str | Path) else source
    state = resolve_state_dict(model, obj, origin)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:

        def show(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f" … ({len(keys)} in all)" if len(keys) > 6 else "")

        parts = [
            f"missing keys: {show(missing)}" if missing else "",
            f"unexpected keys: {show(unexpected)}" if unexpected else "",
        ]
        raise ZooError(
            f"{origin}: weights do not fit model {spec_of(model).name!r}; " + "; ".join(p for p in parts if p)
        )
    for key, value in state.items():
        value = torch.as_tensor(value)
        if tuple(value.shape) != tuple(own[key].shape):
            raise ZooError(
                f"{origin}: weights do not fit model {spec_of(model).name!r}: {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(own[key].shape)}"
            )
        state[key] = value
    model.load_state_dict(state, strict=True)
    return model
