"""The foundation: LRRange on real fastai Learners, RangeResult, the demo."""

from __future__ import annotations

import math

import matplotlib.figure
import numpy as np
import pytest
import torch
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback
from fastai.data.core import DataLoaders
from torch import nn

import lrrange
from lrrange import LRRange, RangeResult
from lrrange.schedules import range_lr
from lrrange.smoothing import ema


def state_copy(learn):
    """Model and optimizer state as plain clones, for bitwise comparison."""
    model = {k: v.detach().clone() for k, v in learn.model.state_dict().items()}
    opt = None
    if learn.opt is not None:
        opt = {
            "state": [{k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
                      for s in learn.opt.state_dict()["state"]],
            "hypers": [dict(h) for h in learn.opt.hypers],
        }
    return model, opt


def assert_same_state(learn, saved):
    model, opt = saved
    live = learn.model.state_dict()
    assert live.keys() == model.keys()
    for k, v in model.items():
        assert torch.equal(live[k], v), k
    if opt is None:
        assert learn.opt is None
        return
    assert [dict(h) for h in learn.opt.hypers] == opt["hypers"]
    for live_s, saved_s in zip(learn.opt.state_dict()["state"], opt["state"], strict=True):
        assert live_s.keys() == saved_s.keys()
        for k, v in saved_s.items():
            assert torch.equal(live_s[k], v) if torch.is_tensor(v) else live_s[k] == v, k


class NanAfter(nn.Module):
    """Wraps a model; forward pass number ``k`` (1-based) and later return NaN."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k, self.calls = model, k, 0

    def forward(self, x):
        self.calls += 1
        out = self.model(x)
        return out * float("nan") if self.calls >= self.k else out


class Boom(Exception):
    pass


class RaiseAt(Callback):
    """Raises ``exc`` in ``after_loss`` of training step ``k`` (1-based)."""

    order = 30

    def __init__(self, k: int, exc: BaseException):
        self.k, self.exc, self.seen = k, exc, 0

    def after_loss(self):
        self.seen += 1
        if self.seen >= self.k:
            raise self.exc


# --- schedule and smoothing -------------------------------------------------


@pytest.mark.parametrize("mode", ["exp", "linear"])
def test_schedule_hits_both_endpoints_and_spacing(make_learner, mode):
    learn = make_learner()
    res = learn.range_test(start_lr=1e-5, end_lr=1.0, num_it=30, mode=mode, stop_div=False, show_plot=False)
    assert len(res) == 30 and res.stop_reason == "completed"
    assert res.lrs[0] == 1e-5 and res.lrs[-1] == 1.0
    steps = np.diff(np.log(res.lrs)) if mode == "exp" else np.diff(res.lrs)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-9)
    assert np.all(np.diff(res.lrs) > 0)


def test_range_lr_is_pure_and_per_group():
    starts, ends = np.array([1e-4, 1e-3]), np.array([1e-1, 1.0])
    first, last = range_lr(0, 10, starts, ends), range_lr(9, 10, starts, ends)
    assert first.tolist() == starts.tolist() and last.tolist() == ends.tolist()
    mid = range_lr(5, 11, 1e-4, 1.0)
    assert math.isclose(mid, 1e-2, rel_tol=1e-12)


def test_smoothed_is_the_bias_corrected_ema_of_the_recorded_losses(make_learner):
    learn = make_learner()
    res = learn.range_test(num_it=40, beta=0.9, stop_div=False, end_lr=1e-1, show_plot=False)
    avg, expected = 0.0, []
    for t, loss in enumerate(res.losses, start=1):
        avg = 0.9 * avg + 0.1 * loss
        expected.append(avg / (1 - 0.9**t))
    np.testing.assert_allclose(res.smoothed, expected, rtol=1e-12)
    np.testing.assert_allclose(ema(res.losses, 0.9), expected, rtol=1e-12)
    assert res.smoothed[0] == res.losses[0]


# --- stopping ---------------------------------------------------------------


def test_divergence_stops_early_at_a_high_lr(make_learner):
    learn = make_learner()
    res = learn.range_test(start_lr=1e-4, end_lr=1e4, num_it=200, show_plot=False)
    assert res.stop_reason == "diverged"
    assert len(res) < 200
    assert res.smoothed[-1] > 4.0 * res.smoothed[:-1].min()
    assert np.all(res.smoothed[:-1] <= 4.0 * np.minimum.accumulate(res.smoothed[:-1]))


def test_no_divergence_stop_when_stop_div_false(make_learner):
    learn = make_learner()
    res = learn.range_test(start_lr=1e-4, end_lr=1e3, num_it=40, stop_div=False, show_plot=False)
    assert len(res) == 40 or res.stop_reason == "nonfinite"


@pytest.mark.parametrize("k", [1, 7])
def test_nan_stops_at_the_exact_step_and_is_not_recorded(make_learner, k):
    learn = make_learner()
    wrapped = NanAfter(learn.model, k)
    learn.model = wrapped
    res = learn.range_test(num_it=50, show_plot=False)
    assert res.stop_reason == "nonfinite"
    assert len(res) == k - 1
    assert wrapped.calls == k  # no forward pass after the NaN batch
    assert np.all(np.isfinite(res.losses)) and np.all(np.isfinite(res.smoothed))


def test_num_it_larger_than_an_epoch_runs_several_epochs(make_learner):
    learn = make_learner(n_train=256, bs=64)  # 4 batches an epoch
    assert len(learn.dls.train) == 4
    res = learn.range_test(num_it=30, end_lr=1e-1, stop_div=False, show_plot=False)
    assert len(res) == 30 and res.stop_reason == "completed"


def test_validation_is_skipped(make_learner):
    calls = []

    class CountValid(Callback):
        def before_validate(self):
            calls.append(1)

    learn = make_learner(n_train=256, bs=64)
    learn.fit(1, cbs=[LRRange(num_it=12, end_lr=1e-1), CountValid()])
    assert learn.range_result.stop_reason == "completed"
    assert calls == []


# --- attaching, detaching, state ---------------------------------------------


def test_add_cb_then_fit(make_learner):
    learn = make_learner()
    cb = LRRange(num_it=20)
    learn.add_cb(cb)
    learn.fit(1)
    assert learn.range_result is cb.result and len(cb.result) == 20
    assert cb not in learn.cbs and not any(isinstance(c, LRRange) for c in learn.cbs)


def test_fit_with_cbs(make_learner):
    learn = make_learner()
    cb = LRRange(num_it=20)
    learn.fit(1, cbs=cb)
    assert learn.range_result is cb.result and len(cb.result) == 20
    assert cb not in learn.cbs


def test_following_fit_trains_normally(make_learner):
    learn = make_learner()
    learn.fit(1, cbs=LRRange(num_it=20))
    w0 = learn.model[0].weight.detach().clone()
    learn.fit(2, lr=1e-2)
    assert len(learn.recorder.values) == 2  # two epochs, each validated
    assert not torch.equal(w0, learn.model[0].weight)
    assert learn.recorder.values[-1][1] < 1.0  # valid loss dropped from ~2.3


def test_state_bitwise_restored_after_success(make_learner):
    model = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    learn = make_learner(model=model)
    learn.fit(1, lr=1e-2)  # optimizer state and BatchNorm running stats are non-trivial
    saved = state_copy(learn)
    res = learn.range_test(num_it=30, show_plot=False)
    assert len(res) > 0
    assert_same_state(learn, saved)


def test_state_restored_when_the_opt_did_not_exist(make_learner):
    learn = make_learner()
    assert learn.opt is None
    saved = state_copy(learn)
    learn.range_test(num_it=10, show_plot=False)
    assert_same_state(learn, saved)
    assert learn.opt is None


@pytest.mark.parametrize("exc", [Boom("from a callback"), KeyboardInterrupt()])
def test_state_restored_and_exception_propagates(make_learner, exc):
    learn = make_learner()
    learn.fit(1, lr=1e-2)
    saved = state_copy(learn)
    learn.range_result = "previous"
    with pytest.raises(type(exc)):
        learn.fit(1, cbs=[LRRange(num_it=50), RaiseAt(5, exc)])
    assert_same_state(learn, saved)
    assert not any(isinstance(c, (LRRange, RaiseAt)) for c in learn.cbs)
    assert "_with_events" not in vars(learn)
    if isinstance(exc, KeyboardInterrupt):
        # step 5 was recorded by LRRange (order -10) before RaiseAt (order 30) raised
        assert learn.range_result.stop_reason == "interrupted" and len(learn.range_result) == 5
    else:
        assert learn.range_result == "previous"  # no new result after a failure
    learn.fit(1, lr=1e-2)  # the learner still trains


def test_exception_from_the_model_restores(make_learner):
    learn = make_learner()
    learn.fit(1, lr=1e-2)
    saved = state_copy(learn)

    class Explode(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.calls = inner, 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 3:
                raise Boom("model failed")
            return self.inner(x)

    inner = learn.model
    learn.model = Explode(inner)
    learn.add_cb(LRRange(num_it=20))
    with pytest.raises(Boom):
        learn.fit(1)
    learn.model = inner
    assert_same_state(learn, saved)
    assert not any(isinstance(c, LRRange) for c in learn.cbs)


def test_no_files_written(make_learner, tmp_path):
    learn = make_learner(path=tmp_path)
    learn.range_test(num_it=10, show_plot=False)
    assert list(tmp_path.rglob("*")) == []


# --- RangeResult --------------------------------------------------------------


def test_range_test_returns_result_and_suggestion_in_range(make_learner):
    learn = make_learner()
    res = learn.range_test(num_it=100, show_plot=False)
    assert isinstance(res, RangeResult) and learn.range_result is res
    assert res.lrs.min() <= res.suggestion <= res.lrs.max()
    assert set(res.suggestions) >= {"minimum", "steep"}
    for lr in res.suggestions.values():
        assert res.lrs.min() <= lr <= res.lrs.max()
    lo, hi = res.bounds
    assert res.lrs.min() <= lo < hi <= res.lrs.max()
    frame = res.to_frame()
    assert list(frame.columns) == ["lr", "loss", "smoothed"] and len(frame) == len(res)
    np.testing.assert_array_equal(frame["smoothed"].to_numpy(), res.smoothed)


def test_plot_renders(make_learner, tmp_path):
    res = make_learner().range_test(num_it=40, show_plot=False)
    fig = res.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("suggestion" in lab for lab in labels) and "smoothed loss" in labels
    fig.savefig(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_save_load_round_trip(make_learner, tmp_path):
    res = make_learner().range_test(num_it=40, show_plot=False)
    path = res.save(tmp_path / "res.json")
    back = RangeResult.load(path)
    for name in ("lrs", "losses", "smoothed"):
        assert np.array_equal(getattr(back, name), getattr(res, name))
    assert back.stop_reason == res.stop_reason and back.meta == res.meta
    assert back.suggestion == res.suggestion and back.suggestions == res.suggestions


def test_empty_result_has_nan_suggestion():
    res = RangeResult([], [], [], "nonfinite")
    assert math.isnan(res.suggestion) and len(res.to_frame()) == 0


# --- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"start_lr": 0}, "start_lr"),
        ({"start_lr": -1e-3}, "start_lr"),
        ({"start_lr": float("nan")}, "start_lr"),
        ({"start_lr": float("inf")}, "start_lr"),
        ({"end_lr": 1e-7}, "end_lr"),
        ({"start_lr": 1.0, "end_lr": 0.5}, "end_lr"),
        ({"num_it": 1}, "num_it"),
        ({"num_it": 10.5}, "num_it"),
        ({"num_it": "100"}, "num_it"),
        ({"beta": 1.0}, "beta"),
        ({"beta": -0.1}, "beta"),
        ({"diverge_factor": 1.0}, "diverge_factor"),
        ({"mode": "cosine"}, "mode"),
    ],
)
def test_bad_arguments_name_the_argument(make_learner, kwargs, name):
    with pytest.raises(ValueError, match=name):
        LRRange(**kwargs)
    learn = make_learner()
    with pytest.raises(ValueError, match=name):
        learn.range_test(show_plot=False, **kwargs)
    assert learn.opt is None and not any(isinstance(c, LRRange) for c in learn.cbs)


def test_empty_training_dataloader_is_rejected_and_learner_untouched(make_learner, digits_arrays):
    learn = make_learner()
    x, y = digits_arrays
    valid = list(zip(x[:64], y[:64], strict=True))
    learn.dls = DataLoaders.from_dsets([], valid, bs=16, num_workers=0)
    saved = state_copy(learn)
    with pytest.raises(ValueError, match="training DataLoader"):
        learn.fit(1, cbs=LRRange())
    assert_same_state(learn, saved)
    assert learn.opt is None and not any(isinstance(c, LRRange) for c in learn.cbs)


# --- the demo -----------------------------------------------------------------


def test_demo_writes_plot_and_trains(tmp_path, capsys):
    from lrrange.cli import main

    out = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out), "--epochs", "2"]) == 0
    text = capsys.readouterr().out
    assert "suggested learning rate" in text and "validation accuracy" in text
    acc = float(text.rsplit("validation accuracy", 1)[1].split()[0])
    assert acc > 0.8
    assert out.stat().st_size > 1000


def test_package_exports():
    assert {"LRRange", "RangeResult"} <= set(lrrange.__all__)


def test_no_epoch_rows_logged_during_the_test_and_logger_restored(make_learner):
    learn = make_learner(n_train=256, bs=64)  # 4 batches an epoch: the test spans several epochs
    learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, ProgressCallback)])  # rows go to the logger
    rows: list = []
    learn.logger = rows.append
    learn.add_cb(LRRange(num_it=20, end_lr=1e-1))
    learn.fit(1)
    assert len(learn.range_result) == 20
    assert rows == []
    assert learn.logger == rows.append
    learn.fit(1, lr=1e-3)
    assert len(rows) >= 1  # a normal fit logs again


def test_pytorch_optimizer_through_optim_wrapper(make_learner):
    from functools import partial

    from fastai.optimizer import OptimWrapper

    learn = make_learner(opt_func=partial(OptimWrapper, opt=torch.optim.Adam))
    learn.fit(1, lr=1e-2)
    torch_opt = learn.opt.opt
    saved_state = {k: v.clone() for k, v in torch_opt.state[next(iter(torch_opt.state))].items()}
    saved_lrs = [g["lr"] for g in torch_opt.param_groups]
    weights = {k: v.clone() for k, v in learn.model.state_dict().items()}
    res = learn.range_test(start_lr=1e-6, end_lr=1.0, num_it=20, stop_div=False, show_plot=False)
    np.testing.assert_allclose(res.lrs, np.geomspace(1e-6, 1.0, 20), rtol=1e-12)  # the LR really moved
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in weights.items())
    live = torch_opt.state[next(iter(torch_opt.state))]
    assert all(torch.equal(live[k], v) for k, v in saved_state.items())
    assert [g["lr"] for g in learn.opt.opt.param_groups] == saved_lrs
