"""Cyclical against PyTorch's CyclicLR stepping a real optimizer."""

from __future__ import annotations

import pickle
from functools import partial

import fastai.callback.schedule  # noqa: F401  (plot_sched)
import numpy as np
import pytest
import torch
from fastai.optimizer import SGD
from support import HyperTrace, assert_plot_sched_draws_the_record

from lrrange import Cyclical, RangeResult
from lrrange.schedules import cyclical


def torch_trace(n, base_lr, max_lr, step_size, mode="triangular", gamma=1.0, base_mom=0.85, max_mom=0.95):
    """Per-step LR and beta1 of every param group under CyclicLR with a real Adam optimizer."""
    groups = [{"params": [torch.zeros(3, requires_grad=True)]} for _ in np.atleast_1d(base_lr)]
    opt = torch.optim.Adam(groups, lr=1.0)
    sched = torch.optim.lr_scheduler.CyclicLR(
        opt, list(np.atleast_1d(base_lr)), list(np.atleast_1d(max_lr)), step_size_up=step_size,
        mode=mode, gamma=gamma, cycle_momentum=True, base_momentum=base_mom, max_momentum=max_mom,
    )
    lrs, moms = [], []
    for _ in range(n):
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append([g["betas"][0] for g in opt.param_groups])
        sum((p**2).sum() for g in opt.param_groups for p in g["params"]).backward()
        opt.step()
        sched.step()
    return np.array(lrs), np.array(moms)


@pytest.mark.parametrize(
    ("mode", "gamma", "attach"),
    [("triangular", 1.0, "cbs"), ("triangular2", 1.0, "add_cb"), ("exp_range", 0.9, "cbs")],
)
def test_trace_equals_torch_cycliclr(quiet_learner, mode, gamma, attach):
    learn, trace = quiet_learner(), HyperTrace()
    base, peak = [1e-4, 1e-3], [1e-3, 1e-2]
    cb = Cyclical(base, peak, step_size=2, mode=mode, gamma=gamma, base_mom=0.8, max_mom=0.93)
    if attach == "cbs":
        learn.fit(3, cbs=[cb, trace])
    else:
        learn.add_cbs([cb, trace])
        learn.fit(3)
    want_lr, want_mom = torch_trace(15, base, peak, 2, mode, gamma, base_mom=0.8, max_mom=0.93)
    np.testing.assert_allclose(trace.trace["lr"], want_lr, rtol=1e-12)
    np.testing.assert_allclose(trace.trace["mom"], want_mom, rtol=1e-12)
    np.testing.assert_allclose(learn.recorder.hps["lr"], want_lr[:, -1], rtol=1e-12)
    np.testing.assert_allclose(learn.recorder.hps["mom"], want_mom[:, -1], rtol=1e-12)


def test_scalar_bounds_on_one_param_group(make_learner):
    learn, trace = make_learner(n_train=320, hidden=16), HyperTrace()
    with learn.no_bar(), learn.no_logging():
        learn.fit(2, cbs=[Cyclical(1e-3, 1e-2, step_size=3, mode="triangular2"), trace])
    want_lr, want_mom = torch_trace(10, 1e-3, 1e-2, 3, "triangular2")
    np.testing.assert_allclose(trace.trace["lr"], want_lr, rtol=1e-12)
    np.testing.assert_allclose(trace.trace["mom"], want_mom, rtol=1e-12)


def test_fastai_sgd_momentum_cycles_like_torch(quiet_learner):
    learn, trace = quiet_learner(opt_func=partial(SGD, mom=0.9)), HyperTrace()
    learn.fit(2, cbs=[Cyclical(1e-2, 1e-1, step_size=3), trace])
    want_lr, want_mom = torch_trace(10, [1e-2, 1e-2], [1e-1, 1e-1], 3)
    np.testing.assert_allclose(trace.trace["lr"], want_lr, rtol=1e-12)
    np.testing.assert_allclose(trace.trace["mom"], want_mom, rtol=1e-12)


def test_without_cycle_momentum_mom_is_left_alone(quiet_learner):
    learn, trace = quiet_learner(), HyperTrace()
    learn.fit(1, cbs=[Cyclical(1e-3, 1e-2, step_size=2, cycle_momentum=False), trace])
    assert np.all(np.array(trace.trace["mom"]) == 0.9)  # fastai Adam's default
    assert set(learn.recorder.hps) == {"lr"}


