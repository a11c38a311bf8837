"""A range test leaves the learner exactly as it found it, whatever happens (issue 4).

Each test names one promised behaviour; faults are injected at a chosen step
(a model or loss that raises or returns NaN, a callback that raises).
"""

from __future__ import annotations

import random
import tempfile
import warnings
from pathlib import Path

import fastai.callback.schedule  # noqa: F401  (fit_one_cycle)
import numpy as np
import pytest
import torch
from fastai.callback.core import Callback
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.progress import ProgressCallback
from fastai.callback.training import GradientAccumulation
from fastai.losses import CrossEntropyLossFlat
from fastai.torch_core import params
from torch import nn
from torch.amp import GradScaler, autocast

from lrrange import LRRange
from lrrange.schedules import range_lr
from lrrange.snapshot import FILE_PREFIX

MISSING = "<missing>"
# (fit itself sets dl, xb, yb, pred and loss to None after every fit, after all callbacks.)
LOOP = ("n_epoch", "epoch", "iter", "n_iter", "train_iter", "pct_train", "training", "smooth_loss")
RECORDER = ("lrs", "iters", "losses", "values", "metric_names")  # not "log": it holds wall times


# --- helpers ----------------------------------------------------------------


def same(a, b) -> bool:
    """Bitwise equality through nested containers (tensors by ``torch.equal`` and dtype)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype and torch.equal(a, b)
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def copy_tree(x):
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, dict):
        return {k: copy_tree(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)) or type(x).__name__ == "L":
        return [copy_tree(v) for v in x]
    return x


def capture(learn) -> dict:
    """Everything the issue says must be as before, as values; ``id_*`` keys hold identities."""
    ps = list(learn.model.parameters())
    opt, rec = learn.opt, vars(learn).get("recorder")
    index = {id(p): i for i, p in enumerate(ps)}
    state = {
        "model": copy_tree(learn.model.state_dict()),
        "grads": [copy_tree(p.grad) for p in ps],
        "requires_grad": [p.requires_grad for p in ps],
        "train_flags": [m.training for m in learn.model.modules()],
        "opt_state": None if opt is None else {index[id(p)]: copy_tree(s) for p, s in opt.state.items()},
        "hypers": None if opt is None else [dict(h) for h in opt.hypers],
        "rng": (random.getstate(), np.random.get_state(), torch.get_rng_state()),
        "dl_rngs": [dl.rng.getstate() for dl in learn.dls.loaders],
        "lr": learn.lr,
        "loop": {k: copy_tree(vars(learn).get(k, MISSING)) for k in LOOP},
        "recorder": None if rec is None else {k: copy_tree(getattr(rec, k, MISSING)) for k in RECORDER},
        "id_opt": opt,
        "id_cbs": list(learn.cbs),
        "id_dl_rngs": [dl.rng for dl in learn.dls.loaders],
    }
    if rec is not None:
        state["recorder"]["smooth_count"] = rec.smooth_loss.count
    return state


def assert_same(got: dict, want: dict, identities: bool = True) -> None:
    for k in want:
        if not identities and k.startswith("id_"):
            continue
        if k.startswith("id_"):
            w, g = want[k], got[k]
            ok = (w is g) if not isinstance(w, list) else len(w) == len(g) and all(
                x is y for x, y in zip(w, g, strict=True)
            )
        elif isinstance(want[k], dict) and k in ("loop", "recorder"):
            bad = [n for n in want[k] if not same(got[k].get(n), want[k][n])]
            ok = not bad
            k = f"{k} {bad}: {[got[k].get(n) for n in bad]} != {[want[k][n] for n in bad]}"
        else:
            ok = same(got[k], want[k])
        assert ok, f"{k} differs"


def get_rngs():
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def set_rngs(states) -> None:
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


def make_mlp(dropout: float = 0.0, seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 10))


def two_groups(model: nn.Module):
    return [params(model[0]), params(model[3])]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A private temp dir (what ``TMPDIR`` would select) and a read-only ``learn.path``."""
    tmp, home = tmp_path / "tmp", tmp_path / "learn"
    tmp.mkdir()
    home.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    home.chmod(0o555)
    yield tmp, home
    home.chmod(0o755)


