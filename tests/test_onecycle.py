"""OneCycle against fastai's own fit_one_cycle, run on twin learners."""

from __future__ import annotations

import pickle
import types
from functools import partial

import fastai.callback.schedule  # noqa: F401  (fit_one_cycle, plot_sched)
import numpy as np
import pytest
import torch
from fastai.optimizer import SGD
from support import HyperTrace, assert_plot_sched_draws_the_record

from lrrange import OneCycle, RangeResult


def assert_same_trace(ours: HyperTrace, fastai_: HyperTrace):
    """Bit for bit: one_cycle computes the phase position in float32, as fastai does."""
    lr, want_lr = np.array(ours.trace["lr"]), np.array(fastai_.trace["lr"])
    assert lr.shape == want_lr.shape and lr.size > 0
    np.testing.assert_array_equal(lr, want_lr)
    np.testing.assert_array_equal(ours.trace["mom"], fastai_.trace["mom"])


@pytest.mark.parametrize(
    ("lr_max", "kwargs", "attach"),
    [
        (3e-3, {}, "cbs"),
        (3e-3, {}, "add_cb"),
        (slice(1e-2), {}, "cbs"),
        (slice(1e-4, 1e-2), {}, "add_cb"),
        ([1e-3, 5e-3], {}, "cbs"),
        (5e-3, {"div": 10.0, "div_final": 1e4, "pct_start": 0.4, "moms": (0.9, 0.8, 0.92)}, "cbs"),
    ],
)
def test_trace_equals_fit_one_cycle(quiet_learner, lr_max, kwargs, attach):
    ref, learn = quiet_learner(), quiet_learner()
    ref_trace, trace = HyperTrace(), HyperTrace()
    ref.fit_one_cycle(2, lr_max, cbs=ref_trace, **kwargs)
    cb = OneCycle(lr_max, **kwargs)
    if attach == "cbs":
        learn.fit(2, cbs=[cb, trace])
    else:
        learn.add_cbs([cb, trace])
        learn.fit(2)
    assert len(trace.trace["lr"]) == 10
    assert_same_trace(trace, ref_trace)
    for key in ("lr", "mom"):
        np.testing.assert_array_equal(learn.recorder.hps[key], ref.recorder.hps[key])
    for p, q in zip(learn.model.parameters(), ref.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_single_param_group_equals_fit_one_cycle(make_learner):
    ref, learn = make_learner(n_train=320, hidden=16), make_learner(n_train=320, hidden=16)
    ref_trace, trace = HyperTrace(), HyperTrace()
    with ref.no_bar(), ref.no_logging(), learn.no_bar(), learn.no_logging():
        ref.fit_one_cycle(2, 1e-2, cbs=ref_trace)
        learn.fit(2, cbs=[OneCycle(1e-2), trace])
    assert np.array(trace.trace["lr"]).shape == (10, 1)
    assert_same_trace(trace, ref_trace)


def test_fastai_sgd_with_momentum_equals_fit_one_cycle(quiet_learner):
    sgd = partial(SGD, mom=0.9)
    ref, learn = quiet_learner(opt_func=sgd), quiet_learner(opt_func=sgd)
    ref_trace, trace = HyperTrace(), HyperTrace()
    ref.fit_one_cycle(2, 0.1, cbs=ref_trace)
    learn.fit(2, cbs=[OneCycle(0.1), trace])
    assert_same_trace(trace, ref_trace)
    assert np.ptp(np.array(trace.trace["mom"])) > 0.09  # momentum swings from 0.95 to near 0.85


def test_lr_max_defaults_to_the_range_test_suggestion(quiet_learner):
    learn, ref = quiet_learner(), quiet_learner()
    res = learn.range_test(num_it=20, show_plot=False)
    assert np.isfinite(res.suggestion)
    trace, ref_trace = HyperTrace(), HyperTrace()
    learn.fit(2, cbs=[OneCycle(), trace])
    ref.fit_one_cycle(2, res.suggestion, cbs=ref_trace)
    assert_same_trace(trace, ref_trace)


def test_stands_aside_while_a_range_test_runs(quiet_learner):
    learn = quiet_learner()
    learn.add_cb(OneCycle(1e-2))
    res = learn.range_test(start_lr=1e-6, end_lr=1.0, num_it=12, stop_div=False, show_plot=False)
    np.testing.assert_allclose(res.lrs, np.geomspace(1e-6, 1.0, 12)[: len(res.lrs)], rtol=1e-9)
    trace = HyperTrace()
    learn.fit(2, cbs=trace)
    assert max(np.array(trace.trace["lr"])[:, -1]) == pytest.approx(1e-2, rel=0.05)


def test_stands_aside_while_fastai_lr_find_runs(quiet_learner, tmp_path):
    learn = quiet_learner()
    learn.path = tmp_path  # lr_find saves the model under learn.path/models
    learn.add_cb(OneCycle())  # no range result yet: would raise if it acted
    learn.lr_find(start_lr=1e-6, end_lr=1.0, num_it=10, stop_div=False, show_plot=False)
    np.testing.assert_allclose(learn.recorder.lrs, np.geomspace(1e-6, 1.0, 11)[:10], rtol=1e-6)


def test_records_the_schedule_for_plot_sched(quiet_learner):
    learn = quiet_learner()
    cb = OneCycle(1e-2)
    learn.fit(2, cbs=cb)
    hps = learn.recorder.hps
    scheds = pickle.loads(pickle.dumps(cb.scheds))  # learn.export() pickles callbacks
    np.testing.assert_array_equal(scheds["lr"](0.25), cb.scheds["lr"](0.25))
    assert set(hps) == {"lr", "mom"} and len(hps["lr"]) == len(hps["mom"]) == 10
    assert int(np.argmax(hps["lr"])) == int(np.argmin(hps["mom"]))
    assert_plot_sched_draws_the_record(learn)


def test_training_lowers_the_validation_loss(make_learner):
    learn = make_learner(n_train=640, hidden=32)
    with learn.no_bar(), learn.no_logging():
        before = learn.validate()[0]
        learn.fit(3, cbs=OneCycle(1e-2))
        after = learn.validate()[0]
    assert after < 0.5 * before


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr_max": 0.0}, "lr_max"),
        ({"lr_max": -1e-3}, "lr_max"),
        ({"lr_max": float("nan")}, "lr_max"),
        ({"lr_max": "1e-3"}, "lr_max"),
        ({"lr_max": slice(1e-3, 1e-2, 2)}, "lr_max"),
        ({"pct_start": 0.0}, "pct_start"),
        ({"pct_start": 1.0}, "pct_start"),
        ({"pct_start": 1.5}, "pct_start"),
        ({"div": 0.0}, "div"),
        ({"div": -25.0}, "div"),
        ({"div_final": 0.0}, "div_final"),
        ({"div_final": -1.0}, "div_final"),
        ({"moms": (0.95, 0.85)}, "moms"),
        ({"moms": (0.95, 0.85, 0.95, 0.9)}, "moms"),
        ({"moms": 0.9}, "moms"),
        ({"moms": (0.95, "x", 0.95)}, "moms"),
        ({"moms": (0.95, 1.5, 0.95)}, "moms"),
    ],
)
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        OneCycle(**kwargs)


def _weights(learn):
    return [p.detach().clone() for p in learn.model.parameters()]


@pytest.mark.parametrize(
    ("range_result", "lr_max", "match"),
    [
        (None, None, "run LRRange first"),
        (RangeResult([], [], [], "nonfinite"), None, r"lr_max is None but learn\.range_result\.suggestion"),
        (types.SimpleNamespace(suggestion=None), None, r"lr_max is None but learn\.range_result\.suggestion"),
        (None, [1e-3, 1e-2, 1e-1], "lr_max has 3 values"),
    ],
)
def test_rejects_what_the_learner_cannot_give(quiet_learner, range_result, lr_max, match):
    learn = quiet_learner()
    if range_result is not None:
        learn.range_result = range_result
    before = _weights(learn)
    with pytest.raises(ValueError, match=match):
        learn.fit(1, cbs=OneCycle(lr_max))
    for p, q in zip(before, learn.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not any(isinstance(cb, OneCycle) for cb in learn.cbs)
