"""fastai callbacks: the range test (``LRRange``) and the one-call ``Learner.range_test``.

The callbacks translate fastai events into calls to the pure core
(``schedules``, ``smoothing``, ``suggest``, ``result``, ``snapshot``).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from functools import partial
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
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
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.schedule import LRFinder, ParamScheduler
from fastai.callback.training import GradientAccumulation
from fastai.imports import noop  # fastai compares loggers with its own noop
from fastai.learner import Learner
from fastai.optimizer import OptimWrapper
from fastai.torch_core import even_mults, find_bs
from fastcore.foundation import L

from . import distributed, multi
from .result import CURVES, RangeResult
from .schedules import CYCLICAL_MODES, RANGE_MODES, cyclical, one_cycle, range_lr
from .smoothing import BiasCorrectedEMA
from .snapshot import RNGState, Snapshot, check_snapshot_mode, loop_state

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


def _is_count(x: Any) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool) and x >= 1


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


def _n_groups(learn: Learner) -> int | None:
    """How many param groups ``fit`` will give the optimizer (None when that cannot be told yet)."""
    if learn.opt is not None:
        return len(learn.opt.param_lists)
    if isinstance(learn.opt_func, OptimWrapper):
        return len(learn.opt_func.param_lists)
    try:
        params = L(learn.splitter(learn.model))
    except Exception:
        return None
    return len(params) if len(params) and isinstance(params[0], (L, list)) else 1


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

    A step is an optimizer step: under ``GradientAccumulation`` its loss is
    the mean of its batches; a step ``MixedPrecision``'s scaler skips is
    retried at the same LR. With several param groups ``result.lrs`` is the
    last group's LR. ``snapshot="disk"`` keeps the saved tensors in a
    temporary file (``tempfile.gettempdir()``) instead of memory.

    Validation-loss mode (Smith's advice to read the validation loss):
    ``valid_every=k`` evaluates, after every k-th optimizer step, the mean
    loss on the first ``valid_batches`` batches of ``learn.dls.valid`` (the
    same batches each time, eval mode, no gradient) into ``result.val_lrs`` /
    ``result.val_losses``; ``suggest_from="valid"`` bases the suggestions on
    that curve.

    Repeated tests in one fit: ``repeats=k`` runs k tests from the same
    starting weights, run ``i`` with the batch order of ``random.Random(seed + i)``
    (and, with ``reinit``, fresh weights after ``torch.manual_seed(seed + i)``);
    the result is then a ``multi.RepeatedResult``, the same as
    ``learn.range_test(repeats=k, reinit=..., seed=...)`` gives.
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
        valid_every: int | None = None,
        valid_batches: int = 4,
        suggest_from: str = "train",
        snapshot: str = "memory",
        repeats: int = 1,
        reinit: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        check_snapshot_mode(snapshot)
        multi.check_repeats(repeats, reinit, seed)
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
        for name, value in (("valid_every", valid_every), ("valid_batches", valid_batches)):
            if (value is not None or name == "valid_batches") and not _is_count(value):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if suggest_from not in CURVES:
            raise ValueError(f"suggest_from must be one of {CURVES}, got {suggest_from!r}")
        if suggest_from == "valid" and valid_every is None:
            raise ValueError("suggest_from='valid' needs valid_every (an integer >= 1), got valid_every=None")
        self.valid_every = None if valid_every is None else int(valid_every)
        self.valid_batches, self.suggest_from = int(valid_batches), suggest_from
        self.snapshot = snapshot
        self.repeats, self.reinit, self.seed = int(repeats), reinit, int(seed)
        self.result: RangeResult | multi.RepeatedResult | None = None
        self._snapshot: Snapshot | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # fastai's Callback.__setattr__ looks every name up on the learner (a failing getattr
        # chain) to warn about shadowing; the private per-step state skips that cost
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # fastai attaches a callback by setting ``cb.learn``; this is the one moment
    # before ``fit`` creates an optimizer or sets its LR, so note what it was.
    @property
    def learn(self) -> Learner | None:
        return self._learn

    @learn.setter
    def learn(self, learn: Learner | None) -> None:
        old = self._learn
        if old is not None and old is not learn:
            self._remove_guard(old)
        if learn is not None and self._snapshot is None:
            n_groups = _n_groups(learn)
            if n_groups is not None:
                self._group_endpoints(n_groups)  # a bad sequence length fails here, before any change
        object.__setattr__(self, "_learn", learn)
        if learn is not None and self._snapshot is None:
            opt = learn.opt
            hypers = None if opt is None else [(h.get("lr"), h.get("wd")) for h in opt.hypers]
            object.__setattr__(self, "_attached", (opt, hypers, learn.lr))
            self._install_guard(learn)

    def _group_endpoints(self, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        """``start_lr`` and ``end_lr`` spread over ``n_groups`` param groups, checked."""
        starts = group_lrs("start_lr", self.start_lr, n_groups)
        ends = group_lrs("end_lr", self.end_lr, n_groups)
        if np.any(ends <= starts):
            raise ValueError(f"end_lr must be > start_lr in every param group, got {starts} and {ends}")
        return starts, ends

    # --- events -----------------------------------------------------------

    def before_fit(self) -> None:
        learn = self.learn
        try:
            # under DDP each rank draws only its shard of the training set per epoch
            self._dist = distributed.is_distributed(learn)
            n_batches = distributed.batches_per_epoch(learn)
            if n_batches == 0:
                raise ValueError(
                    "the training DataLoader (learn.dls.train) is empty; the range test needs batches"
                )
            starts, ends = self._group_endpoints(len(learn.opt.param_lists))
            if self.valid_every is not None and (len(learn.dls.loaders) < 2 or len(learn.dls.valid) == 0):
                raise ValueError(
                    "valid_every needs a validation DataLoader (learn.dls.valid) with at least one batch"
                )
        except BaseException:
            self._restore_attached()
            self._detach()
            raise
        self._starts, self._ends = starts, ends
        # the whole schedule as Python floats up front: NumPy calls in the per-step path cost ~2%
        self._lr_table = [
            np.atleast_1d(range_lr(i, self.num_it, starts, ends, self.mode)).tolist()
            for i in range(self.num_it)
        ]
        self._snapshot = Snapshot(learn, self.snapshot, vars(self).pop("_loop_state", None))
        self._valid_data = self._fixed_valid_batches() if self.valid_every is not None else []
        self._runs: list[RangeResult] = []
        self._start_run()
        # a run needs at most ``_epochs`` epochs and each later run starts at an epoch boundary
        learn.n_epoch = self._epochs(n_batches) * self.repeats
        learn.logger = noop  # no per-epoch table rows for a test's epochs; the guard puts it back

    @property
    def _repeated(self) -> bool:
        """Several runs (or one from fresh weights), read as one ``multi.RepeatedResult``."""
        return self.repeats > 1 or self.reinit

    def _start_run(self) -> None:
        """Fresh per-run state; in repeated mode also run ``i``'s batch order (and fresh weights).

        Run ``i`` draws its batch order from ``random.Random(seed + i)`` and,
        with ``reinit``, its weights after ``torch.manual_seed(seed + i)``: the
        same curves as ``learn.range_test(repeats=..., reinit=..., seed=...)``.
        """
        self._pending: list[tuple[Any, Any]] = []  # (loss, targets) of the current step's micro-batches
        self._skipped = False
        self._lrs: list[float] = []
        self._losses: list[float] = []
        self._smoothed: list[float] = []
        self._ema = BiasCorrectedEMA(self.beta)
        self._best = math.inf
        self._stop_reason: str | None = None
        self._val_lrs: list[float] = []
        self._val_losses: list[float] = []
        if self._repeated:
            run_seed = self.seed + len(self._runs)
            self.learn.dls.train.rng = random.Random(run_seed)
            if self.reinit:
                multi.reinitialise(self.learn.model, run_seed)

    def before_batch(self) -> None:
        lrs = self._lr_table[min(len(self._lrs), self.num_it - 1)]
        opt = self.learn.opt
        # an OptimWrapper's ``hypers`` are copies: its torch optimizer's param groups hold the LR
        groups = opt.opt.param_groups if isinstance(opt, OptimWrapper) else opt.hypers
        for group, lr in zip(groups, lrs, strict=True):
            group["lr"] = lr

    def after_loss(self) -> None:
        loss = self.learn.loss
        if loss.numel() != 1:
            raise ValueError(
                f"loss_func must return a scalar loss for the range test, got a loss of shape "
                f"{tuple(loss.shape)}; use a loss function that reduces over the batch"
            )
        # the loss stays a tensor until ``after_step``: reading it here would stall a GPU before
        # the backward pass, a sync fastai's own loop (Recorder, after the step) lacks
        self._pending.append((loss.detach(), self.learn.yb))  # yb: to weight several micro-batches

    def after_cancel_step(self) -> None:
        self._skipped = True  # e.g. MixedPrecision's gradient scaler found inf/NaN gradients

    def after_step(self) -> None:
        recorded = self._end_step()
        if recorded and self.valid_every is not None and len(self._lrs) % self.valid_every == 0:
            self._val_lrs.append(self._lrs[-1])
            self._val_losses.append(self._valid_loss())
        if self._stop_reason is not None:
            if self._repeated and len(self._runs) + 1 < self.repeats:
                self._runs.append(self._result(self._stop_reason))
                self._snapshot.rewind()
                self._start_run()
                raise CancelEpochException()  # the next run starts with a fresh pass over the data
            raise CancelFitException()

    def _end_step(self, collective: bool = True) -> bool:
        """Record the optimizer step just taken; False (nothing recorded) when it was skipped.

        A step's loss is the batch-size-weighted mean of its micro-batches (more
        than one under ``GradientAccumulation``); under DDP, of every rank's
        micro-batches (one all-reduce, so every rank decides the same). A step
        the optimizer did not take (``CancelStepException``, as MixedPrecision
        raises when the gradient scaler finds inf/NaN gradients) is not
        recorded and not counted: the next batch retries the same LR.
        """
        pending, self._pending = self._pending, []
        skipped, self._skipped = self._skipped, False
        if not pending:
            return False
        values = [v for v, _ in pending]
        if self._dist and collective:
            value = distributed.mean_loss(values, [find_bs(yb) for _, yb in pending])
        elif len(values) == 1:
            value = float(values[0])
        else:
            sizes = [find_bs(yb) for _, yb in pending]
            value = sum(float(v) * n for v, n in zip(values, sizes, strict=True)) / sum(sizes)
        if not math.isfinite(value):
            self._stop_reason = "nonfinite"
            return False
        if skipped:
            return False
        smoothed = self._ema.update(value)
        self._lrs.append(float(self.learn.opt.hypers[-1]["lr"]))
        self._losses.append(value)
        self._smoothed.append(smoothed)
        if self.stop_div and smoothed > self.diverge_factor * self._best:
            self._stop_reason = "diverged"
        elif len(self._lrs) >= self.num_it:
            self._stop_reason = "completed"
        self._best = min(self._best, smoothed)
        return True

    def _epochs(self, n_batches: int) -> int:
        """Epochs enough for ``num_it`` optimizer steps (of several batches under ``GradientAccumulation``).

        With ``MixedPrecision`` there is room for 64 more batches: its gradient
        scaler halves the scale at each step it skips, and 64 halvings take
        any usable initial scale to one that no longer overflows.
        """
        learn, per_step = self.learn, 1
        bs = getattr(learn.dls.train, "bs", None) or 1
        for cb in learn.cbs:
            if isinstance(cb, GradientAccumulation):
                per_step = max(per_step, math.ceil(cb.n_acc / bs))
        spare = n_batches if per_step > 1 else 0  # a short last batch can delay a step per epoch
        if any(isinstance(cb, MixedPrecision) for cb in learn.cbs):
            spare += 64
        return math.ceil((self.num_it * per_step + spare) / n_batches)

    def before_validate(self) -> None:
        raise CancelValidException()

    # --- validation-loss mode --------------------------------------------

    def _fixed_valid_batches(self) -> list:
        """The first ``valid_batches`` batches of ``learn.dls.valid``, kept for every evaluation.

        Iterating a loader draws from the global RNGs (PyTorch seeds its
        iterator), so they are put back: the training steps see the random
        numbers they would have seen without validation.
        """
        dl = self.learn.dls.valid
        rng, rngs = dl.rng, RNGState()
        try:
            return list(itertools.islice(dl, self.valid_batches))
        finally:
            dl.rng = rng
            rngs.restore()

    def _valid_loss(self) -> float:
        """Mean loss over the fixed batches, weighted by batch size; eval mode, no gradient."""
        learn, model = self.learn, self.learn.model
        modes = [(m, m.training) for m in model.modules()]
        # fastai's DistributedDL (DDP) has no n_inp over a plain dataset: guess as Learner._split does
        n_inp = getattr(learn.dls, "n_inp", max(1, len(self._valid_data[0]) - 1))
        total, count = 0.0, 0
        model.eval()
        try:
            with torch.no_grad():
                for b in self._valid_data:
                    bs = find_bs(b)
                    total += float(learn.loss_func(model(*b[:n_inp]), *b[n_inp:])) * bs
                    count += bs
        finally:
            for m, mode in modes:
                m.training = mode
        return total / count

    def after_fit(self) -> None:
        self._finish(self._stop_reason or "interrupted", store=True)

    # --- ending -----------------------------------------------------------

    def _install_guard(self, learn: Learner) -> None:
        """Catch what escapes a fit (fastai then calls no ``after_fit``) to restore first.

        fastai runs the fit and every nested stage (epoch, train, batch,
        backward, step) through ``learn._with_events``, looked up anew each
        time, so an instance attribute set at attach time wraps them all, even
        another callback's ``before_fit``. A failure before the test began
        (snapshot not yet taken) still undoes what ``fit`` did and detaches.
        """
        guard = getattr(self, "_guard", None)
        if guard is not None and vars(learn).get("_with_events") is guard:
            return
        inner = learn._with_events

        def guarded(f, event_type, *args, **kwargs):
            logger = learn.logger
            if event_type == "fit" and self._snapshot is None:
                # before any callback's before_fit (TrainEvalCallback resets the counters)
                object.__setattr__(self, "_loop_state", loop_state(learn))
            try:
                return inner(f, event_type, *args, **kwargs)
            except _CANCELS:
                raise
            except BaseException as e:
                if self._snapshot is not None:
                    self._finish("interrupted", store=isinstance(e, KeyboardInterrupt))
                elif event_type == "fit" and self.learn is learn and self in learn.cbs:
                    try:
                        self._restore_attached()
                    finally:
                        self._detach()
                raise
            finally:
                if event_type == "fit":  # muted in before_fit; after every callback's after_fit
                    learn.logger = logger

        object.__setattr__(self, "_guard", guarded)
        learn._with_events = guarded

    def _remove_guard(self, learn: Learner) -> None:
        guard = getattr(self, "_guard", None)
        if guard is not None and vars(learn).get("_with_events") is guard:
            del learn._with_events

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
        if self.valid_every is not None:
            meta.update(valid_every=self.valid_every, valid_batches=len(self._valid_data))
        return RangeResult(
            self._lrs, self._losses, self._smoothed, reason, meta,
            self._val_lrs, self._val_losses, self.suggest_from,
        )

    def _finish(self, reason: str, store: bool) -> None:
        """Restore the learner, optionally store the result, detach. Runs once."""
        learn = self.learn
        try:
            if store and getattr(self, "_pending", None):
                # an interrupted step's loss was measured: keep it on the curve (this rank's
                # own: the other ranks of a DDP run may not reach a collective any more)
                self._end_step(collective=False)
            result = self._result(reason) if store else None
            if result is not None and self._repeated:
                runs = [*self._runs, result]
                seeds = [self.seed + i for i in range(len(runs))]
                result = multi.RepeatedResult(runs, seeds, self.reinit, {"wd": None})
            snapshot, self._snapshot = self._snapshot, None
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
            for i, key in enumerate(("lr", "wd")):
                olds = [h[i] for h in hypers]
                if all(old is not None for old in olds):
                    opt.set_hyper(key, olds)  # an OptimWrapper's ``hypers`` are copies: set through it
                    continue
                for h, old in zip(opt.hypers, olds, strict=True):
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
    valid_every: int | None = None,
    valid_batches: int = 4,
    suggest_from: str = "train",
    repeats: int = 1,
    reinit: bool = False,
    seed: int = 0,
    wds: Sequence[float] | None = None,
    snapshot: str = "memory",
) -> RangeResult:
    """Run an LR range test (see ``LRRange``) and return its ``RangeResult``.

    The learner is left as it was; ``show_plot`` draws ``result.plot()`` (on
    rank 0 only under distributed training). ``repeats`` > 1 or ``reinit``
    run several tests (``lrrange.multi.repeated_test``, returning a
    ``RepeatedResult``); ``wds`` runs one per weight decay
    (``lrrange.multi.wd_sweep``, returning a ``SweepResult``); ``seed`` sets
    those runs' batch orders (and fresh weights). ``snapshot="disk"`` keeps
    the saved state in a temporary file instead of memory (see ``LRRange``).
    """
    kwargs = dict(
        start_lr=start_lr, end_lr=end_lr, num_it=num_it, mode=mode, beta=beta, stop_div=stop_div,
        diverge_factor=diverge_factor, valid_every=valid_every, valid_batches=valid_batches,
        suggest_from=suggest_from, snapshot=snapshot,
    )
    multi.check_repeats(repeats, reinit, seed)
    if wds is not None or repeats != 1 or reinit:
        if wds is not None:
            result = multi.wd_sweep(self, wds, repeats, reinit, seed, **kwargs)
        else:
            result = multi.repeated_test(self, repeats, reinit, seed, **kwargs)
    else:
        cb = LRRange(**kwargs)
        self.fit(1, cbs=cb)
        result = cb.result
    if show_plot and distributed.is_rank0():
        result.plot()
    return result


Learner.range_test = range_test


def _check_positive(name: str, value: Any) -> None:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_mom(name: str, value: Any) -> None:
    if not _is_real(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def _from_range_test(learn: Learner, arg: str, attr: str, index: int | None = None) -> float:
    """The LR an argument left as ``None`` takes from ``learn.range_result``; a ValueError if none fits."""
    result = getattr(learn, "range_result", None)
    if result is None:
        raise ValueError(
            f"{arg} is None and the learner has no range test result yet: run LRRange first "
            f"(learn.range_test() or learn.fit(1, cbs=LRRange())) or pass {arg}"
        )
    value = getattr(result, attr, None)
    where = f"learn.range_result.{attr}"
    if index is not None and value is not None:
        value, where = value[index], f"{where}[{index}]"
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{arg} is None but {where} is {value!r}, not a finite LR > 0; pass {arg}")
    return float(value)


class _Schedule(ParamScheduler):
    """A fastai ``ParamScheduler`` whose schedules are built from the learner at each ``before_fit``.

    The parent sets the hypers every training batch, records the last param
    group's values in ``self.hps`` and hands them to ``learn.recorder.hps``
    after the fit, so ``learn.recorder.plot_sched()`` draws the schedule. While
    a range test (``LRRange`` or fastai's ``lr_find``) runs in the same fit the
    schedule stands aside.
    """

    def __init__(self) -> None:
        super().__init__({})

    def _schedules(self, n_groups: int) -> dict[str, Any]:
        raise NotImplementedError

    def before_fit(self) -> None:
        if any(isinstance(cb, (LRRange, LRFinder)) for cb in self.learn.cbs):
            self.run = False  # fastai sets ``run`` back to True after the fit
            return
        self.scheds = self._schedules(len(self.learn.opt.param_lists))
        super().before_fit()


class OneCycle(_Schedule):
    """Smith's one-cycle policy (Smith, 2018), scheduled as fastai's ``fit_one_cycle`` does.

    ``learn.fit(n, cbs=OneCycle(lr_max, div, div_final, pct_start, moms))`` sets,
    every training batch at fraction ``pct`` of the fit, LR
    ``one_cycle(pct, lr_max/div, lr_max, lr_max/div_final, pct_start)`` and
    ``mom`` (Adam's beta1 in fastai; fastai's ``SGD`` uses it only when made
    with ``mom > 0``) ``one_cycle(pct, *moms, pct_start)``: the LR and momentum
    trace of ``learn.fit_one_cycle(n, lr_max, ...)`` bit for bit, momentum
    falling as the LR rises. ``lr_max=None`` takes
    ``learn.range_result.suggestion`` at the start of each fit; a slice or a
    sequence gives each param group its own peak, as ``fit_one_cycle`` does.
    """

    def __init__(
        self,
        lr_max: LRSpec | None = None,
        div: float = 25.0,
        div_final: float = 1e5,
        pct_start: float = 0.25,
        moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
    ):
        super().__init__()
        if lr_max is not None:
            _check_lr_spec("lr_max", lr_max)
        _check_positive("div", div)
        _check_positive("div_final", div_final)
        if not _is_real(pct_start) or not 0.0 < pct_start < 1.0:
            raise ValueError(f"pct_start must be a number in (0, 1), got {pct_start!r}")
        if not isinstance(moms, (tuple, list)) or len(moms) != 3:
            raise ValueError(
                f"moms must be a 3-tuple (start, middle, end) of momentums in [0, 1), got {moms!r}"
            )
        for m in moms:
            _check_mom("moms", m)
        self.lr_max, self.div, self.div_final = lr_max, float(div), float(div_final)
        self.pct_start = float(pct_start)
        self.moms = tuple(float(m) for m in moms)

    def _schedules(self, n_groups: int) -> dict[str, Any]:
        spec = _from_range_test(self.learn, "lr_max", "suggestion") if self.lr_max is None else self.lr_max
        peak = group_lrs("lr_max", spec, n_groups)
        start, end, moms, pct_start = peak / self.div, peak / self.div_final, self.moms, self.pct_start
        return {  # partials, not lambdas, so that ``learn.export()`` can pickle the callback
            "lr": partial(one_cycle, start=start, peak=peak, end=end, pct_start=pct_start),
            "mom": partial(one_cycle, start=moms[0], peak=moms[1], end=moms[2], pct_start=pct_start),
        }


class Cyclical(_Schedule):
    """Smith's cyclical learning rates (Smith, 2017): ``triangular``, ``triangular2`` or ``exp_range``.

    Every training batch ``t`` of a fit (counted from 0: each fit starts a new cycle) gets
    LR ``cyclical(t, base_lr, max_lr, step_size, mode, gamma)``, the trace of
    ``torch.optim.lr_scheduler.CyclicLR(step_size_up=step_size)``; with
    ``cycle_momentum`` the ``mom`` hyper (Adam's beta1; fastai's ``SGD`` uses it
    only when made with ``mom > 0``) cycles inversely, from ``max_mom`` down to
    ``base_mom`` at the LR's peak.

    Defaults. A bound left as ``None`` comes from ``learn.range_result.bounds``
    (rule in ``lrrange.suggest.bounds``, after Smith: ``max_lr`` where the smoothed
    loss stops falling, 90% of the way down its main fall; ``base_lr`` where it
    starts falling, 10% of the way down, but at least ``max_lr / 4``).
    ``step_size=None`` is two epochs of iterations per half cycle (the low end
    of Smith's 2 to 10), shortened to half the fit when the fit has fewer than
    four epochs, so at least one whole cycle, up and back down, fits in it.
    Bounds may be slices or per-group sequences.
    """

    def __init__(
        self,
        base_lr: LRSpec | None = None,
        max_lr: LRSpec | None = None,
        step_size: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        cycle_momentum: bool = True,
        base_mom: float = 0.85,
        max_mom: float = 0.95,
    ):
        super().__init__()
        for name, value in (("base_lr", base_lr), ("max_lr", max_lr)):
            if value is not None:
                _check_lr_spec(name, value)
        if _is_real(base_lr) and _is_real(max_lr) and base_lr >= max_lr:
            raise ValueError(f"base_lr must be < max_lr, got base_lr={base_lr!r}, max_lr={max_lr!r}")
        if step_size is not None and (
            isinstance(step_size, bool) or not isinstance(step_size, Integral) or step_size < 1
        ):
            raise ValueError(f"step_size must be an integer >= 1 (or None), got {step_size!r}")
        if mode not in CYCLICAL_MODES:
            raise ValueError(f"mode must be one of {CYCLICAL_MODES}, got {mode!r}")
        _check_positive("gamma", gamma)
        if not isinstance(cycle_momentum, bool):
            raise ValueError(f"cycle_momentum must be True or False, got {cycle_momentum!r}")
        _check_mom("base_mom", base_mom)
        _check_mom("max_mom", max_mom)
        self.base_lr, self.max_lr, self.mode, self.gamma = base_lr, max_lr, mode, float(gamma)
        self.step_size = None if step_size is None else int(step_size)
        self.cycle_momentum, self.base_mom, self.max_mom = cycle_momentum, float(base_mom), float(max_mom)

    def _schedules(self, n_groups: int) -> dict[str, Any]:
        learn = self.learn
        specs = [
            _from_range_test(learn, name, "bounds", i) if spec is None else spec
            for i, (name, spec) in enumerate((("base_lr", self.base_lr), ("max_lr", self.max_lr)))
        ]
        base, peak = group_lrs("base_lr", specs[0], n_groups), group_lrs("max_lr", specs[1], n_groups)
        if np.any(base >= peak):
            raise ValueError(
                f"base_lr must be < max_lr in every param group, got base_lr={base.tolist()}, "
                f"max_lr={peak.tolist()}"
            )
        step = self.step_size
        if step is None:
            n_batches = distributed.batches_per_epoch(learn)  # this rank's shard under DDP
            step = max(1, min(2 * n_batches, learn.n_epoch * n_batches // 2))
        cycle = partial(cyclical, step_size=step, mode=self.mode, gamma=self.gamma)
        scheds = {"lr": partial(cycle, start=base, peak=peak)}
        if self.cycle_momentum:
            scheds["mom"] = partial(cycle, start=self.max_mom, peak=self.base_mom)
        return scheds

    def before_batch(self) -> None:
        self._update_val(self.train_iter)