def test_bounds_default_to_the_range_test(quiet_learner):
    learn = quiet_learner()
    res = learn.range_test(num_it=20, show_plot=False)
    base, peak = res.bounds
    assert 0 < base < peak
    trace = HyperTrace()
    learn.fit(2, cbs=[Cyclical(), trace])
    want_lr, _ = torch_trace(10, [base, base], [peak, peak], step_size=5)
    np.testing.assert_allclose(trace.trace["lr"], want_lr, rtol=1e-12)
    learn.fit(1, cbs=[Cyclical(max_lr=10 * peak, step_size=2), trace])
    want_lr, _ = torch_trace(5, [base, base], [10 * peak, 10 * peak], step_size=2)
    np.testing.assert_allclose(trace.trace["lr"], want_lr, rtol=1e-12)


@pytest.mark.parametrize(("epochs", "step_size"), [(1, 2), (3, 7), (5, 10)])
def test_default_step_size_is_two_epochs_or_half_the_fit(quiet_learner, epochs, step_size):
    learn, trace = quiet_learner(), HyperTrace()
    learn.fit(epochs, cbs=[Cyclical(1e-3, 1e-2, cycle_momentum=False), trace])
    want = [cyclical(t, 1e-3, 1e-2, step_size) for t in range(5 * epochs)]
    np.testing.assert_allclose(np.array(trace.trace["lr"])[:, -1], want, rtol=1e-12)


def test_records_the_schedule_for_plot_sched(quiet_learner):
    learn = quiet_learner()
    cb = Cyclical(1e-3, 1e-2, step_size=2)
    learn.fit(2, cbs=cb)
    hps = learn.recorder.hps
    scheds = pickle.loads(pickle.dumps(cb.scheds))  # learn.export() pickles callbacks
    np.testing.assert_array_equal(scheds["lr"](2), cb.scheds["lr"](2))
    assert set(hps) == {"lr", "mom"} and len(hps["lr"]) == 10
    assert_plot_sched_draws_the_record(learn)


def test_training_lowers_the_validation_loss(make_learner):
    learn = make_learner(n_train=640, hidden=32)
    with learn.no_bar(), learn.no_logging():
        before = learn.validate()[0]
        learn.fit(4, cbs=Cyclical(1e-3, 1e-2, mode="triangular2"))
        after = learn.validate()[0]
    assert after < 0.5 * before


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"base_lr": 1e-2, "max_lr": 1e-3}, "base_lr"),
        ({"base_lr": 1e-2, "max_lr": 1e-2}, "base_lr"),
        ({"base_lr": 0.0}, "base_lr"),
        ({"max_lr": float("inf")}, "max_lr"),
        ({"step_size": 0}, "step_size"),
        ({"step_size": -3}, "step_size"),
        ({"step_size": 2.5}, "step_size"),
        ({"mode": "cosine"}, "mode"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": -0.5}, "gamma"),
        ({"cycle_momentum": "yes"}, "cycle_momentum"),
        ({"base_mom": 1.0}, "base_mom"),
        ({"max_mom": -0.1}, "max_mom"),
    ],
)
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        Cyclical(**kwargs)


@pytest.mark.parametrize(
    ("range_result", "kwargs", "match"),
    [
        (None, {}, "base_lr is None .* run LRRange first"),
        (None, {"base_lr": 1e-3}, "max_lr is None .* run LRRange first"),
        (RangeResult([], [], [], "nonfinite"), {}, r"base_lr is None but learn\.range_result\.bounds\[0\]"),
        (RangeResult([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0], [2.0, 1.0, 3.0]), {"max_lr": 1e-9},
         "base_lr must be < max_lr in every param group"),
        (None, {"base_lr": [1e-4, 1e-3], "max_lr": [1e-3, 1e-4]}, "base_lr must be < max_lr"),
        (None, {"base_lr": [1e-4] * 3, "max_lr": 1e-2}, "base_lr has 3 values"),
    ],
)
def test_rejects_what_the_learner_cannot_give(quiet_learner, range_result, kwargs, match):
    learn = quiet_learner()
    if range_result is not None:
        learn.range_result = range_result
    before = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(ValueError, match=match):
        learn.fit(1, cbs=Cyclical(**kwargs))
    for p, q in zip(before, learn.model.parameters(), strict=True):
        assert torch.equal(p, q)
