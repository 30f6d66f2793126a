"""Official two-stage checkpoints: layer renaming, unused-layer dropping, and the one-off conversion of the official
file (which pickles a StepLR object)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ZooError
from zoo.factory import create_model
from zoo.models.twostage.net import Discriminator
from zoo.weights import load_weights, save_checkpoint

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------------------
# Official checkpoints

_BATCHNORM = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# Registered in the official modules but never used in forward (docs/models.md); dropped by exact name.
UNUSED_OFFICIAL_KEYS = {
    "stage1": frozenset(
        [f"norm1.{p}" for p in _BATCHNORM]
        + [f"attention{i}.fc.{j}.weight" for i in (1, 2) for j in (0, 2)]
        + [f"noiseGate{i}.{p}" for i in (1, 2) for p in ("weight", "bias")]
    ),
    "stage2": frozenset(
        [f"norm1.{p}" for p in _BATCHNORM]
        + [f"attention.fc.{j}.weight" for j in (0, 2)]
        + [f"noiseGate1.{p}" for p in ("weight", "bias")]
        + [f"block1.RDB1.conv{k}.{p}" for k in range(1, 6) for p in ("weight", "bias")]
    ),
}
# Official names of the blocks that are used: (dense block, spatial attention) per RDAB, in order.
_OFFICIAL_BLOCKS = {
    "stage1": (("block1", "attentionSpatial1"), ("block2", "attentionSpatial2")),
    "stage2": (("blockG", "attentionSpatial"),),
}


def official_key_map(stage: str) -> dict[str, str]:
    """Official state-dict key → this module's key (both without the ``stage1.``/``stage2.`` prefix)."""
    names = {f"inpConv.{p}": f"input_conv.{p}" for p in ("weight", "bias")}
    names |= {f"convOut.{p}": f"output_conv.{p}" for p in ("weight", "bias")}
    for index, (dense, attention) in enumerate(_OFFICIAL_BLOCKS[stage]):
        for k in range(1, 6):
            for p in ("weight", "bias"):
                names[f"{dense}.RDB1.conv{k}.{p}"] = f"blocks.{index}.dense.conv{k}.{p}"
        names[f"{attention}.spatialAttenton.conv1.weight"] = f"blocks.{index}.attention.gate.weight"  # sic
        for p in ("weight", "bias"):
            names[f"{attention}.conv.{p}"] = f"blocks.{index}.attention.conv.{p}"
    return names


def _convert_stage(official: Mapping[str, Any], stage: str, origin: str, prefix: str = "") -> dict[str, torch.Tensor]:
    """Rename one official module's state dict (``prefix`` + official name, as the keys appear in ``origin``) to
    ``stage.<zoo name>``; unused official layers are dropped by exact name, anything else is an error."""
    if not isinstance(official, Mapping):
        raise ZooError(f"{origin}: expected a state dict, got {type(official).__name__}")
    state = dict(official)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    names = official_key_map(stage)
    unused = UNUSED_OFFICIAL_KEYS[stage]
    unexpected = sorted(prefix + k for k in state if k not in names and k not in unused)
    missing = sorted(prefix + k for k in names if k not in state)
    if unexpected or missing:
        parts = [
            f"unexpected keys: {', '.join(unexpected)}" if unexpected else "",
            f"missing keys: {', '.join(missing)}" if missing else "",
        ]
        raise ZooError(f"{origin}: not the official two-stage {stage} layout; " + "; ".join(p for p in parts if p))
    return {f"{stage}.{names[k]}": torch.as_tensor(v) for k, v in state.items() if k in names}


def _is_flat_official(obj: Mapping[str, Any]) -> bool:
    """True when some key is an official layer name under a ``stage1.``/``stage2.`` prefix (the fixture layout)."""
    official = {f"{stage}.{name}" for stage in ("stage1", "stage2") for name in official_key_map(stage)}
    return any(k in official for k in obj)


