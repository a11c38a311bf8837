"""One rank of the distributed range test, launched by tests/test_distributed.py through torchrun.

    python -m torch.distributed.run --standalone --nproc_per_node 2 \\
        tests/distributed_worker.py OUT_DIR MODE PG_TIMEOUT_S

Rank 1's shard of the (unshuffled) training set holds one corrupted batch, so
that rank 1's loss alone would trip the divergence check at the third step.
``MODE`` is ``sync`` (lrrange as shipped) or ``unsync`` (the cross-rank loss
averaging replaced by the local loss: the negative control, which must hang
until the process group times out). Each rank writes ``pid{r}`` first, so the
test can kill it, and ``rank{r}.json`` into OUT_DIR after every stage.

Not a test module (pytest collects only ``test_*.py``); importing it runs nothing.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import fastai.callback.schedule  # noqa: F401  (fit_one_cycle)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from accelerate.utils import InitProcessGroupKwargs
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders, TfmdDL
from fastai.distributed import DistributedDL
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.optimizer import Adam
from fastai.torch_core import set_seed
from sklearn.datasets import load_digits
from torch import nn

import lrrange
import lrrange.distributed

N_TRAIN, BS = 1152, 64  # unsharded 18 batches an epoch; 9 per rank
BAD_BATCH, BAD_SCALE = 2, 120.0  # rank 1's third batch: inputs x120, labels shifted
START_LR, END_LR, NUM_IT = 1e-4, 3e-2, 24  # 24 > 18: counting unsharded batches stops at 2 x 9


def cpu_broadcast(self, t, rank):
    """Test-only fix for fastai's ``DistributedDL._broadcast``, which calls ``.cuda()``: gloo takes CPU."""
    t = torch.tensor(t, dtype=torch.long)
    torch.distributed.broadcast(t, rank)
    return t.tolist()


def skewed_dls() -> DataLoaders:
    """Standardised digits; unshuffled, so ``DistributedDL`` gives rank 1 the second half of train."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    std = x.std(0)
    x = (x - x.mean(0)) / np.where(std > 0, std, 1.0)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    bad = slice(N_TRAIN // 2 + BAD_BATCH * BS, N_TRAIN // 2 + (BAD_BATCH + 1) * BS)
    x[bad] *= BAD_SCALE
    y[bad] = (y[bad] + 1) % 10
    train = list(zip(x[:N_TRAIN], y[:N_TRAIN], strict=True))
    valid = list(zip(x[N_TRAIN : N_TRAIN + 256], y[N_TRAIN : N_TRAIN + 256], strict=True))
    return DataLoaders(
        TfmdDL(train, bs=BS, shuffle=False, drop_last=True, num_workers=0),
        TfmdDL(valid, bs=BS, num_workers=0),
    )


class LocalLoss(Callback):
    """This rank's own training-batch loss, recorded before LRRange (order -10) sees it."""

    order = -20

    def before_fit(self):
        self.losses = []

    def after_loss(self):
        if self.training:
            self.losses.append(float(self.learn.loss.detach()))


class LRTrace(Callback):
    """The last param group's LR at every training batch, after the schedulers set it."""

    order = 60

    def before_fit(self):
        self.lrs = []

    def before_batch(self):
        if self.training:
            self.lrs.append(float(self.learn.opt.hypers[-1]["lr"]))


def state(learn: Learner):
    """Copies of the parameters and of the optimizer's tensor state."""
    params = [p.detach().clone() for p in learn.model.parameters()]
    tensors = lambda s: {k: v.clone() for k, v in s.items() if isinstance(v, torch.Tensor)}
    opt = [tensors(s) for s in learn.opt.state.values()]
    return params, opt


def same_state(a, b) -> bool:
    (pa, oa), (pb, ob) = a, b
    same = lambda x, y: len(x) == len(y) and all(torch.equal(u, v) for u, v in zip(x, y, strict=True))
    return same(pa, pb) and len(oa) == len(ob) and all(
        s.keys() == t.keys() and same(list(s.values()), list(t.values())) for s, t in zip(oa, ob, strict=True)
    )


def main(out: Path, mode: str, pg_timeout: float) -> None:
    rank = int(os.environ["RANK"])
    (out / f"pid{rank}").write_text(str(os.getpid()))
    DistributedDL._broadcast = cpu_broadcast
    if mode == "unsync":
        lrrange.distributed.mean_loss = lambda losses, sizes: float(losses[0])  # this rank's own
    report: dict = {"rank": rank}

    def save() -> None:
        (out / f"rank{rank}.json").write_text(json.dumps(report))

    set_seed(0, reproducible=True)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    learn = Learner(skewed_dls(), model, loss_func=CrossEntropyLossFlat(), opt_func=Adam)
    handler = InitProcessGroupKwargs(timeout=timedelta(seconds=pg_timeout))
    with learn.distrib_ctx(cpu=True, kwargs_handlers=[handler]):
        report["world_size"] = lrrange.distributed.world_size()
        # rank r has loss r + 1 over 10 (r + 1) samples: (1*10 + 2*20) / 30 on both ranks
        report["weighted_mean"] = lrrange.distributed.mean_loss([torch.tensor(rank + 1.0)], [10 * (rank + 1)])
        learn.fit(1, lr=1e-3)  # a real optimizer state for the test to disturb
        before, local = state(learn), LocalLoss()
        learn.fit(1, cbs=[lrrange.LRRange(START_LR, END_LR, num_it=NUM_IT, valid_every=8), local])
        res = learn.range_result
        report["range"] = {
            "lrs": res.lrs.tolist(),
            "losses": res.losses.tolist(),
            "val_losses": res.val_losses.tolist(),
            "stop_reason": res.stop_reason,
            "local_losses": local.losses,
            "restored": same_state(before, state(learn)),
        }
        save()
        res = learn.range_test(START_LR, END_LR, num_it=8, show_plot=True)
        report["range_test"] = {"steps": len(res), "figures": len(plt.get_fignums())}
        save()
        trace = LRTrace()
        learn.fit_one_cycle(2, 1e-2, cbs=trace)
        report["fit_one_cycle"] = {
            "lrs": trace.lrs,
            "losses": [float(v) for v in learn.recorder.losses],
            "trained": not same_state(before, state(learn)),
        }
        save()
        for name, n_epoch, cb in (
            ("OneCycle", 2, lrrange.OneCycle(1e-2)),
            ("Cyclical", 1, lrrange.Cyclical(1e-3, 1e-2)),
        ):
            trace = LRTrace()
            learn.fit(n_epoch, cbs=[cb, trace])
            report[name] = trace.lrs
            save()
    report["done"] = True
    save()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]))