@pytest.fixture
def new(make_learner, sandbox):
    """``new(**kwargs)``: a small learner whose ``path`` is the sandbox's read-only folder."""

    def make(loss_func=None, **kwargs):
        kwargs.setdefault("n_train", 320)
        kwargs.setdefault("bs", 32)
        learn = make_learner(**kwargs)
        if loss_func is not None:
            learn.loss_func = loss_func
        learn.path = sandbox[1]
        learn.remove_cb(ProgressCallback)
        return learn

    return make


def files_under(*dirs: Path) -> list[Path]:
    return [p for d in dirs for p in d.rglob("*")]


class Boom(Exception):
    pass


class Faulty(nn.Module):
    """Wraps a model; once ``armed``, training forward pass ``k`` (1-based) raises or returns NaN."""

    def __init__(self, model: nn.Module, k: int, fault: str):
        super().__init__()
        self.model, self.k, self.fault, self.calls, self.armed = model, k, fault, 0, False

    def forward(self, x):
        out = self.model(x)
        if self.training and self.armed:
            self.calls += 1
            if self.calls == self.k:
                if self.fault == "raise":
                    raise RuntimeError("model failed")
                return out * float("nan")
        return out


class FaultyLoss:
    """Once ``armed``, cross-entropy that raises or grows 1000-fold (``"explode"``) from call ``k``."""

    def __init__(self, k: int, fault: str):
        self.inner, self.k, self.fault, self.calls, self.armed = CrossEntropyLossFlat(), k, fault, 0, False

    def __call__(self, pred, targ):
        loss = self.inner(pred, targ)
        if not self.armed:
            return loss
        self.calls += 1
        if self.calls >= self.k:
            if self.fault == "raise":
                raise RuntimeError("loss failed")
            loss = loss * 1000.0 ** (self.calls - self.k + 1)
        return loss

    def __getattr__(self, name):
        return getattr(self.inner, name)


class RaiseIn(Callback):
    """Raises ``exc`` in event ``event`` (of step ``k`` for per-batch events)."""

    order = 30

    def __init__(self, event: str, exc: BaseException, k: int = 1):
        self.event, self.exc, self.k, self.seen = event, exc, k, 0
        setattr(self, event, self._fire)

    def _fire(self):
        self.seen += 1
        if self.seen == self.k:
            raise self.exc


class SeeFiles(Callback):
    """Lists the snapshot files in the temp dir and everything under ``learn.path`` at every step."""

    order = 20

    def __init__(self, tmp: Path):
        self.tmp, self.seen, self.in_path = tmp, [], []

    def after_loss(self):
        self.seen.append(sorted(p.name for p in self.tmp.glob(f"{FILE_PREFIX}*")))
        self.in_path.extend(files_under(Path(self.learn.path)))


# --- 1. later training is bitwise identical -------------------------------------


@pytest.mark.parametrize("snapshot", ["memory", "disk"])
@pytest.mark.parametrize("trained", [False, True], ids=["fresh", "trained"])
def test_later_training_is_bitwise_identical(new, snapshot, trained):
    """The learners share the global RNGs (dropout draws from torch's), so each trains from the same state."""
    a, b = new(model=make_mlp(0.2)), new(model=make_mlp(0.2))
    if trained:
        start = get_rngs()
        a.fit(1, lr=1e-2)
        set_rngs(start)
        b.fit(1, lr=1e-2)
    start = get_rngs()
    before = capture(a)
    # 25 steps on 10 batches: three passes over the data, each reshuffled
    res = a.range_test(num_it=25, end_lr=1.0, stop_div=False, show_plot=False, snapshot=snapshot)
    assert len(res) == 25
    assert_same(capture(a), before)
    assert (a.opt is None) == (not trained)
    a.fit_one_cycle(2, 1e-2)
    set_rngs(start)
    b.fit_one_cycle(2, 1e-2)
    assert_same(capture(a), capture(b), identities=False)
    assert len(a.recorder.losses) == 20 and len(a.recorder.values) == 2


