"""Suggestion rules: fastai equality, known answers on synthetic curves, range safety, bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastai.callback import schedule as fastai_schedule
from hypothesis import given, settings
from hypothesis import strategies as st

from lrrange import RangeResult, suggest

FASTAI_NAMES = ("valley", "slide", "minimum", "steep")
LRS = np.geomspace(1e-7, 10, 100)
X = np.log10(LRS)


def _random_curve(rng: np.random.Generator, kind: int, n: int) -> np.ndarray:
    """Random walks, coarse (tied) plateaus, and noisy valleys: the shapes a range test produces."""
    if kind == 0:
        return 2.0 + np.cumsum(rng.normal(0, 0.05, n))
    if kind == 1:
        return np.round(rng.normal(2.0, 0.02, n), 2)
    t = np.linspace(0, 1, n)
    centre, width = rng.uniform(0.3, 0.8), rng.uniform(0.05, 0.3)
    return 2.0 - 1.5 * np.exp(-(((t - centre) / width) ** 2)) + rng.normal(0, rng.uniform(0, 0.02), n)


def _fastai_pick(name: str, lrs: np.ndarray, losses: np.ndarray, num_it: int | None = None) -> float:
    """What lr_find reports for this curve: fastai's function on lrs[num_it//10:-5], clipped into range."""
    num_it = len(lrs) if num_it is None else num_it
    lr_t, loss_t = torch.tensor(lrs[num_it // 10 : -5]), torch.tensor(losses[num_it // 10 : -5])
    picked = getattr(fastai_schedule, name)(lr_t, loss_t, num_it)[0]
    return float(np.clip(picked, lrs.min(), lrs.max()))


@pytest.mark.parametrize("name", FASTAI_NAMES)
def test_rules_equal_fastai_on_random_curves(name):
    rng = np.random.default_rng(7)
    for trial in range(50 if name == "valley" else 200):  # fastai's valley is O(n^2) in Python
        n = int(rng.integers(48, 130))
        lrs = np.geomspace(rng.uniform(1e-8, 1e-5), rng.uniform(0.1, 100), n)
        losses = _random_curve(rng, trial % 3, n)
        assert suggest.RULES[name](lrs, losses) == _fastai_pick(name, lrs, losses), (trial, n)
        stopped_early = max(int(n * rng.uniform(0.5, 0.95)), n // 10 + 21)  # fewer points than num_it
        got = suggest.RULES[name](lrs[:stopped_early], losses[:stopped_early], num_it=n)
        assert got == _fastai_pick(name, lrs[:stopped_early], losses[:stopped_early], num_it=n), (trial, n)


def test_valley_equals_fastai_on_monotone_and_constant_curves():
    for losses in (np.linspace(3, 1, 60), np.linspace(1, 3, 60), np.full(60, 2.0)):
        assert suggest.valley(LRS[:60], losses) == _fastai_pick("valley", LRS[:60], losses)


def _clean_valley() -> np.ndarray:
    """Flat at 2.3, falls fastest at 1e-3, bottoms out at 1e-2, then blows up."""
    fall = 2.3 - 2.0 / (1 + np.exp(-(X + 3) * 3))
    return fall + np.where(X > -2, 10 * (X + 2) ** 2, 0.0)


def test_minimum_on_clean_valley_is_a_tenth_of_the_bottom():
    losses = _clean_valley()
    bottom = LRS[np.argmin(losses)]
    assert suggest.minimum(LRS, losses) == pytest.approx(bottom / 10)
    assert 5e-3 < bottom < 2e-2


def test_steep_on_clean_valley_is_the_steepest_point():
    assert suggest.steep(LRS, _clean_valley()) == pytest.approx(1e-3, rel=0.2)


def test_valley_on_clean_valley_is_inside_the_fall():
    lr = suggest.valley(LRS, _clean_valley())
    assert 1e-5 < lr < 1e-2


def _flat_noisy_start(seed: int = 0) -> np.ndarray:
    """Plateau at 2.3 with step-to-step noise below 1e-4, a fall centred on 1e-3, bottom near 1e-2."""
    rng = np.random.default_rng(seed)
    return _clean_valley() + rng.normal(0, 0.08, 100) * (X < -4)


def _late_dip_tail() -> np.ndarray:
    """The clean valley, but the divergence tail climbs past the start level and then dips deeper."""
    losses = _clean_valley()
    tail = X > -1
    losses[tail] = 3.5 - 3.4 * np.exp(-(((X[tail] - 0.3) / 0.15) ** 2))
    return losses


@pytest.mark.parametrize("curve", [_clean_valley, _flat_noisy_start, _late_dip_tail])
def test_default_picks_inside_the_main_fall(curve):
    losses = curve()
    main_bottom = LRS[np.argmin(_clean_valley())]
    assert suggest.DEFAULT == "blend"
    assert suggest.bottom(LRS, losses) == main_bottom  # the late dip's tail is not read
    assert suggest.descent(LRS, losses) == pytest.approx(1e-3, rel=0.6)
    lr = suggest.blend(LRS, losses)
    assert lr == pytest.approx(np.sqrt(suggest.descent(LRS, losses) * main_bottom / 10))
    assert lr == pytest.approx(1e-3, rel=0.6)
    assert suggest.suggest_all(LRS, losses)[suggest.DEFAULT] == lr


def test_blend_lies_between_its_two_readings():
    rng = np.random.default_rng(3)
    for trial in range(200):
        n = int(rng.integers(20, 130))
        lrs = np.geomspace(rng.uniform(1e-8, 1e-5), rng.uniform(0.1, 100), n)
        losses = _random_curve(rng, trial % 3, n)
        fall = suggest.descent(lrs, losses, 0.6)
        edge = max(suggest.bottom(lrs, losses) / 10, lrs.min())
        lr = suggest.blend(lrs, losses, 0.6)
        assert min(fall, edge) * (1 - 1e-12) <= lr <= max(fall, edge) * (1 + 1e-12), trial
        assert lr == pytest.approx(np.sqrt(fall * edge), rel=1e-12), trial


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, suggest.FRACTION, 0.8, 0.95])
def test_descent_lands_where_a_logistic_fall_is_that_far_down(fraction):
    """A logistic fall in log10 LR has a known inverse: the pick is within one grid step of it."""
    lrs = np.geomspace(1e-6, 1.0, 600)
    x = np.log10(lrs)
    hi, lo, centre, width = 2.3, 0.4, -2.5, 0.3
    losses = lo + (hi - lo) / (1 + np.exp((x - centre) / width))
    start = len(lrs) // 10  # the fall is read from there, down to the minimum (no divergence here)
    top, bottom = losses[start], losses.min()
    target = top - fraction * (top - bottom)
    expected = centre + width * np.log((hi - lo) / (target - lo) - 1)
    step = x[1] - x[0]
    got = np.log10(suggest.descent(lrs, losses, fraction))
    assert expected <= got + 1e-9 <= expected + step + 1e-9  # the first grid LR at or past the target


@pytest.mark.parametrize("rule", [suggest.descent, suggest.blend])
def test_a_fraction_outside_0_1_is_refused(rule):
    for bad in (0, 1, 0.0, 1.0, -0.2, 1.5, np.nan, True, "0.5", None):
        with pytest.raises(ValueError, match="fraction must be a number strictly between 0 and 1"):
            rule(LRS, _clean_valley(), bad)
    assert rule(LRS, _clean_valley(), np.float32(0.5)) == rule(LRS, _clean_valley(), 0.5)


def test_the_adversarial_curves_do_fool_the_peer_rules():
    assert suggest.steep(LRS, _flat_noisy_start()) < 1e-4  # a slope rule reads the noise
    assert suggest.minimum(LRS, _late_dip_tail()) > 0.1  # a minimum rule reads the dip


@pytest.mark.parametrize("seed", range(5))
def test_default_ignores_noise_in_the_plateau(seed):
    assert suggest.descent(LRS, _flat_noisy_start(seed)) == pytest.approx(1e-3, rel=0.6)


@pytest.mark.parametrize("curve", [_clean_valley, _flat_noisy_start, _late_dip_tail])
def test_bounds_span_the_main_fall(curve):
    losses = curve()
    lo, hi = suggest.bounds(LRS, losses)
    main_bottom = LRS[np.argmin(_clean_valley())]
    assert suggest.descent(LRS, losses) < hi <= main_bottom
    assert hi / 4 <= lo < hi
    assert lo > 1e-4  # where the loss starts falling, not the plateau


def test_bounds_take_where_the_fall_starts_when_it_is_narrow():
    losses = 2.3 - 2.0 / (1 + np.exp(-(X + 3) * 30))  # falls within 0.2 decades of 1e-3
    lo, hi = suggest.bounds(LRS, losses)
    assert 1e-3 / 2 < lo < hi < 1e-3 * 2
    assert lo > hi / 4


def test_nan_tail_is_ignored():
    losses = _clean_valley()
    cut = 80
    tailed = losses.copy()
    tailed[cut:] = np.nan
    for name, rule in suggest.RULES.items():
        assert rule(LRS, tailed) == rule(LRS[:cut], losses[:cut]), name
    assert suggest.bounds(LRS, tailed) == suggest.bounds(LRS[:cut], losses[:cut])


def test_inf_or_nonpositive_lr_ends_the_curve_too():
    losses = _clean_valley()
    for bad_losses, bad_lrs in ((np.where(np.arange(100) >= 70, np.inf, losses), LRS),
                                (losses, np.where(np.arange(100) >= 70, 0.0, LRS))):
        for name, rule in suggest.RULES.items():
            assert rule(bad_lrs, bad_losses) == rule(LRS[:70], losses[:70]), name


def test_empty_and_tiny_curves():
    for name, rule in suggest.RULES.items():
        assert np.isnan(rule([], [])), name
        assert rule([1e-3], [2.0]) == 1e-3, name
        assert 1e-3 <= rule([1e-3, 1e-2], [2.0, 1.0]) <= 1e-2, name
    assert all(np.isnan(b) for b in suggest.bounds([], []))


def test_bad_num_it_raises():
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ValueError, match="num_it"):
            suggest.valley(LRS, _clean_valley(), num_it=bad)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="lrs and losses"):
        suggest.suggest_all([1e-3, 1e-2], [1.0])
    with pytest.raises(ValueError, match="lrs and losses"):
        suggest.bounds(np.ones((2, 2)), np.ones((2, 2)))


