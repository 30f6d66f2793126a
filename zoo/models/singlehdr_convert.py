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

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoo.errors import ZooError

log = logging.getLogger(__name__)


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
    from zoo.registry import create_model
    from zoo.weights import load_weights, save_checkpoint

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
