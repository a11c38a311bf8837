"""fastai callbacks: the range test (``LRRange``) and the one-call ``Learner.range_test``.

The callbacks translate fastai events into calls to the pure core
(``schedules``, ``smoothing``, ``suggest``, ``result``, ``snapshot``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from fastai.callback.core import (
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
)
from fastai.learner import Learner
from fastai.torch_core import even_mults

from .result import RangeResult
from .schedules import RANGE_MODES, range_lr
from .smoothing import BiasCorrectedEMA
from .snapshot import Snapshot

_CANCELS = (
    CancelBatchException,
    CancelBackwardException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
)

LRSpec = float | slice | Sequence[float]


def _is_real(x: Any) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _check_lr_spec(name: str, value: Any) -> None:
    """Reject an LR that is not a positive finite float, a slice of them, or a sequence of them."""
    if isinstance(value, slice):
        parts = [v for v in (value.start, value.stop) if v is not None]
        if value.stop is None or value.step is not None:
            raise ValueError(f"{name} as a slice must be slice(stop) or slice(start, stop), got {value!r}")
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        parts = list(value)
        if not parts:
            raise ValueError(f"{name} must not be an empty sequence")
    else:
        parts = [value]
    for v in parts:
        if not _is_real(v) or not math.isfinite(v) or v <= 0:
            raise ValueError(
                f"{name} must be a finite number > 0 (or a slice/sequence of them), got {value!r}"
            )


def group_lrs(name: str, value: LRSpec, n_groups: int) -> np.ndarray:
    """One LR per param group, as fastai's ``fit(lr=...)`` spreads a scalar, slice or sequence.

    A scalar gives every group the same LR; ``slice(lo, hi)`` spaces the groups
    geometrically from ``lo`` to ``hi``; ``slice(hi)`` gives ``hi/10`` to all but
    the last group; a sequence must have one LR per group.
    """
    if isinstance(value, slice):
        if value.start is None:
            out = [value.stop / 10] * (n_groups - 1) + [value.stop]
        else:
            out = even_mults(value.start, value.stop, n_groups) if n_groups > 1 else [value.stop]
        return np.asarray(out, dtype=float).reshape(n_groups)
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        out = np.asarray(list(value), dtype=float)
        if len(out) != n_groups:
            raise ValueError(
                f"{name} has {len(out)} values but the optimizer has {n_groups} param groups; "
                "give one per group, a scalar or a slice"
            )
        return out
    return np.full(n_groups, float(value))


class LRRange(Callback):
    """Leslie Smith's LR range test (Smith, 2017, "Cyclical Learning Rates", section 3.3).

    Trains for up to ``num_it`` steps while the LR grows from ``start_lr`` to
    ``end_lr`` (``mode="exp"`` geometric, ``"linear"`` arithmetic), records
    each step's loss and its bias-corrected EMA (``beta``), and cancels the
    fit when the loss is not finite, when the smoothed loss exceeds
    ``diverge_factor`` times its best (if ``stop_div``), or after ``num_it``
    steps. Validation is skipped. Afterwards the learner is restored
    exactly — model, optimizer, RNGs — also when the test raises; the
    ``RangeResult`` lands on ``learn.range_result`` and ``self.result``, and
    the callback detaches itself so the next ``fit`` trains normally.
    """

    order = -10  # before Recorder (50) resets its history and before any LR scheduler
    run_valid = False
    _learn = None

    def __init__(
        self,
        start_lr: LRSpec = 1e-7,
        end_lr: LRSpec = 10,
        num_it: int = 100,
        mode: str = "exp",
        beta: float = 0.98,
        stop_div: bool = True,
        diverge_factor: float = 4.0,
    ):
        super().__init__()
        _check_lr_spec("start_lr", start_lr)
        _check_lr_spec("end_lr", end_lr)
        if isinstance(num_it, bool) or not isinstance(num_it, Integral) or num_it < 2:
            raise ValueError(f"num_it must be an integer >= 2, got {num_it!r}")
        if mode not in RANGE_MODES:
            raise ValueError(f"mode must be one of {RANGE_MODES}, got {mode!r}")
        if not _is_real(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be a number in [0, 1), got {beta!r}")
        if not _is_real(diverge_factor) or not diverge_factor > 1.0:
            raise ValueError(f"diverge_factor must be a number > 1, got {diverge_factor!r}")
        if not isinstance(stop_div, bool):
            raise ValueError(f"stop_div must be True or False, got {stop_div!r}")
        if not isinstance(start_lr, slice) and not isinstance(end_lr, slice):
            lo, hi = np.atleast_1d(np.asarray(start_lr, float)), np.atleast_1d(np.asarray(end_lr, float))
            if (lo.size == hi.size or 1 in (lo.size, hi.size)) and np.any(hi <= lo):
                raise ValueError(f"end_lr must be > start_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}")
        self.start_lr, self.end_lr, self.num_it, self.mode = start_lr, end_lr, int(num_it), mode
        self.beta, self.stop_div, self.diverge_factor = float(beta), stop_div, float(diverge_factor)
        self.result: RangeResult | None = None
        self._snapshot: Snapshot | None = None

    # fastai attaches a callback by setting ``cb.learn``; this is the one moment
    # before ``fit`` creates an optimizer or sets its LR, so note what it was.
    @property
    def learn(self) -> Learner | None:
        return self._learn

    @learn.setter
    def learn(self, learn: Learner | None) -> None:
        object.__setattr__(self, "_learn", learn)
        if learn is not None and self._snapshot is None:
            opt = learn.opt
            hypers = None if opt is None else [(h.get("lr"), h.get("wd")) for h in opt.hypers]
            object.__setattr__(self, "_attached", (opt, hypers, learn.lr))

    # --- events -----------------------------------------------------------

    def before_fit(self) -> None:
        learn = self.learn
        try:
            n_batches = len(learn.dls.train)
            if n_batches == 0:
                raise ValueError(
                    "the training DataLoader (learn.dls.train) is empty; the range test needs batches"
                )
            n_groups = len(learn.opt.param_lists)
            starts = group_lrs("start_lr", self.start_lr, n_groups)
            ends = group_lrs("end_lr", self.end_lr, n_groups)
            if np.any(ends <= starts):
                raise ValueError(f"end_lr must be > start_lr in every param group, got {starts} and {ends}")
        except BaseException:
            self._restore_attached()
            self._detach()
            raise
        self._starts, self._ends = starts, ends
        self._snapshot = Snapshot(learn)
        self._lrs: list[float] = []
        self._losses: list[float] = []
        self._smoothed: list[float] = []
        self._ema = BiasCorrectedEMA(self.beta)
        self._best = math.inf
        self._stop_reason: str | None = None
        learn.n_epoch = math.ceil(self.num_it / n_batches)
        self._install_guard()

    def before_batch(self) -> None:
        lrs = range_lr(len(self._lrs), self.num_it, self._starts, self._ends, self.mode)
        for hyper, lr in zip(self.learn.opt.hypers, lrs, strict=True):
            hyper["lr"] = float(lr)

    def after_loss(self) -> None:
        loss = self.learn.loss
        if loss.numel() != 1:
            raise ValueError(
                f"the range test needs a scalar loss, got a loss of shape {tuple(loss.shape)}; "
                "use a loss function that reduces over the batch"
            )
        value = float(loss.detach())
        if not math.isfinite(value):
            self._stop("nonfinite")
        smoothed = self._ema.update(value)
        self._lrs.append(float(self.learn.opt.hypers[-1]["lr"]))
        self._losses.append(value)
        self._smoothed.append(smoothed)
        if self.stop_div and smoothed > self.diverge_factor * self._best:
            self._stop("diverged")
        self._best = min(self._best, smoothed)
        if len(self._lrs) >= self.num_it:
            self._stop("completed")

    def before_validate(self) -> None:
        raise CancelValidException()

    def after_fit(self) -> None:
        self._finish(self._stop_reason or "interrupted", store=True)

    # --- ending -----------------------------------------------------------

    def _stop(self, reason: str) -> None:
        self._stop_reason = reason
        raise CancelFitException()

    def _install_guard(self) -> None:
        """Catch what escapes a fit (fastai then calls no ``after_fit``) to restore first.

        fastai runs every nested stage (epoch, train, batch, backward, step)
        through ``learn._with_events``, looked up anew each time, so an instance
        attribute wraps them all.
        """
        learn = self.learn
        inner = learn._with_events

        def guarded(*args, **kwargs):
            try:
                return inner(*args, **kwargs)
            except _CANCELS:
                raise
            except BaseException as e:
                if self._snapshot is not None:
                    self._finish("interrupted", store=isinstance(e, KeyboardInterrupt))
                raise

        learn._with_events = guarded

    def _result(self, reason: str) -> RangeResult:
        meta = {
            "num_it": self.num_it,
            "mode": self.mode,
            "beta": self.beta,
            "start_lr": self._starts.tolist(),
            "end_lr": self._ends.tolist(),
            "diverge_factor": self.diverge_factor,
            "stop_div": self.stop_div,
        }
        return RangeResult(self._lrs, self._losses, self._smoothed, reason, meta)

    def _finish(self, reason: str, store: bool) -> None:
        """Restore the learner, optionally store the result, detach. Runs once."""
        learn = self.learn
        try:
            result = self._result(reason) if store else None
            snapshot, self._snapshot = self._snapshot, None
            if "_with_events" in vars(learn):
                del learn._with_events
            if snapshot is not None:
                snapshot.restore()
            self._restore_attached()
            if result is not None:
                self.result = result
                learn.range_result = result
        finally:
            self._detach()

    def _restore_attached(self) -> None:
        """Undo what ``fit`` itself did before ``before_fit``: a new optimizer, its LR and wd."""
        opt, hypers, lr = self._attached
        learn = self.learn
        learn.lr = lr
        if learn.opt is not opt:
            learn.opt = opt
        elif opt is not None:
            for h, (old_lr, old_wd) in zip(opt.hypers, hypers, strict=True):
                for key, old in (("lr", old_lr), ("wd", old_wd)):
                    if old is None:
                        h.pop(key, None)
                    else:
                        h[key] = old

    def _detach(self) -> None:
        learn = self.learn
        if learn is not None and self in learn.cbs:
            learn.remove_cb(self)


def range_test(
    self: Learner,
    start_lr: LRSpec = 1e-7,
    end_lr: LRSpec = 10,
    num_it: int = 100,
    mode: str = "exp",
    beta: float = 0.98,
    stop_div: bool = True,
    diverge_factor: float = 4.0,
    show_plot: bool = True,
) -> RangeResult:
    """Run an LR range test (see ``LRRange``) and return its ``RangeResult``.

    The learner is left as it was; ``show_plot`` draws ``result.plot()``.
    """
    cb = LRRange(start_lr, end_lr, num_it, mode, beta, stop_div, diverge_factor)
    with self.no_logging():
        self.fit(1, cbs=cb)
    if show_plot:
        cb.result.plot()
    return cb.result


Learner.range_test = range_test
