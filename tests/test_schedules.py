"""The pure schedules: one-cycle against fastai's own annealers, cyclical against PyTorch's CyclicLR."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fastai.callback.schedule import combined_cos
from hypothesis import given, settings
from hypothesis import strategies as st

from lrrange.schedules import CYCLICAL_MODES, cyclical, one_cycle

PCTS = np.linspace(0, 1, 101)[:-1]


@pytest.mark.parametrize("pct_start", [0.25, 0.3, 0.5, 0.9])
def test_one_cycle_equals_fastai_combined_cos(pct_start):
    lr_max = np.array([1e-3, 1e-2])
    fastai_lr = combined_cos(pct_start, lr_max / 25, lr_max, lr_max / 1e5)
    fastai_mom = combined_cos(pct_start, 0.95, 0.85, 0.95)
    for pct in PCTS:
        ours = one_cycle(pct, lr_max / 25, lr_max, lr_max / 1e5, pct_start)
        # fastai computes the phase position in float32, hence the tolerance
        np.testing.assert_allclose(ours, fastai_lr(pct), rtol=1e-6, atol=1e-5 * lr_max.max())
        assert one_cycle(pct, 0.95, 0.85, 0.95, pct_start) == pytest.approx(fastai_mom(pct), abs=1e-6)


def test_one_cycle_endpoints_and_shape():
    assert one_cycle(0.0, 0.04, 1.0, 1e-5) == pytest.approx(0.04, rel=1e-12)
    assert one_cycle(0.25, 0.04, 1.0, 1e-5) == pytest.approx(1.0, rel=1e-12)
    assert one_cycle(1.0, 0.04, 1.0, 1e-5) == pytest.approx(1e-5, rel=1e-6)
    values = [one_cycle(p, 0.04, 1.0, 1e-5) for p in PCTS]
    peak = int(np.argmax(values))
    assert PCTS[peak] == pytest.approx(0.25)
    assert np.all(np.diff(values[: peak + 1]) > 0) and np.all(np.diff(values[peak:]) < 0)
    per_group = one_cycle(0.1, [0.1, 1.0], [1.0, 10.0], [0.0, 0.0])
    assert per_group.shape == (2,) and per_group[1] == pytest.approx(10 * per_group[0])


def test_one_cycle_momentum_mirrors_the_lr():
    """Momentum descends exactly as far (in fraction of its swing) as the LR climbs."""
    for p in np.linspace(0, 0.25, 11):
        lr_frac = (one_cycle(p, 0.0, 1.0, 0.0) - 0.0) / 1.0
        mom_frac = (0.95 - one_cycle(p, 0.95, 0.85, 0.95)) / 0.1
        assert mom_frac == pytest.approx(lr_frac, abs=1e-12)


def torch_cyclic(n, base, peak, step_size, mode, gamma, base_mom=0.85, max_mom=0.95):
    """LR and momentum per step from PyTorch's CyclicLR stepping a real SGD optimizer."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base, momentum=max_mom)
    sched = torch.optim.lr_scheduler.CyclicLR(
        opt, base, peak, step_size_up=step_size, mode=mode, gamma=gamma,
        base_momentum=base_mom, max_momentum=max_mom,
    )
    lrs, moms = [], []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        p.sum().backward()
        opt.step()
        sched.step()
    return np.array(lrs), np.array(moms)


@pytest.mark.parametrize("mode", CYCLICAL_MODES)
@pytest.mark.parametrize("step_size", [1, 3, 7])
def test_cyclical_equals_torch_cycliclr(mode, step_size):
    n = 6 * step_size + 5
    want_lr, want_mom = torch_cyclic(n, 1e-4, 1e-2, step_size, mode, 0.97)
    lrs = [cyclical(t, 1e-4, 1e-2, step_size, mode, 0.97) for t in range(n)]
    moms = [cyclical(t, 0.95, 0.85, step_size, mode, 0.97) for t in range(n)]
    np.testing.assert_allclose(lrs, want_lr, rtol=1e-12)
    np.testing.assert_allclose(moms, want_mom, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    step=st.integers(0, 10_000),
    step_size=st.integers(1, 500),
    base=st.floats(1e-6, 1e-2),
    factor=st.floats(1.01, 100),
)
def test_cyclical_shape(step, step_size, base, factor):
    peak = base * factor
    tri = cyclical(step, base, peak, step_size)
    assert base * (1 - 1e-12) <= tri <= peak * (1 + 1e-12)
    assert cyclical(step + 2 * step_size, base, peak, step_size) == pytest.approx(tri, rel=1e-9)
    cycle = math.floor(1 + step / (2 * step_size))
    tri2 = cyclical(step, base, peak, step_size, "triangular2")
    assert tri2 - base == pytest.approx((tri - base) * 0.5 ** (cycle - 1), rel=1e-9, abs=1e-15)
    assert cyclical(step, base, peak, step_size, "exp_range", gamma=1.0) == pytest.approx(tri, rel=1e-12)


def test_cyclical_per_group_arrays():
    out = cyclical(2, [1e-4, 1e-3], [1e-3, 1e-2], 2)
    np.testing.assert_allclose(out, [1e-3, 1e-2])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mode": "cosine"}, "mode"),
        ({"step_size": 0}, "step_size"),
        ({"mode": "exp_range", "gamma": 0.0}, "gamma"),
        ({"gamma": -1.0}, "gamma"),
    ],
)
def test_cyclical_rejects_bad_input(kwargs, name):
    args = {"step": 0, "start": 1e-3, "peak": 1e-2, "step_size": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        cyclical(**args)


@pytest.mark.parametrize("pct_start", [0.0, 1.0, -0.1, 1.5])
def test_one_cycle_rejects_bad_pct_start(pct_start):
    with pytest.raises(ValueError, match="pct_start"):
        one_cycle(0.5, 1e-3, 1e-2, 1e-7, pct_start)
