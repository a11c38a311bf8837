"""Repeated range tests and weight-decay sweeps (lrrange.multi) on real fastai Learners."""

from __future__ import annotations

import random

import matplotlib.figure
import numpy as np
import pytest
import torch
from fastai.callback.core import Callback
from hypothesis import given, settings
from hypothesis import strategies as st

from lrrange import LRRange, RangeResult
from lrrange.multi import (
    RepeatedResult,
    SweepResult,
    band_quantile,
    choose_wd,
    on_grid,
    repeated_test,
    robust_pick,
    spread_decades,
    wd_sweep,
)

SMALL = {"n_train": 320, "bs": 32}
TEST = {"num_it": 20, "show_plot": False}


def weights(learn) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in learn.model.state_dict().items()}


def assert_same_weights(learn, saved) -> None:
    live = learn.model.state_dict()
    assert all(torch.equal(live[k], v) for k, v in saved.items())


# --- the pure parts -------------------------------------------------------------


def test_on_grid_marks_divergence_as_inf_and_untested_as_nan():
    grid = np.logspace(-4, 0, 5)
    diverged = RangeResult(grid[:3], [3.0, 2.0, 9.0], [3.0, 2.0, 9.0], "diverged")
    out = on_grid(diverged, grid)
    np.testing.assert_array_equal(out, [3.0, 2.0, 9.0, np.inf, np.inf])
    short = RangeResult(grid[1:3], [3.0, 2.0], [3.0, 2.0], "completed")
    out = on_grid(short, grid)
    assert np.isnan(out[0]) and np.isnan(out[3:]).all() and out[1] == 3.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.floats(-5, 5), st.just(np.inf), st.just(np.nan)), min_size=4, max_size=4),
        min_size=1, max_size=7,
    ),
    st.floats(0, 1), st.floats(0, 1),
)
def test_band_quantile_is_monotone_in_q(rows, q1, q2):
    curves = np.array(rows, dtype=float)
    lo, hi = sorted((q1, q2))
    a, b = band_quantile(curves, lo), band_quantile(curves, hi)
    empty = np.isnan(curves).all(axis=0)
    assert np.isnan(a[empty]).all() and np.isnan(b[empty]).all()
    assert np.all(a[~empty] <= b[~empty])
    finite = np.isfinite(curves).all(axis=0)
    np.testing.assert_allclose(band_quantile(curves, 0.5)[finite], np.median(curves[:, finite], axis=0))


def test_spread_and_robust_pick():
    assert spread_decades([1e-3, 1e-2, 1e-1]) == pytest.approx(2.0)
    assert spread_decades([np.nan, 1e-2]) == 0.0
    assert np.isnan(spread_decades([np.nan]))
    picks = [1e-3, 1e-2, 1e-1]
    assert robust_pick(picks) == pytest.approx(10**-2.5)
    assert robust_pick([3e-3]) == 3e-3 and robust_pick([0.2, 0.2, 0.2]) == 0.2


def test_choose_wd_rule():
    lrs = np.logspace(-3, 0, 4)
    # wd=1e-1 reaches the lowest loss but only at a low LR; 1e-2 is within 5% at the highest LR
    curves = [
        (lrs, [2.0, 1.5, 1.0, 3.0]),
        (lrs, [2.0, 1.6, 1.2, 1.02]),
        (lrs, [2.0, 0.99, 1.5, 3.0]),
    ]
    assert choose_wd([0.0, 1e-2, 1e-1], curves) == 1
    # two weight decays with the same minimum at the same LR: the larger wins
    same = [(lrs, [2.0, 1.5, 1.0, 3.0])] * 2
    assert choose_wd([1e-4, 1e-3], same) == 1
    assert choose_wd([0.0], [(lrs, [np.nan] * 4)]) == -1


# --- repeats --------------------------------------------------------------------


def test_repeats_give_k_curves_with_an_ordered_band(make_learner):
    learn = make_learner(**SMALL)
    res = learn.range_test(repeats=3, **TEST)
    assert isinstance(res, RepeatedResult) and learn.range_result is res
    assert len(res.runs) == 3 and res.curves.shape == (3, len(res.lrs))
    assert res.seeds == [0, 1, 2] and not res.reinit
    for run in res.runs:
        assert isinstance(run, RangeResult) and len(run) > 0
    ok = ~np.isnan(res.median)
    assert ok.any()
    assert np.all(res.low[ok] <= res.median[ok]) and np.all(res.median[ok] <= res.high[ok])
    # each run drew its own batch order
    assert not np.array_equal(res.runs[0].losses, res.runs[1].losses)
    picks = res.run_suggestions
    assert picks.shape == (3,)
    assert res.spread == pytest.approx(np.log10(np.nanmax(picks) / np.nanmin(picks)))
    assert np.nanmin(picks) <= res.suggestion <= np.nanmax(picks)
    assert set(res.suggestions) and res.bounds[0] <= res.bounds[1]
    frame = res.to_frame()
    assert list(frame.columns[:4]) == ["lr", "low", "median", "high"] and "run2" in frame


