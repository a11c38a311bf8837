"""The bias-corrected exponentially weighted moving average of the loss.

``avg_t = beta * avg_{t-1} + (1 - beta) * loss_t`` with ``avg_0 = 0``, and the
reported value ``smoothed_t = avg_t / (1 - beta**t)`` removes the bias towards
zero of the first steps (Kingma & Ba's correction, as fastai's ``AvgSmoothLoss``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


class BiasCorrectedEMA:
    """Streaming form: ``update(loss)`` returns the smoothed value after that step.

    >>> ema = BiasCorrectedEMA(beta=0.5)
    >>> ema.update(2.0), ema.update(2.0), ema.update(5.0)
    (2.0, 2.0, 3.7142857142857144)
    """

    def __init__(self, beta: float = 0.98):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta!r}")
        self.beta = float(beta)
        self.avg = 0.0
        self.t = 0

    def update(self, loss: float) -> float:
        self.t += 1
        self.avg = self.beta * self.avg + (1.0 - self.beta) * float(loss)
        return self.avg / (1.0 - self.beta**self.t)


def ema(losses: ArrayLike, beta: float = 0.98) -> np.ndarray:
    """Bias-corrected EMA of a whole loss sequence (same values as the streaming form).

    >>> ema([1.0, 3.0], beta=0.5).tolist()
    [1.0, 2.3333333333333335]
    """
    smoother = BiasCorrectedEMA(beta)
    return np.array([smoother.update(x) for x in np.asarray(losses, dtype=float)], dtype=float)