@pytest.mark.parametrize("disturb", ["batch order", "global RNG"])
def test_the_comparison_sees_a_disturbance(new, disturb):
    """Control: one extra reshuffle, or one draw from torch's RNG, changes later training."""
    a, b = new(model=make_mlp(0.2)), new(model=make_mlp(0.2))
    start = get_rngs()
    if disturb == "batch order":
        a.dls.train.randomize()
    else:
        torch.rand(1)
    a.fit_one_cycle(1, 1e-2)
    set_rngs(start)
    b.fit_one_cycle(1, 1e-2)
    assert not same(capture(a)["model"], capture(b)["model"])


# --- 2. every ending restores ----------------------------------------------------

ENDINGS = {
    # name: (how to build the learner and callbacks, expected exception, expected stop_reason)
    "completed": (None, None, "completed"),
    "diverged": ("loss-explode", None, "diverged"),
    "nonfinite": ("model-nan", None, "nonfinite"),
    "model raises": ("model-raise", RuntimeError, None),
    "loss raises": ("loss-raise", RuntimeError, None),
    "callback raises": ("cb-after_backward", Boom, None),
    "KeyboardInterrupt": ("cb-before_step-ki", KeyboardInterrupt, "interrupted"),
    "later before_fit raises": ("cb-before_fit", Boom, None),
}
K = 4  # the faulty step


@pytest.mark.parametrize("snapshot", ["memory", "disk"])
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_every_ending_restores(new, sandbox, ending, snapshot):
    fault, exc_type, reason = ENDINGS[ending]
    tmp, home = sandbox
    model, loss_func, extra = make_mlp(), None, []
    if fault and fault.startswith("model"):
        model = Faulty(model, K, fault.split("-")[1])
    if fault and fault.startswith("loss"):
        loss_func = FaultyLoss(K, fault.split("-")[1])
    learn = new(model=model, loss_func=loss_func)
    learn.fit(1, lr=1e-2)
    for faulty in (model, loss_func):
        if faulty is not None:
            faulty.armed = True
    if fault and fault.startswith("cb-"):
        event = fault.split("-")[1]
        exc = KeyboardInterrupt() if fault.endswith("-ki") else Boom("injected")
        extra.append(RaiseIn(event, exc, 1 if event == "before_fit" else K))
        if event == "before_fit":
            extra[-1].order = 60  # after LRRange's snapshot and after Recorder reset its history
    learn.range_result = "previous"
    spy = SeeFiles(tmp)
    before = capture(learn)
    cb = LRRange(num_it=12, end_lr=1e-2, snapshot=snapshot)
    if exc_type is None:
        learn.fit(1, cbs=[cb, spy, *extra])
    else:
        with pytest.raises(exc_type):
            learn.fit(1, cbs=[cb, spy, *extra])

    assert_same(capture(learn), before)
    assert cb not in learn.cbs and spy not in learn.cbs and cb.learn is None
    assert "_with_events" not in vars(learn)
    assert files_under(tmp, home) == [] and spy.in_path == []
    if ending != "later before_fit raises":  # steps ran: a disk snapshot's one file was there throughout
        assert len(spy.seen) >= 1
        assert all(s == ([] if snapshot == "memory" else spy.seen[0]) for s in spy.seen)
        assert snapshot == "memory" or len(spy.seen[0]) == 1
    if reason is None:
        assert learn.range_result == "previous"
        return
    res = learn.range_result
    assert res.stop_reason == reason
    n = {"completed": 12, "diverged": K - 1, "nonfinite": K - 1, "interrupted": K}[reason]
    if reason == "diverged":
        n = len(res)
        assert K - 1 < n <= 12 and res.smoothed[-1] > 4 * res.smoothed[: n - 1].min()
    assert len(res) == n
    np.testing.assert_allclose(res.lrs, [range_lr(i, 12, 1e-7, 1e-2) for i in range(n)], rtol=1e-12)
    assert np.all(np.isfinite(res.losses))