def test_suggest_all_names_every_rule_and_result_uses_default():
    losses = _clean_valley()
    picks = suggest.suggest_all(LRS, losses)
    assert list(picks) == list(suggest.RULES)
    early = suggest.suggest_all(LRS[:80], losses[:80], num_it=100)
    assert early == {name: rule(LRS[:80], losses[:80], **({"num_it": 100} if name in suggest.FASTAI_RULES
                                                          else {})) for name, rule in suggest.RULES.items()}
    assert suggest.DEFAULT in suggest.RULES
    res = RangeResult(LRS, losses, losses)
    assert res.suggestion == picks[suggest.DEFAULT]
    assert res.bounds == suggest.bounds(LRS, losses)


def test_real_range_test_suggestion_is_inside_the_range(make_learner):
    res = make_learner(seed=0).range_test(num_it=60, show_plot=False)
    assert set(res.suggestions) == set(suggest.RULES)
    assert res.lrs.min() <= res.suggestion <= res.lrs.max()
    lo, hi = res.bounds
    assert res.lrs.min() <= lo < hi <= res.lrs.max()


_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def _curves(draw):
    n = draw(st.integers(0, 120))
    lr = st.floats(1e-9, 1e3) | st.sampled_from([0.0, -1.0, np.nan, np.inf])
    lrs = draw(st.lists(lr, min_size=n, max_size=n))
    if draw(st.booleans()):
        lrs = sorted(lrs, key=lambda v: (np.isnan(v), v))
    losses = draw(st.lists(_floats, min_size=n, max_size=n))
    return np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)


@settings(max_examples=300, deadline=None)
@given(_curves())
def test_every_rule_stays_inside_the_tested_range(curve):
    lrs, losses = curve
    good = np.isfinite(losses) & np.isfinite(lrs) & (lrs > 0)
    stop = int(np.argmin(good)) if not good.all() else len(losses)
    for name, rule in suggest.RULES.items():
        lr = rule(lrs, losses)
        if stop == 0:
            assert np.isnan(lr), name
        else:
            assert lrs[:stop].min() <= lr <= lrs[:stop].max(), name
    lo, hi = suggest.bounds(lrs, losses)
    if stop:
        assert lrs[:stop].min() <= lo <= hi <= lrs[:stop].max()
        if len(np.unique(lrs[:stop])) > 1:
            assert lo < hi