def convert_official(obj: Any) -> dict[str, torch.Tensor] | None:
    """A zoo state dict for the two-stage model (``stage1.*`` and ``stage2.*``) from an official layout, or None when
    ``obj`` is not one.

    Accepted: the official checkpoint dict (``stateDictEG`` = stage I, ``stateDictER`` = stage II; ``stateDictED``,
    optimiser states, ``step`` and ``schedulerLR`` are ignored), the fixture's flat dict of official keys under
    ``stage1.``/``stage2.``, or a dict holding either under ``state_dict``. The official modules' unused layers are
    dropped by exact name; any other difference raises ``ZooError`` naming the keys.
    """
    if not isinstance(obj, Mapping):
        return None
    if "stateDictEG" in obj or "stateDictER" in obj:
        for key in ("stateDictEG", "stateDictER"):
            if key not in obj:
                raise ZooError(f"official two-stage checkpoint: key {key!r} is missing (need stateDictEG, stateDictER)")
        return _convert_stage(obj["stateDictEG"], "stage1", "stateDictEG") | _convert_stage(
            obj["stateDictER"], "stage2", "stateDictER"
        )
    if isinstance(obj.get("state_dict"), Mapping):
        return convert_official(obj["state_dict"])
    if not _is_flat_official(obj):
        return None
    stray = sorted(k for k in obj if not (isinstance(k, str) and k.startswith(("stage1.", "stage2."))))
    if stray:
        listed = ", ".join(map(str, stray))
        raise ZooError(f"official two-stage state dict: unexpected keys outside stage1./stage2.: {listed}")
    converted: dict[str, torch.Tensor] = {}
    for stage in ("stage1", "stage2"):
        part = {k[len(stage) + 1 :]: v for k, v in obj.items() if k.startswith(stage + ".")}
        if part:
            converted |= _convert_stage(part, stage, "state dict", prefix=stage + ".")
    return converted


def convert_official_checkpoint(path: str | Path, out_path: str | Path, trust: bool = False) -> Path:
    """Convert an official two-stage checkpoint file into a plain zoo checkpoint (tensors only) at ``out_path``.

    The official file pickles a StepLR object, so reading it means unpickling, which can run arbitrary code from the
    file. The file is first read safely (``weights_only=True``); only if that fails *and* ``trust=True`` is it read with
    ``weights_only=False``. Without ``trust`` such a file raises ``ZooError``. The output holds the model's state dict,
    the discriminator's (``discriminator_state_dict``, if the file has ``stateDictED``), the training ``step``, the
    source file name and its sha256, and loads anywhere with ``zoo.load_weights`` (weights_only).

    How to convert an untrusted file: never unpickle it on a machine that matters. Run this function with
    ``trust=True`` inside a throwaway sandbox (a container or VM with no network, no credentials, no home directory;
    mount the input read-only and an empty output folder), e.g.
    ``docker run --rm --network none -v $PWD/in:/in:ro -v $PWD/out:/out IMAGE zoo convert twostage-official --trust
    /in/ckpt.pth /out/twostage.pt``, discard the sandbox, and use only the converted file (it is plain tensors, read
    with weights_only=True). Record the printed source sha256 alongside it.
    """
    path, out_path = Path(path), Path(out_path)
    if not path.is_file():
        raise ZooError(f"{path}: no such checkpoint file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises several types for pickled objects)
        if not trust:
            raise ZooError(
                f"{path}: the file holds pickled Python objects ({type(exc).__name__}); unpickling can run code from "
                "the file, so it is only done with trust=True (--trust), ideally inside a sandbox"
            ) from None
        log.warning("unpickling %s (sha256 %s) with weights_only=False because trust=True", path, digest)
        obj = torch.load(path, map_location="cpu", weights_only=False)
    state = convert_official(obj)
    if state is None:
        raise ZooError(
            f"{path}: not an official two-stage checkpoint (expected stateDictEG/stateDictER or stage1./stage2. keys)"
        )
    model = load_weights(create_model("twostage"), state)
    extra: dict[str, Any] = {"source_file": path.name, "source_sha256": digest}
    if isinstance(obj, Mapping) and isinstance(obj.get("stateDictED"), Mapping):
        discriminator = Discriminator()
        try:
            discriminator.load_state_dict(dict(obj["stateDictED"]), strict=True)
        except RuntimeError as exc:
            reason = " ".join(str(exc).split())[:300]
            raise ZooError(f"{path}: stateDictED does not fit the two-stage discriminator ({reason})") from None
        extra["discriminator_state_dict"] = discriminator.state_dict()
    if isinstance(obj, Mapping) and isinstance(obj.get("step"), int):
        extra["step"] = obj["step"]
    log.info("converted %s (sha256 %s) to %s", path, digest, out_path)
    return save_checkpoint(out_path, model, **extra)