@pytest.mark.parametrize("order", [-20, 60], ids=["before LRRange", "after LRRange"])
def test_a_failing_before_fit_restores_an_added_callback_learner(new, order):
    """``learn.add_cb(LRRange())``, then another callback's ``before_fit`` fails, before or after ours."""
    learn = new()
    before = capture(learn)
    failing = RaiseIn("before_fit", Boom("injected"))
    failing.order = order
    learn.add_cbs([LRRange(num_it=5), failing])
    with pytest.raises(Boom):
        learn.fit(1, lr=1e-2)
    learn.remove_cb(failing)
    assert_same(capture(learn), before)
    assert learn.opt is None and "_with_events" not in vars(learn)


def test_callbacks_list_restored_when_callbacks_come_and_go(new):
    learn = new()

    class Leaves(Callback):
        def after_batch(self):
            self.learn.remove_cb(self)

    class Adds(Callback):
        def after_batch(self):
            if not any(isinstance(c, Leaves) for c in self.learn.cbs) and self.learn.train_iter == 3:
                self.learn.add_cb(Leaves())

    stay, adds = Leaves(), Adds()
    learn.add_cbs([stay, adds])
    before = capture(learn)
    learn.range_test(num_it=8, end_lr=1e-2, show_plot=False)
    assert_same(capture(learn), before)
    assert learn.leaves is stay and stay.learn is learn


# --- 3. disk snapshot ----------------------------------------------------------


def test_snapshot_argument_is_validated_before_anything_changes(new):
    with pytest.raises(ValueError, match=r"snapshot must be one of \('memory', 'disk'\), got 'ram'"):
        LRRange(snapshot="ram")
    learn = new()
    before = capture(learn)
    with pytest.raises(ValueError, match="snapshot"):
        learn.range_test(snapshot=None, show_plot=False)
    assert_same(capture(learn), before)


def test_disk_snapshot_lives_in_tmpdir_only_while_running(new, sandbox):
    tmp, home = sandbox
    learn = new()
    learn.fit(1, lr=1e-2)
    spy = SeeFiles(tmp)
    learn.fit(1, cbs=[LRRange(num_it=6, end_lr=1e-2, snapshot="disk"), spy])
    assert len(spy.seen) == 6 and len(set(map(tuple, spy.seen))) == 1 and len(spy.seen[0]) == 1
    assert spy.seen[0][0].startswith(FILE_PREFIX) and spy.in_path == []
    assert files_under(tmp, home) == []
    memory = LRRange(num_it=6, end_lr=1e-2)
    learn.fit(1, cbs=[memory, spy])
    assert spy.seen[6:] == [[]] * 6  # the default writes no file at all


# --- 4. param groups and freezing ----------------------------------------------


class GroupLRs(Callback):
    """Every param group's LR at each training batch."""

    order = 0

    def before_fit(self):
        self.lrs = []

    def after_loss(self):
        self.lrs.append([h["lr"] for h in self.opt.hypers])


@pytest.mark.parametrize(
    ("start", "end", "starts", "ends"),
    [
        (slice(1e-6, 1e-4), slice(1e-3, 1e-1), [1e-6, 1e-4], [1e-3, 1e-1]),
        (slice(1e-4), slice(1e-1), [1e-5, 1e-4], [1e-2, 1e-1]),
        ([1e-6, 1e-5], (1e-2, 1e-1), [1e-6, 1e-5], [1e-2, 1e-1]),
        (1e-6, [1e-3, 1e-2], [1e-6, 1e-6], [1e-3, 1e-2]),
    ],
    ids=["slice", "slice-stop", "sequences", "scalar+sequence"],
)
def test_each_param_group_follows_its_own_schedule(new, start, end, starts, ends):
    model = make_mlp()
    learn = new(model=model, splitter=two_groups)
    spy = GroupLRs()
    learn.fit(1, cbs=[LRRange(start_lr=start, end_lr=end, num_it=10), spy])
    res = learn.range_result
    want = [range_lr(i, 10, np.array(starts), np.array(ends)).tolist() for i in range(10)]
    assert spy.lrs == want
    assert res.lrs.tolist() == [w[-1] for w in want]  # the result's LR axis is the last group's