def test_repeats_reproducible_with_the_same_seed(make_learner):
    a = make_learner(**SMALL).range_test(repeats=2, seed=7, **TEST)
    b = make_learner(**SMALL).range_test(repeats=2, seed=7, **TEST)
    c = make_learner(**SMALL).range_test(repeats=2, seed=8, **TEST)
    for ra, rb in zip(a.runs, b.runs, strict=True):
        np.testing.assert_array_equal(ra.losses, rb.losses)
    np.testing.assert_array_equal(a.median, b.median)
    assert not np.array_equal(a.runs[0].losses, c.runs[0].losses)
    # seed 8's first run is seed 7's second: the seeds name batch orders
    np.testing.assert_array_equal(a.runs[1].losses, c.runs[0].losses)


def test_reinit_starts_each_run_from_fresh_weights(make_learner):
    plain = make_learner(**SMALL).range_test(repeats=2, seed=3, **TEST)
    fresh = make_learner(**SMALL).range_test(repeats=2, seed=3, reinit=True, **TEST)
    assert fresh.reinit
    # same batch orders, other starting weights: other first losses
    assert plain.runs[0].losses[0] != fresh.runs[0].losses[0]
    assert fresh.runs[0].losses[0] != fresh.runs[1].losses[0]
    again = make_learner(**SMALL).range_test(repeats=2, seed=3, reinit=True, **TEST)
    np.testing.assert_array_equal(fresh.runs[1].losses, again.runs[1].losses)


@pytest.mark.parametrize("reinit", [False, True])
def test_learner_restored_after_all_runs(make_learner, reinit):
    learn = make_learner(**SMALL)
    learn.fit(1, 1e-3)  # an optimizer with state, a trained model
    saved = weights(learn)
    opt_state = {id(p): {k: v.clone() for k, v in s.items() if torch.is_tensor(v)}
                 for p, s in learn.opt.state.items()}
    hypers = [dict(h) for h in learn.opt.hypers]
    rng, torch_rng = random.getstate(), torch.get_rng_state()
    dl_rng = learn.dls.train.rng.getstate()
    cbs = list(learn.cbs)
    learn.range_test(repeats=3, reinit=reinit, **TEST)
    assert_same_weights(learn, saved)
    assert [dict(h) for h in learn.opt.hypers] == hypers
    for p, s in learn.opt.state.items():
        for k, v in opt_state[id(p)].items():
            assert torch.equal(s[k], v)
    assert random.getstate() == rng and torch.equal(torch.get_rng_state(), torch_rng)
    assert learn.dls.train.rng.getstate() == dl_rng
    assert list(learn.cbs) == cbs and not any(isinstance(cb, LRRange) for cb in learn.cbs)


def test_restored_when_a_run_raises(make_learner):
    learn = make_learner(**SMALL)
    saved = weights(learn)

    class Boom(Callback):
        order = 0
        calls = 0

        def after_step(self):
            Boom.calls += 1
            if Boom.calls == 25:  # during the second run
                raise RuntimeError("boom")

    learn.add_cb(Boom())
    with pytest.raises(RuntimeError, match="boom"):
        learn.range_test(repeats=3, **TEST)
    assert_same_weights(learn, saved)
    assert not hasattr(learn, "range_result")


def test_plot_draws_the_band(make_learner):
    res = make_learner(**SMALL).range_test(repeats=3, **TEST)
    fig = res.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert len(ax.collections) == 1  # the shaded band
    labels = [line.get_label() for line in ax.get_lines()]
    assert "median of 3 runs" in labels
    assert any(label.startswith("robust pick") for label in labels)


def test_lrrange_kwargs_pass_through(make_learner):
    res = repeated_test(make_learner(**SMALL), repeats=2, num_it=12, valid_every=4)
    assert all(len(r) == 12 and len(r.val_losses) == 3 for r in res.runs)


# --- weight-decay sweep ---------------------------------------------------------


class WdProbe(Callback):
    """Records the weight decay the optimizer holds at each fit's first batch."""

    def __init__(self):
        self.seen: list[float] = []

    def before_fit(self):
        self.first = True

    def before_batch(self):
        if self.first:
            self.seen.append(self.learn.opt.hypers[-1]["wd"])
            self.first = False


def test_sweep_one_curve_per_wd_and_wd_restored(make_learner):
    learn = make_learner(**SMALL, wd=0.02)
    learn.create_opt()
    for h in learn.opt.hypers:
        h["wd"] = 0.03
    saved = weights(learn)
    wds = [0.0, 1e-2, 0.5]
    probe = WdProbe()
    learn.add_cb(probe)
    res = learn.range_test(wds=wds, **TEST)
    learn.remove_cb(probe)
    assert isinstance(res, SweepResult) and learn.range_result is res
    assert probe.seen == wds
    assert len(res.runs) == 3 and all(isinstance(r, RangeResult) for r in res.runs)
    # same batch order for every weight decay: the first losses agree, the curves do not
    assert len({r.losses[0] for r in res.runs}) == 1
    assert not np.array_equal(res.runs[0].losses, res.runs[2].losses)
    assert all(h["wd"] == 0.03 for h in learn.opt.hypers) and learn.wd == 0.02
    assert_same_weights(learn, saved)
    assert res.wd in wds and res.suggestion == res.runs[wds.index(res.wd)].suggestion
    frame = res.to_frame()
    assert list(frame["wd"]) == wds and frame["chosen"].sum() == 1
    labels = [ln.get_label() for ln in res.plot().axes[0].get_lines()][:3]
    assert [label.removesuffix(" (chosen)") for label in labels] == ["wd=0", "wd=0.01", "wd=0.5"]
    assert sum("(chosen)" in label for label in labels) == 1


