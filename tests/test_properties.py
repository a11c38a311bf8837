"""Property tests (hypothesis): the range schedule, the smoothing, and where a NaN stops the test."""

from __future__ import annotations

import itertools
import math

import numpy as np
from fastai.callback.progress import ProgressCallback
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from lrrange import LRRange
from lrrange.schedules import RANGE_MODES, range_lr
from lrrange.smoothing import BiasCorrectedEMA, ema

lr = st.floats(min_value=1e-9, max_value=1e3, allow_nan=False, allow_infinity=False)
beta = st.floats(min_value=0.0, max_value=0.9999, exclude_max=False)
loss = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(lo=lr, ratio=st.floats(min_value=1.001, max_value=1e9), num_it=st.integers(2, 400),
       mode=st.sampled_from(RANGE_MODES))  # fmt: skip
def test_range_schedule_is_monotone_and_hits_both_endpoints(lo, ratio, num_it, mode):
    hi = lo * ratio
    lrs = [range_lr(i, num_it, lo, hi, mode) for i in range(num_it)]
    assert lrs[0] == lo and lrs[-1] == hi
    assert all(a <= b for a, b in itertools.pairwise(lrs))
    assert all(lo <= x <= hi for x in lrs)


@given(lo=st.lists(lr, min_size=2, max_size=4), ratio=st.floats(1.001, 1e6), num_it=st.integers(2, 100),
       mode=st.sampled_from(RANGE_MODES))  # fmt: skip
def test_every_group_schedule_is_monotone_and_hits_its_endpoints(lo, ratio, num_it, mode):
    starts = np.array(lo)
    ends = starts * ratio
    lrs = np.array([range_lr(i, num_it, starts, ends, mode) for i in range(num_it)])
    assert lrs[0].tolist() == starts.tolist() and lrs[-1].tolist() == ends.tolist()
    assert np.all(np.diff(lrs, axis=0) >= 0)


@given(value=loss, b=beta, n=st.integers(1, 300))
def test_ema_of_a_constant_is_that_constant_at_every_step(value, b, n):
    smoother = BiasCorrectedEMA(b)
    assert all(smoother.update(value) == value for _ in range(n))
    assert ema([value] * n, b).tolist() == [value] * n


@given(losses=st.lists(loss, min_size=1, max_size=50), b=beta)
def test_first_smoothed_value_is_the_first_loss(losses, b):
    assert ema(losses, b)[0] == losses[0]
    assert BiasCorrectedEMA(b).update(losses[0]) == losses[0]


class NanAt(nn.Module):
    """Wraps a model; training forward pass ``k`` (1-based) returns NaN."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k, self.calls = model, k, 0

    def forward(self, x):
        out = self.model(x)
        if self.training:
            self.calls += 1
            if self.calls == self.k:
                return out * math.nan
        return out


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(1, 12), num_it=st.integers(2, 12))
def test_a_nan_at_step_k_stops_the_test_at_step_k(make_learner, k, num_it):
    model = NanAt(nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)), k)
    learn = make_learner(model=model, n_train=128, bs=32)  # 4 batches: the test spans epochs
    learn.remove_cb(ProgressCallback)
    res = learn.range_test(num_it=num_it, end_lr=1e-2, show_plot=False)
    if k <= num_it:
        assert res.stop_reason == "nonfinite" and len(res) == k - 1
    else:
        assert res.stop_reason == "completed" and len(res) == num_it
    assert np.all(np.isfinite(res.losses))
    want = [range_lr(i, num_it, 1e-7, 1e-2) for i in range(len(res))]
    np.testing.assert_allclose(res.lrs, want, rtol=1e-12)
    assert learn.opt is None and not any(isinstance(cb, LRRange) for cb in learn.cbs)