@pytest.mark.parametrize("where", ["add_cb", "fit", "range_test"])
def test_sequence_length_must_match_the_groups_before_anything_changes(new, where):
    learn = new(model=make_mlp(), splitter=two_groups)
    before = capture(learn)
    bad = dict(start_lr=[1e-6, 1e-6, 1e-6], end_lr=1.0)
    with pytest.raises(ValueError, match="start_lr has 3 values but the optimizer has 2 param groups"):
        if where == "add_cb":
            learn.add_cb(LRRange(**bad))
        elif where == "fit":
            learn.fit(1, cbs=LRRange(**bad))
        else:
            learn.range_test(**bad, show_plot=False)
    assert_same(capture(learn), before)
    assert learn.opt is None and "_with_events" not in vars(learn)


class WatchGroup0(Callback):
    """Whether the first group's weights moved during the test."""

    order = 20

    def before_fit(self):
        self.w0 = self.model[0].weight.detach().clone()
        self.w1 = self.model[3].weight.detach().clone()

    def after_loss(self):
        self.moved0 = not torch.equal(self.w0, self.model[0].weight)
        self.moved1 = not torch.equal(self.w1, self.model[3].weight)


def test_frozen_then_unfrozen_learner(new):
    learn = new(model=make_mlp(), splitter=two_groups)
    learn.freeze()
    learn.fit_one_cycle(1, 1e-2)
    before, watch = capture(learn), WatchGroup0()
    learn.fit(1, cbs=[LRRange(start_lr=slice(1e-5, 1e-3), end_lr=slice(1e-2, 1e-1), num_it=10), watch])
    assert len(learn.range_result) == 10 and learn.range_result.stop_reason == "completed"
    assert not watch.moved0 and watch.moved1
    assert_same(capture(learn), before)
    assert before["requires_grad"][:2] == [False, False]

    learn.unfreeze()
    before, watch = capture(learn), WatchGroup0()
    learn.fit(1, cbs=[LRRange(start_lr=slice(1e-5, 1e-3), end_lr=slice(1e-2, 1e-1), num_it=10), watch])
    assert len(learn.range_result) == 10 and watch.moved0 and watch.moved1
    assert_same(capture(learn), before)


# --- 5. gradient accumulation --------------------------------------------------


class Micro(Callback):
    """Every batch's loss and LR, and the number of optimizer steps (runs before LRRange)."""

    order = -20

    def before_fit(self):
        self.losses, self.lrs, self.steps = [], [], 0

    def after_loss(self):
        self.losses.append(float(self.learn.loss.detach()))
        self.lrs.append(self.opt.hypers[-1]["lr"])

    def after_step(self):
        self.steps += 1


def test_gradient_accumulation_counts_optimizer_steps(new):
    learn = new(n_train=960, bs=32)  # 30 batches; 3 per optimizer step
    learn.fit(1, lr=1e-2)
    before, micro = capture(learn), Micro()
    learn.fit(1, cbs=[LRRange(num_it=12, end_lr=1e-1), GradientAccumulation(n_acc=96), micro])
    res = learn.range_result
    assert len(res) == 12 and res.stop_reason == "completed" and micro.steps == 12
    assert len(micro.losses) == 36  # 12 steps of 3 batches, across two epochs
    assert micro.lrs == [lr for lr in res.lrs.tolist() for _ in range(3)]  # the LR moves only at steps
    np.testing.assert_allclose(res.lrs, [range_lr(i, 12, 1e-7, 1e-1) for i in range(12)], rtol=1e-12)
    np.testing.assert_allclose(res.losses, np.mean(np.reshape(micro.losses, (12, 3)), axis=1), rtol=1e-12)
    assert_same(capture(learn), before)


# --- 6. mixed precision ----------------------------------------------------------


class CPUMixedPrecision(MixedPrecision):
    """fastai's MixedPrecision with CPU autocast and a CPU gradient scaler (fastai's is CUDA-only).

    Every event handler is fastai's own; only ``before_fit`` picks the device.
    """

    def __init__(self, dtype=torch.float16, init_scale: float = 2.0**16):
        super().__init__()
        self.dtype, self.init_scale = dtype, init_scale

    def before_fit(self):
        self.autocast = autocast("cpu", dtype=self.dtype)
        fp16 = self.dtype == torch.float16
        self.learn.scaler = GradScaler("cpu", init_scale=self.init_scale, enabled=fp16)
        self.scales = []


