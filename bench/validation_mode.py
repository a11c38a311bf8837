"""What validation-loss mode costs: ``LRRange(valid_every=k, valid_batches=m)`` against a plain test.

    nice .venv/bin/python bench/validation_mode.py                 # writes bench/results/validation_mode.md
    .venv/bin/python bench/validation_mode.py --quick --out -      # a tiny setting, printed only

Every contender runs the same ``num_it`` steps (``stop_div=False``) on an MLP on
scikit-learn's digits, interleaved in one process with the order rotated every
round, on one torch thread; time is the process's CPU time (less sensitive
than wall time to other jobs on a shared machine). The table gives the median
of the per-round ratios to the plain test, their min-max, and the median CPU
seconds. For scale it also times
torch-lr-finder's ``range_test`` with and without ``val_loader`` (which
evaluates the whole validation set after every step).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.torch_core import set_seed
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lrrange  # noqa: F401  (Learner.range_test)


def digits(n_valid: int = 360):
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    n = len(xt) - n_valid
    return (xt[:n], yt[:n]), (xt[n:], yt[n:])


def model(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 10))


def learner(data, hidden: int, bs: int) -> Learner:
    (xt, yt), (xv, yv) = data
    set_seed(0, reproducible=True)
    train = list(zip(xt, yt, strict=True))
    valid = list(zip(xv, yv, strict=True))
    dls = DataLoaders.from_dsets(train, valid, bs=bs, num_workers=0)
    return Learner(dls, model(hidden), loss_func=CrossEntropyLossFlat())


def lrrange_run(learn: Learner, num_it: int, **kwargs) -> Callable[[], None]:
    def run():
        with learn.no_bar():
            learn.range_test(num_it=num_it, stop_div=False, show_plot=False, **kwargs)

    return run


def torch_lr_finder_run(data, hidden: int, bs: int, num_it: int, with_valid: bool) -> Callable[[], None]:
    from torch_lr_finder import LRFinder

    (xt, yt), (xv, yv) = data
    torch.manual_seed(0)
    net = model(hidden)
    opt = torch.optim.Adam(net.parameters(), lr=1e-7)
    train = DataLoader(TensorDataset(xt, yt), batch_size=bs, shuffle=True)
    valid = DataLoader(TensorDataset(xv, yv), batch_size=bs)

    def run():
        finder = LRFinder(net, opt, nn.CrossEntropyLoss(), device="cpu")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            finder.range_test(train, val_loader=valid if with_valid else None, end_lr=10, num_iter=num_it,
                              diverge_th=float("inf"))
        finder.reset()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny setting (smoke run)")
    parser.add_argument("--out", default="bench/results/validation_mode.md", help="markdown file, or -")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    num_it, rounds, hidden, bs, m = (20, 2, 32, 64, 2) if args.quick else (100, 15, 256, 64, 4)
    data = digits()
    n_valid_batches = len(learner(data, hidden, bs).dls.valid)
    contenders: dict[str, Callable[[], None]] = {
        "plain test": lrrange_run(learner(data, hidden, bs), num_it),
        f"valid_every=10, valid_batches={m}": lrrange_run(learner(data, hidden, bs), num_it, valid_every=10,
                                                            valid_batches=m),
        f"valid_every=5, valid_batches={m}": lrrange_run(learner(data, hidden, bs), num_it, valid_every=5,
                                                           valid_batches=m),
        f"valid_every=1, valid_batches={m}": lrrange_run(learner(data, hidden, bs), num_it, valid_every=1,
                                                           valid_batches=m),
        f"valid_every=1, all {n_valid_batches} batches": lrrange_run(
            learner(data, hidden, bs), num_it, valid_every=1, valid_batches=n_valid_batches),
        "torch-lr-finder, no val_loader": torch_lr_finder_run(data, hidden, bs, num_it, False),
        "torch-lr-finder, val_loader": torch_lr_finder_run(data, hidden, bs, num_it, True),
    }
    names = list(contenders)
    for run in contenders.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t = time.process_time()
            contenders[name]()
            times[name].append(time.process_time() - t)

    def ratios(name: str, base: str) -> list[float]:
        return [a / b for a, b in zip(times[name], times[base], strict=True)]

    lines = [
        "# Validation-loss mode: cost against a plain range test",
        "",
        f"`{' '.join(['bench/validation_mode.py', *(argv if argv is not None else sys.argv[1:])])}` — "
        f"{num_it} steps, MLP 64-{hidden}-{hidden}-10 on digits, batch size {bs}, "
        f"{n_valid_batches} validation batches of {bs}; {rounds} interleaved rounds after a warm-up; "
        f"torch {version('torch')}, fastai {version('fastai')}, "
        f"torch-lr-finder {version('torch-lr-finder')}, {platform.machine()}, one torch thread, CPU time.",
        "",
        "| contender | validation forward passes | time / plain test (median, min-max) | median CPU s |",
        "|---|---|---|---|",
    ]
    passes = {
        "plain test": 0,
        f"valid_every=10, valid_batches={m}": num_it // 10 * m,
        f"valid_every=5, valid_batches={m}": num_it // 5 * m,
        f"valid_every=1, valid_batches={m}": num_it * m,
        f"valid_every=1, all {n_valid_batches} batches": num_it * n_valid_batches,
        "torch-lr-finder, no val_loader": 0,
        "torch-lr-finder, val_loader": num_it * n_valid_batches,
    }
    for name in names:
        base = "torch-lr-finder, no val_loader" if name.startswith("torch-lr-finder") else "plain test"
        rs = ratios(name, base)
        ref = "" if base == "plain test" else " (vs its own run without val_loader)"
        lines.append(
            f"| {name} | {passes[name]} | {statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f}){ref} "
            f"| {statistics.median(times[name]):.3f} |"
        )
    lines += [
        "",
        "Each evaluation is a forward pass over `valid_batches` fixed batches in eval mode without "
        "gradients, so the extra cost is about `valid_batches / valid_every` forward passes per "
        "step against one forward and backward pass per step of the test itself.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
