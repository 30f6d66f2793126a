"""Data-parallel training over several processes started by ``torchrun`` (one process per GPU, or gloo on CPU).

Launch: ``torchrun --standalone --nproc_per_node=N -m zoo.cli run ...``. torchrun sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; without them (or with ``WORLD_SIZE=1``) every function here is a no-op and training is the plain
single-process loop.

How the work is split: every rank draws the same global batch of the step (``train.batch_size`` indices, a pure
function of (seed, step)) and takes its own contiguous slice of ``batch_size / world_size`` samples, so the global
batch is exactly the single-process batch. After each objective's ``backward`` the gradients of that objective's
parameters are averaged over the ranks (one all-reduce), so every rank takes the same optimiser step, and the
parameters stay identical without ever being sent again. Losses that are means over the batch then give the
single-process gradient up to float summation order.

Why not ``DistributedDataParallel``: the recipes call sub-modules of ``nets`` directly (``nets["model"].stage1``,
``nets["discriminator"]``) and a stage can have several optimisers that own different parts of the nets (a GAN).
DDP's reducer only works when the wrapped module's own ``forward`` is called, and it reduces once per backward of the
whole module; averaging per objective has neither restriction. The cost is that communication does not overlap with
the backward pass, which matters little at the zoo's model sizes.

Only rank 0 writes files (checkpoints, weights, result rows); every rank takes part in the collectives.

What differs from one process: BatchNorm layers normalise with their rank's share of the batch (no SyncBatchNorm, as
with DDP), and ranks other than 0 draw their own random numbers (dropout, GAN label noise). A recipe without either
(HDRUNet) follows the single-process run up to float rounding (tests/test_ddp.py); the two-stage GAN, whose
discriminator has BatchNorm and random labels, does not, as it would not under DDP.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
from typing import Any

import torch
import torch.distributed as dist

from zoo.errors import ZooError

log = logging.getLogger(__name__)


def env_world_size() -> int:
    """The number of processes torchrun started (1 when not launched by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ZooError(f"environment WORLD_SIZE={os.environ['WORLD_SIZE']!r}: expected an integer") from None


def env_rank() -> int:
    """This process's rank as torchrun set it (0 when not launched by torchrun); known before ``setup``."""
    return int(os.environ.get("RANK", "0")) if env_world_size() > 1 else 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True on the process that writes files (rank 0, or the only process)."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun; returns the device this rank trains on.

    CUDA: nccl, one GPU per process (``cuda:LOCAL_RANK``). CPU: gloo. A no-op (``device`` unchanged) outside torchrun
    or when the group is already up (several runs of a sweep in one process).
    """
    if env_world_size() <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30), **kwargs)
        atexit.register(shutdown)  # the group stays up for the process (a sweep's runs share it)
        log.info("rank %d of %d joined the %s process group (device %s)", rank(), world_size(), backend, device)
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    """Where collective tensors must live: the current GPU for nccl, the CPU for gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def check_batch_size(batch_size: int) -> int:
    """The per-rank batch; the global ``batch_size`` must split evenly so every rank holds the same share."""
    n = world_size()
    if batch_size % n:
        raise ZooError(f"train.batch_size={batch_size} must be divisible by the number of processes ({n})")
    return batch_size // n


def shard(indices: list[int]) -> list[int]:
    """This rank's contiguous slice of the step's global batch indices."""
    per_rank = len(indices) // world_size()
    start = rank() * per_rank
    return indices[start : start + per_rank]


def agree(flag: bool, all_ranks: bool = False) -> bool:
    """``flag`` made the same on every rank: true when any rank (or, with ``all_ranks``, every rank) says true."""
    if not active():
        return flag
    value = torch.tensor([int(flag)], device=_comm_device())
    dist.all_reduce(value, op=dist.ReduceOp.MIN if all_ranks else dist.ReduceOp.MAX)
    return bool(value.item())


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over the ranks (one flat all-reduce).

    A parameter without a gradient on every rank keeps ``grad=None`` (Adam then leaves it alone, as in one process);
    one with a gradient on some ranks only counts zeros for the others.
    """
    if not active() or not params:
        return
    device = _comm_device()
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=device)
    dist.all_reduce(has_grad, op=dist.ReduceOp.MAX)
    used = [p for p, h in zip(params, has_grad.tolist()) if h]
    if not used:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(device) for p in used])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size()
    offset = 0
    for p in used:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).to(p.device).clone()
        offset += n


def mean_values(values: dict[str, float]) -> dict[str, float]:
    """Per-key mean over the ranks of logged scalars (every rank must pass the same keys)."""
    if not active() or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    tensor /= world_size()
    return {**values, **dict(zip(keys, tensor.tolist()))}


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (done once before training, as DDP does)."""
    if not active():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        data = tensor.data.to(_comm_device())
        dist.broadcast(data, src=0)
        tensor.data.copy_(data)


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (e.g. each rank's RNG state for the checkpoint)."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