def test_sweep_without_an_optimizer_leaves_none(make_learner):
    learn = make_learner(**SMALL)
    assert learn.opt is None
    wd_sweep(learn, [0, 1e-3], num_it=10)
    assert learn.opt is None


def test_sweep_with_repeats(make_learner):
    res = make_learner(**SMALL).range_test(wds=[0, 0.1], repeats=2, **TEST)
    assert all(isinstance(r, RepeatedResult) and len(r) == 2 for r in res.runs)
    assert res.wd in (0.0, 0.1)


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"repeats": 0}, "repeats"),
        ({"repeats": -1}, "repeats"),
        ({"repeats": 2.0}, "repeats"),
        ({"repeats": True}, "repeats"),
        ({"repeats": 2, "reinit": "yes"}, "reinit"),
        ({"repeats": 2, "seed": -1}, "seed"),
        ({"repeats": 2, "seed": 1.5}, "seed"),
        ({"wds": []}, "wds"),
        ({"wds": "0.1"}, "wds"),
        ({"wds": ["a"]}, "wds"),
        ({"wds": [0.1, None]}, "wds"),
        ({"wds": [float("nan")]}, "wds"),
        ({"wds": [-1e-3]}, "wds"),
        ({"wds": 0.1}, "wds"),
        ({"repeats": 2, "valid_every": 0}, "valid_every"),
    ],
)
def test_bad_input(make_learner, kwargs, name):
    learn = make_learner(**SMALL)
    saved = weights(learn)
    with pytest.raises(ValueError, match=name):
        learn.range_test(**TEST, **kwargs)
    assert_same_weights(learn, saved) and learn.opt is None
    assert not hasattr(learn, "range_result")


def test_one_cycle_takes_the_robust_pick(make_learner):
    from lrrange import OneCycle

    learn = make_learner(**SMALL)
    rep = learn.range_test(repeats=2, **TEST)
    traces = []
    for lr_max in (None, rep.suggestion):
        with learn.no_logging(), learn.no_bar():
            learn.fit(1, cbs=OneCycle(lr_max=lr_max))
        traces.append(list(learn.recorder.hps["lr"]))
    assert traces[0] == traces[1]


def test_reinit_needs_resettable_modules(make_learner):
    class Bare(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(64, 10))

        def forward(self, x):
            return x @ self.w

    learn = make_learner(**SMALL, model=Bare())
    with pytest.raises(ValueError, match="reinit"):
        learn.range_test(repeats=2, reinit=True, **TEST)
    assert torch.equal(learn.model.w, torch.zeros(64, 10))


# --- the same from the callback, in one fit ------------------------------------------


@pytest.mark.parametrize("reinit", [False, True])
def test_lrrange_repeats_in_one_fit_equal_range_test_repeats(make_learner, reinit):
    via_callback = make_learner(**SMALL)
    via_callback.fit(1, 1e-3)  # trained weights and optimizer state to come back to
    saved = weights(via_callback)
    hypers = [dict(h) for h in via_callback.opt.hypers]
    rng, dl_rng = torch.get_rng_state(), via_callback.dls.train.rng.getstate()
    via_callback.add_cb(LRRange(num_it=20, repeats=3, reinit=reinit, seed=4))
    via_callback.fit(1)
    res = via_callback.range_result
    assert isinstance(res, RepeatedResult) and len(res.runs) == 3 and res.seeds == [4, 5, 6]
    assert all(len(run) == 20 for run in res.runs)
    assert not np.array_equal(res.runs[0].losses, res.runs[1].losses)  # other batch orders

    reference = make_learner(**SMALL)
    reference.fit(1, 1e-3)
    ref = reference.range_test(repeats=3, reinit=reinit, seed=4, **TEST)
    for run, ref_run in zip(res.runs, ref.runs, strict=True):
        np.testing.assert_array_equal(run.lrs, ref_run.lrs)
        np.testing.assert_array_equal(run.losses, ref_run.losses)

    assert_same_weights(via_callback, saved)
    assert [dict(h) for h in via_callback.opt.hypers] == hypers
    assert torch.equal(torch.get_rng_state(), rng)
    assert via_callback.dls.train.rng.getstate() == dl_rng
    assert not any(isinstance(cb, LRRange) for cb in via_callback.cbs)


def test_lrrange_repeats_rejects_bad_input():
    for kwargs, name in (({"repeats": 0}, "repeats"), ({"reinit": 1}, "reinit"), ({"seed": -1}, "seed")):
        with pytest.raises(ValueError, match=name):
            LRRange(**kwargs)