class Skips(Callback):
    order = 20

    def before_fit(self):
        self.skipped, self.scales, self.batches = 0, [], 0

    def after_loss(self):
        self.batches += 1

    def after_cancel_step(self):
        self.skipped += 1

    def after_step(self):
        self.scales.append(self.learn.scaler.get_scale())


def test_steps_skipped_by_the_grad_scaler_are_not_divergence(new):
    learn = new()
    learn.fit(1, lr=1e-2)
    before, skips = capture(learn), Skips()
    # an initial scale of 2**40 overflows the fp16 gradients for the first ~20 steps
    cbs = [LRRange(num_it=15, end_lr=1e-1), CPUMixedPrecision(init_scale=2.0**40), skips]
    learn.fit(1, cbs=cbs)
    res = learn.range_result
    assert skips.skipped >= 5 and skips.batches == 15 + skips.skipped  # skipped steps are retried
    assert res.stop_reason == "completed" and len(res) == 15 and np.all(np.isfinite(res.losses))
    np.testing.assert_allclose(res.lrs, [range_lr(i, 15, 1e-7, 1e-1) for i in range(15)], rtol=1e-12)
    assert skips.scales[-1] < 2.0**40  # the scaler did back off
    assert_same(capture(learn), before)


@pytest.mark.parametrize(
    "mp", [lambda: CPUMixedPrecision(torch.bfloat16), MixedPrecision], ids=["cpu-bf16", "fastai-fp16"]
)
def test_mixed_precision_gives_a_usable_curve(new, mp):
    learn = new()
    before = capture(learn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fastai's own callback warns that it falls back without CUDA
        learn.fit(1, cbs=[LRRange(num_it=20, end_lr=1.0), mp()])
    res = learn.range_result
    assert res.stop_reason == "completed" and len(res) == 20 and np.all(np.isfinite(res.losses))
    assert res.losses[:5].mean() > res.losses[-5:].mean()  # it learnt something: a usable curve
    assert_same(capture(learn), before)


# --- 7. anywhere in a learner's life ---------------------------------------------


def test_twice_in_a_row_after_fit_one_cycle_and_fine_tune_style(new):
    learn = new(model=make_mlp(), splitter=two_groups)
    kw = dict(num_it=15, end_lr=1e-1, show_plot=False)
    first, second = learn.range_test(**kw), learn.range_test(**kw)
    assert len(first) == len(second) == 15
    assert np.array_equal(first.losses, second.losses)  # same start, same batches: the same curve

    learn.fit_one_cycle(1, 1e-2)
    after = learn.range_test(**kw)
    assert len(after) == 15 and after.stop_reason == "completed"
    assert not np.array_equal(after.losses, first.losses)

    learn.freeze()
    learn.fit_one_cycle(1, 1e-2)
    learn.unfreeze()
    tuned = learn.range_test(**kw)
    assert len(tuned) == 15 and tuned.stop_reason == "completed"


# --- bad input ---------------------------------------------------------------------


def test_non_scalar_loss_is_a_value_error_and_restores(new):
    learn = new(loss_func=CrossEntropyLossFlat(reduction="none"))
    before = capture(learn)
    with pytest.raises(ValueError, match=r"loss_func must return a scalar loss .* shape \(32,\)"):
        learn.range_test(num_it=5, show_plot=False)
    assert_same(capture(learn), before)
    assert "_with_events" not in vars(learn) and not any(isinstance(c, LRRange) for c in learn.cbs)


# --- state outside the state dict ------------------------------------------------


class Counting(nn.Module):
    """An MLP with a non-persistent buffer (left out of ``state_dict``) that counts forward passes."""

    def __init__(self):
        super().__init__()
        self.net = make_mlp()
        self.register_buffer("calls", torch.zeros(()), persistent=False)

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def test_non_persistent_buffers_are_restored(new):
    learn = new(model=Counting())
    learn.fit(1, lr=1e-2)
    calls = learn.model.calls.clone()
    learn.range_test(num_it=6, end_lr=1e-2, show_plot=False)
    assert torch.equal(learn.model.calls, calls)
