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
        self.value = 0.0
        self.t = 0

    def update(self, loss: float) -> float:
        """Add one loss; return ``smoothed_t``.

        Computed in the equivalent form ``s_t = s_{t-1} + w_t * (loss - s_{t-1})``
        with ``w_t = (1 - beta) / (1 - beta**t)``, so that ``w_1 == 1`` exactly:
        the first smoothed value is the first loss and a constant loss stays
        exactly constant (``avg / (1 - beta**t)`` misses both by rounding).
        """
        self.t += 1
        weight = (1.0 - self.beta) / (1.0 - self.beta**self.t)
        self.value += weight * (float(loss) - self.value)
        return self.value


def ema(losses: ArrayLike, beta: float = 0.98) -> np.ndarray:
    """Bias-corrected EMA of a whole loss sequence (same values as the streaming form).

    >>> ema([1.0, 3.0], beta=0.5).tolist()
    [1.0, 2.333333333333333]
    """
    smoother = BiasCorrectedEMA(beta)
    return np.array([smoother.update(x) for x in np.asarray(losses, dtype=float)], dtype=float)
