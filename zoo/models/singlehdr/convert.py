"""Convert official SingleHDR TensorFlow checkpoints into zoo checkpoints (``zoo convert singlehdr-tf CKPT OUT``).

Where the official weights come from: the README of ``alex04072000/SingleHDR`` links the trained checkpoints on
Google Drive (download them yourself; the zoo never downloads weights, and they carry no licence):

- ``ckpt_deq``, ``ckpt_lin``, ``ckpt_hal``: one sub-net each (Dequantization / Linearization / Hallucination), as
  restored by ``test_real.py`` (the three-net model without refinement);
- ``refinement_log_from_wo_raw/model.ckpt``: the joint checkpoint with all four nets, as restored by
  ``test_real_refinement.py`` (the full model).

A checkpoint is given by its prefix (e.g. ``.../model.ckpt``, without ``.index``/``.data-*``) or its folder. Reading it
needs TensorFlow (``pip install tensorflow``; optional, never needed by the tests). The converted file is an ordinary
zoo checkpoint, loadable without TensorFlow; it must be used with the official EMoR basis:
``zoo.create_model("singlehdr", response_basis="invemor.txt")`` (plus ``refinement=False`` for the three-net files).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.errors import ZooError
from zoo.factory import create_model
from zoo.models.singlehdr.net import BASIS_COMPONENTS
from zoo.models.singlehdr.subnets import (
    HallucinationNet,
    LinearizationNet,
    ResizeConv,
    dequantization_net,
    refinement_net,
)
from zoo.tf_compat import CURVE_SAMPLES
from zoo.weights import load_weights, save_checkpoint

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------------------------
# Official TensorFlow variable names (docs/models.md).

# TF top-level scope -> (zoo sub-net, module path prefix inside the model)
TF_SCOPES = {
    "Dequantization_Net": ("dequantization", "dequantization"),
    "crf_feature_net": ("linearization", "linearization.crf_feature_net"),
    "ae_invcrf_decode_net": ("linearization", "linearization.ae_invcrf_decode_net"),
    "Hallucination_Net": ("hallucination", "hallucination"),
    "Refinement_Net": ("refinement", "refinement"),
}
# TF leaf names of (weight, bias) of convs and dense layers per scope; slim BN variables sit in a "BatchNorm" scope
_CONV_LEAVES = {
    "Dequantization_Net": ("kernel", "bias"),
    "Refinement_Net": ("kernel", "bias"),
    "crf_feature_net": ("weights", "biases"),
    "ae_invcrf_decode_net": ("kernel", "bias"),
    "Hallucination_Net": ("W_conv2d", "b_conv2d"),
}
_BN_LEAVES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
TF_BOOKKEEPING = ("beta1_power", "beta2_power", "global_step")  # optimizer/step variables in training checkpoints


@dataclass(frozen=True)
class OfficialVariable:
    """One TF variable: its zoo state-dict key, its TF shape (HWIO kernels, [in, out] dense) and its sub-net."""

    key: str
    tf_shape: tuple[int, ...]
    subnet: str


def _tf_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 4:  # OIHW -> HWIO
        return (shape[2], shape[3], shape[1], shape[0])
    if len(shape) == 2:  # Linear [out, in] -> dense [in, out]
        return (shape[1], shape[0])
    return shape


@functools.cache
def official_variable_table() -> tuple[dict[str, OfficialVariable], dict[str, tuple[str, ...]]]:
    """All 249 official TF variable names -> ``OfficialVariable``, and per sub-net the BN ``num_batches_tracked`` keys
    (zoo-only buffers, set to 0 on conversion). Derived from the modules themselves, built on the meta device."""
    with torch.device("meta"):
        subnets: dict[str, nn.Module] = {
            "dequantization": dequantization_net(),
            "linearization": LinearizationNet(torch.zeros(CURVE_SAMPLES), torch.zeros(CURVE_SAMPLES, BASIS_COMPONENTS)),
            "hallucination": HallucinationNet(),
            "refinement": refinement_net(),
        }
    table: dict[str, OfficialVariable] = {}
    counters: dict[str, list[str]] = {name: [] for name in subnets}
    for scope, (subnet, prefix) in TF_SCOPES.items():
        root = subnets[subnet]
        inner = prefix[len(subnet) + 1 :] if "." in prefix else ""
        base = root.get_submodule(inner) if inner else root
        for path, module in base.named_modules():
            tf_path = "/".join([scope] + ([path.replace(".", "/")] if path else []))
            key_path = f"{prefix}.{path}" if path else prefix
            if isinstance(module, nn.BatchNorm2d):
                bn_scope = f"{tf_path}/BatchNorm" if scope == "crf_feature_net" else tf_path
                for attr, leaf in _BN_LEAVES.items():
                    shape = tuple(getattr(module, attr).shape)
                    table[f"{bn_scope}/{leaf}"] = OfficialVariable(f"{key_path}.{attr}", shape, subnet)
                counters[subnet].append(f"{key_path}.num_batches_tracked")
            elif isinstance(module, nn.Conv2d | nn.Linear | ResizeConv):
                for attr, leaf in zip(("weight", "bias"), _CONV_LEAVES[scope]):
                    param = getattr(module, attr)
                    if param is not None:
                        shape = _tf_shape(tuple(param.shape))
                        table[f"{tf_path}/{leaf}"] = OfficialVariable(f"{key_path}.{attr}", shape, subnet)
    return table, {k: tuple(v) for k, v in counters.items()}


def _show(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" … ({len(names)} in all)" if len(names) > 5 else "")


def convert_official(obj: Any) -> dict[str, torch.Tensor] | None:
    """A mapping of official TF variable names to arrays (what ``tf.train.load_checkpoint`` yields; ``:0`` suffixes
    allowed) → a zoo state dict. Adam slots (``…/Adam``, ``…/Adam_1``), ``beta1_power``/``beta2_power`` and
    ``global_step`` are skipped. Each sub-net present must be complete (the released ``ckpt_deq``/``ckpt_lin``/
    ``ckpt_hal`` hold one sub-net each; merge the mappings for the three-net model). Returns None when no key is
    TF-named. Raises ``ZooError`` naming unknown or missing variables and shape mismatches.

    Layouts: conv kernels HWIO → OIHW, dense [in, out] → Linear [out, in]; BN gamma/beta/moving_mean/moving_variance
    → weight/bias/running_mean/running_var (the eps per sub-net is fixed by the modules, docs/models.md)."""
    if not isinstance(obj, Mapping) or not any(isinstance(k, str) and k.split("/")[0] in TF_SCOPES for k in obj):
        return None
    table, counters = official_variable_table()
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for raw_name, value in obj.items():
        name = str(raw_name).removesuffix(":0")
        if name in TF_BOOKKEEPING or name.endswith(("/Adam", "/Adam_1")):
            continue
        if name in table:
            values[name] = value
        else:
            unknown.append(name)
    if unknown:
        raise ZooError(f"TF checkpoint: unknown SingleHDR variables {_show(sorted(unknown))}")
    present = {table[n].subnet for n in values}
    missing = sorted(n for n, v in table.items() if v.subnet in present and n not in values)
    if missing:
        raise ZooError(f"TF checkpoint: missing SingleHDR variables {_show(missing)}")
    state: dict[str, torch.Tensor] = {}
    for name, value in values.items():
        array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float32)
        var = table[name]
        if array.shape != var.tf_shape:
            raise ZooError(f"TF checkpoint: {name} has shape {array.shape}, expected {var.tf_shape}")
        tensor = torch.from_numpy(array.copy())
        if tensor.ndim == 4:
            tensor = tensor.permute(3, 2, 0, 1)
        elif tensor.ndim == 2:
            tensor = tensor.t()
        state[var.key] = tensor.contiguous()
    for subnet in present:
        for key in counters[subnet]:
            state[key] = torch.tensor(0, dtype=torch.long)
    return state


def read_tf_checkpoint(ckpt_path: str | Path) -> dict[str, np.ndarray]:
    """All variables of a TF checkpoint (prefix or folder) as {name: array}, Adam slots included (the conversion
    skips them). Raises ``ZooError`` when TensorFlow is missing or the checkpoint is unreadable."""
    try:
        import tensorflow as tf
    except ImportError:
        raise ZooError("reading a TensorFlow checkpoint needs TensorFlow: pip install tensorflow") from None
    try:
        reader = tf.train.load_checkpoint(str(ckpt_path))
        names = sorted(reader.get_variable_to_shape_map())
        return {name: np.asarray(reader.get_tensor(name)) for name in names}
    except Exception as exc:  # TF raises several types (NotFoundError, DataLossError, ValueError)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ZooError(f"{ckpt_path}: not a readable TensorFlow checkpoint ({first[:160]})") from None


def weights_sha256(state: dict) -> str:
    """sha256 over the state dict's tensors (sorted keys, C-order little-endian bytes), recorded in converted files."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(state[key].detach().cpu().numpy()).tobytes())  # little-endian hosts
    return digest.hexdigest()


