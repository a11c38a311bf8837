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
import torch
from accelerate.utils import InitProcessGroupKwargs
from fastai.distributed import DistributedDL

from lrrange import LRRange, OneCycle
from lrrange.cli import digits_learner
from lrrange.distributed import is_rank0, world_size


def cpu_broadcast(self, t, rank):
    """fastai 2.8's ``DistributedDL._broadcast`` moves the indices to CUDA; on CPU gloo needs none."""
    t = torch.tensor(t, dtype=torch.long)
    torch.distributed.broadcast(t, rank)
    return t.tolist()


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
    learn = digits_learner(seed=0, bs=args.bs)  # the demo's MLP on scikit-learn's digits, same on every rank
    # a hang (a rank that stopped early) then fails after 5 minutes, not Accelerate's 30
    timeout = InitProcessGroupKwargs(timeout=timedelta(minutes=5))
    with learn.distrib_ctx(cpu=not on_gpu, kwargs_handlers=[timeout]), learn.no_bar():
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
