"""The little a range test needs under fastai's distributed training (``learn.distrib_ctx()``).

Every rank must take the same stop decision at the same step, or one rank leaves
the fit while the others wait in DDP's gradient all-reduce until the process
group times out. So each step's loss is averaged across ranks (one all-reduce of a
two-element tensor per step, after the optimizer step) before anything is decided from it, and the epoch
count follows the per-rank (sharded) DataLoader. Nothing here runs a collective
unless the learner actually trains under fastai's ``DistributedTrainer``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import torch
import torch.distributed as dist


def world_size() -> int:
    """Number of processes in the initialised process group (1 when there is none)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the initialised process group (0 when there is none)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_rank0() -> bool:
    """True on the process that alone shows plots, prints and writes files."""
    return rank() == 0


def is_distributed(learn) -> bool:
    """True when ``learn`` trains under fastai's ``DistributedTrainer`` in a group of several ranks.

    A learner used by one rank alone (say, a range test on rank 0 only) must not
    enter a collective the other ranks never reach, so the process group alone
    is not enough.
    """
    fastai_distributed = sys.modules.get("fastai.distributed")
    if fastai_distributed is None or world_size() < 2:
        return False
    trainer = fastai_distributed.DistributedTrainer
    return any(isinstance(cb, trainer) for cb in learn.cbs)


def sharded_len(dl, n_ranks: int) -> int:
    """Batches one rank draws per epoch once fastai's ``DistributedDL`` shards ``dl``.

    ``DistributedDL`` pads the ``n`` sample indices to a multiple of ``n_ranks``
    and gives each rank ``ceil(n / n_ranks)`` of them, batched by ``dl.bs`` with
    ``dl.drop_last``. (Its ``__len__``, ``ceil(len(dl) / n_ranks)``, overcounts
    when ``drop_last`` drops a batch on every rank.)

    >>> from fastai.data.load import DataLoader
    >>> sharded_len(DataLoader(list(range(200)), bs=64, drop_last=True), 2)
    1
    >>> sharded_len(DataLoader(list(range(200)), bs=64), 2)
    2
    """
    if n_ranks < 1:
        raise ValueError(f"n_ranks must be an integer >= 1, got {n_ranks!r}")
    n, bs = getattr(dl, "n", None), getattr(dl, "bs", None)
    if n is None or bs is None:
        return math.ceil(len(dl) / n_ranks)
    per_rank = math.ceil(n / n_ranks)
    return per_rank // bs if getattr(dl, "drop_last", False) else math.ceil(per_rank / bs)


def batches_per_epoch(learn) -> int:
    """Training batches this rank draws per epoch: its shard under DDP, else the whole loader."""
    dl = learn.dls.train
    return sharded_len(dl, world_size()) if is_distributed(learn) else len(dl)


def mean_loss(losses: Sequence[torch.Tensor], sizes: Sequence[int]) -> float:
    """The batch-size-weighted mean of every rank's batch losses for one step, identical on every rank.

    ``losses`` are this rank's scalar losses of the step's batches (one, or
    several under ``GradientAccumulation``) and ``sizes`` their batch sizes. One
    ``all_reduce`` (sum) of ``[sum(loss * size), sum(size)]`` in float64 on the
    losses' device (so NCCL gets a CUDA tensor and gloo a CPU one).
    """
    local = torch.stack([v.detach().reshape(()).to(torch.float64) for v in losses])
    weights = local.new_tensor(list(sizes))
    pair = torch.stack([(local * weights).sum(), weights.sum()])
    dist.all_reduce(pair, op=dist.ReduceOp.SUM)
    total, count = pair.tolist()
    return total / count
