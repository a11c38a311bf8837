"""An LR range test, then one-cycle at its suggestion, under fastai's distributed training (DDP).

Launch one process per device with torchrun; on CPU (gloo) on one machine:

    OMP_NUM_THREADS=1 GLOO_SOCKET_IFNAME=lo torchrun --standalone --nproc_per_node 2 \\
        examples/distributed_range_test.py --plot lr_range_ddp.png

and on a machine with 2 GPUs (NCCL), ``torchrun --standalone --nproc_per_node 2
examples/distributed_range_test.py``. Every rank runs the same test on its
shard of the data and holds the same ``learn.range_result``; rank 0 alone
prints and writes the plot. Needs ``accelerate`` (fastai.distributed) and
scikit-learn (the digits data ship with it; nothing downloads).
"""

from __future__ import annotations

import argparse
from datetime import timedelta

import matplotlib

matplotlib.use("Agg")
import numpy as np
import torch
from accelerate.utils import InitProcessGroupKwargs
from fastai.data.core import DataLoaders
from fastai.distributed import DistributedDL
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from sklearn.datasets import load_digits
from torch import nn

from lrrange import LRRange, OneCycle
from lrrange.distributed import is_rank0, world_size


def cpu_broadcast(self, t, rank):
    """fastai 2.8's ``DistributedDL._broadcast`` moves the indices to CUDA; on CPU gloo needs none."""
    t = torch.tensor(t, dtype=torch.long)
    torch.distributed.broadcast(t, rank)
    return t.tolist()


def digits_learner(bs: int) -> Learner:
    """A small MLP on scikit-learn's 8x8 digits; every rank builds the same one (same seed)."""
    set_seed(0, reproducible=True)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    n_train = 1500
    mean, std = x[:n_train].mean(0), x[:n_train].std(0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    train = list(zip(xt[:n_train], yt[:n_train], strict=True))
    valid = list(zip(xt[n_train:], yt[n_train:], strict=True))
    dls = DataLoaders.from_dsets(train, valid, bs=bs, num_workers=0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    return Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-it", type=int, default=100, help="range-test steps (per rank)")
    parser.add_argument("--epochs", type=int, default=5, help="one-cycle epochs after the test")
    parser.add_argument("--bs", type=int, default=64, help="batch size per rank")
    parser.add_argument("--plot", default=None, help="write the range-test plot here (rank 0)")
    args = parser.parse_args()

    on_gpu = torch.cuda.is_available()
    if not on_gpu:
        DistributedDL._broadcast = cpu_broadcast
    learn = digits_learner(args.bs)
    # a hang (a rank that stopped early) then fails after 5 minutes, not Accelerate's 30
    timeout = InitProcessGroupKwargs(timeout=timedelta(minutes=5))
    with learn.distrib_ctx(cpu=not on_gpu, kwargs_handlers=[timeout]), learn.no_bar():
        with learn.no_logging():
            learn.fit(1, cbs=LRRange(num_it=args.num_it))
        res = learn.range_result  # the same on every rank
        if is_rank0():
            print(f"{world_size()} ranks: {res}")
            for name, lr in res.suggestions.items():
                print(f"  {name:>10}: {lr:.3g}")
            if args.plot:
                res.plot().savefig(args.plot, dpi=110, bbox_inches="tight")
                print(f"plot written to {args.plot}")
        learn.fit(args.epochs, cbs=OneCycle())  # lr_max = res.suggestion, on every rank
    if is_rank0():
        acc = float(learn.recorder.values[-1][2])
        print(f"one-cycle, {args.epochs} epochs at {res.suggestion:.3g}: validation accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
