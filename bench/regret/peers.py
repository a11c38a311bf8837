"""The peers' suggestion rules, applied to the curve an lrrange range test recorded.

fastai's four rules are fastai's own functions, called as ``Learner.lr_find``
calls them. The steepest-gradient rule of torch-lr-finder and Lightning is
written here from their documented behaviour (see PEERS.md), not imported.
"""

from __future__ import annotations

import numpy as np
import torch
from fastai.callback import schedule as fastai_schedule


def fastai_rule(name: str, lrs: np.ndarray, smoothed: np.ndarray, num_it: int) -> float:
    """fastai's ``name`` rule on ``lrs[num_it//10:-5]``, cut at the first NaN, as ``lr_find`` does."""
    lr_t = torch.tensor(lrs[num_it // 10 : -5])
    loss_t = torch.tensor(smoothed[num_it // 10 : -5])
    nan = torch.nonzero(torch.isnan(loss_t))
    if len(nan):
        lr_t, loss_t = lr_t[: int(nan.min())], loss_t[: int(nan.min())]
    return float(getattr(fastai_schedule, name)(lr_t, loss_t, num_it)[0])


def torch_lr_finder(lrs: np.ndarray, losses: np.ndarray) -> float:
    """torch-lr-finder 0.2: its own EMA (``smooth_f=0.05``, no bias correction, stop at 5x best),
    then the LR of the most negative ``np.gradient`` of the loss per step on ``[10:-5]``."""
    smooth, best, out = None, np.inf, []
    for x in losses:
        smooth = x if smooth is None else 0.05 * x + 0.95 * smooth
        out.append(smooth)
        best = min(best, smooth)
        if smooth > 5 * best:
            break
    sm, lr = np.asarray(out), lrs[: len(out)]
    if len(sm) < 17:
        return float(lr[0])
    return float(lr[10:-5][int(np.argmin(np.gradient(sm[10:-5])))])


def lightning(lrs: np.ndarray, smoothed: np.ndarray) -> float:
    """Lightning's ``suggestion(skip_begin=10, skip_end=1)``: finite losses of ``[10:-1]``, then
    the most negative ``np.gradient`` per step (its EMA is beta 0.98, as lrrange's)."""
    sm, lr = smoothed[10:-1], lrs[10:-1]
    keep = np.isfinite(sm)
    sm, lr = sm[keep], lr[keep]
    if len(sm) < 2:
        return float(lrs[0])
    return float(lr[int(np.argmin(np.gradient(sm)))])
