"""``lrrange demo``: a range test and a one-cycle fit on scikit-learn's digits, offline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastai.learner import Learner


def digits_learner(seed: int = 0, bs: int = 64) -> Learner:
    """A fastai ``Learner`` with a small MLP on scikit-learn's bundled 8x8 digits."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the install
        raise SystemExit("the demo needs scikit-learn: pip install 'lrrange[demo]'") from e
    import numpy as np
    import torch
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import accuracy
    from fastai.torch_core import set_seed
    from torch import nn

    set_seed(seed, reproducible=True)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_train = int(0.8 * len(x))
    mean, std = x[:n_train].mean(0), x[:n_train].std(0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    train = list(zip(xt[:n_train], yt[:n_train], strict=True))
    valid = list(zip(xt[n_train:], yt[n_train:], strict=True))
    dls = DataLoaders.from_dsets(train, valid, bs=bs, num_workers=0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    return Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy)


def demo(out: str = "lr_range.png", epochs: int = 5, num_it: int = 100, seed: int = 0) -> float:
    """Run the range test, save its plot to ``out``, train one-cycle at the suggestion."""
    import matplotlib

    matplotlib.use("Agg")

    from lrrange import OneCycle

    learn = digits_learner(seed)
    res = learn.range_test(num_it=num_it, show_plot=False)
    print(f"range test: {len(res)} steps, stopped: {res.stop_reason}")
    for name, lr in res.suggestions.items():
        print(f"  {name:>10}: {lr:.3g}")
    print(f"suggested learning rate: {res.suggestion:.3g}")
    res.plot().savefig(out, dpi=110, bbox_inches="tight")
    print(f"plot written to {out}")
    with learn.no_bar(), learn.no_logging():
        learn.fit(epochs, cbs=OneCycle())  # lr_max = res.suggestion
    acc = float(learn.recorder.values[-1][2])
    print(f"one-cycle, {epochs} epochs at {res.suggestion:.3g}: validation accuracy {acc:.4f}")
    return acc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lrrange", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="range test + one-cycle on scikit-learn's digits (no download)")
    p.add_argument("--out", default="lr_range.png", help="where to write the plot (PNG)")
    p.add_argument("--epochs", type=int, default=5, help="one-cycle epochs after the test")
    p.add_argument("--num-it", type=int, default=100, help="range-test steps")
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(args.out, args.epochs, args.num_it, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