def convert_tf_checkpoint(ckpt_path: str | Path | Sequence[str | Path], out_path: str | Path) -> Path:
    """Read official SingleHDR TF checkpoint(s) and write a zoo checkpoint to ``out_path`` (atomically).

    ``ckpt_path``: the joint ``refinement_log_from_wo_raw`` checkpoint (→ full model), or one or several of
    ``ckpt_deq``/``ckpt_lin``/``ckpt_hal`` (a sequence, merged; with all three → the three-net model,
    ``refinement=False``). Returns the written path."""
    paths = [ckpt_path] if isinstance(ckpt_path, str | Path) else list(ckpt_path)
    mapping: dict[str, np.ndarray] = {}
    for path in paths:
        mapping.update(read_tf_checkpoint(path))
    return save_tf_mapping(mapping, out_path, sources=[str(p) for p in paths])


def save_tf_mapping(mapping: dict[str, np.ndarray], out_path: str | Path, sources: list[str] | None = None) -> Path:
    """Convert a {TF variable name: array} mapping (official layout) and write it as a zoo checkpoint, with the
    weights' sha256, the sources and the basis they need recorded next to the state dict. TensorFlow is not needed."""
    refinement = any(name.startswith("Refinement_Net/") for name in mapping)
    # The basis is not part of the state dict (a non-persistent buffer), so the project's own serves for conversion.
    model = create_model("singlehdr", refinement=refinement)
    load_weights(model, mapping)
    digest = weights_sha256(model.state_dict())
    out = save_checkpoint(
        out_path,
        model,
        source=sources or [],
        refinement=refinement,
        response_basis="official EMoR invemor.txt (sha256 86dd5444…914d82ee): create_model(..., response_basis=PATH)",
        weights_sha256=digest,
    )
    log.info("wrote %s (weights sha256 %s…, refinement=%s)", out, digest[:12], refinement)
    return Path(out)
