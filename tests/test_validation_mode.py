"""Validation-loss mode: LRRange(valid_every=k, valid_batches=m) on real fastai Learners."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pytest
import torch
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from torch import nn

from lrrange import LRRange, RangeResult


class Probe(nn.Module):
    """Identity that records, per forward pass, whether it ran in train mode and with autograd on."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return x


def probed_model(hidden: int = 32) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(64, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.3), Probe(),
        nn.Linear(hidden, 10),
    )


class GradWatch(Callback):
    """After each step (LRRange's validation included) the gradients must be the backward pass's."""

    order = 0  # after LRRange (-10), so its after_step has already run

    def __init__(self):
        self.checked = 0

    def after_backward(self):
        self.saved = [p.grad.clone() for p in self.learn.model.parameters()]

    def after_step(self):
        for p, g in zip(self.learn.model.parameters(), self.saved, strict=True):
            assert torch.equal(p.grad, g)
        self.checked += 1


def test_recorded_after_every_kth_step(make_learner):
    learn = make_learner()
    res = learn.range_test(num_it=20, stop_div=False, valid_every=4, valid_batches=2, show_plot=False)
    assert res.stop_reason == "completed" and len(res) == 20
    # evaluated after the updates of steps 4, 8, 12, 16 and 20
    np.testing.assert_array_equal(res.val_lrs, res.lrs[[3, 7, 11, 15, 19]])
    assert res.val_losses.shape == (5,) and np.all(np.isfinite(res.val_losses))
    assert res.meta["valid_every"] == 4 and res.meta["valid_batches"] == 2


def test_off_by_default(make_learner):
    res = make_learner().range_test(num_it=10, show_plot=False)
    assert res.val_lrs.size == 0 and res.val_losses.size == 0
    assert "valid_every" not in res.meta


def test_value_is_the_loss_on_the_first_m_validation_batches(make_learner):
    learn = make_learner()
    batches = [b for _, b in zip(range(2), learn.dls.valid, strict=False)]
    with torch.no_grad():
        learn.model.eval()
        direct = [(float(learn.loss_func(learn.model(x), y)), len(x)) for x, y in batches]
        learn.model.train()
    expected = sum(v * n for v, n in direct) / sum(n for _, n in direct)
    # after one step at lr 1e-7 the weights have barely moved
    res = learn.range_test(num_it=5, start_lr=1e-7, end_lr=1e-6, valid_every=1, valid_batches=2,
                           show_plot=False)
    assert res.val_losses[0] == pytest.approx(expected, abs=1e-4)
    assert res.val_losses[0] != pytest.approx(
        sum(v * n for v, n in direct[:1]) / direct[0][1], abs=1e-6
    ), "two batches should differ from one"


def test_eval_mode_no_grad_and_train_mode_back(make_learner):
    model = probed_model()
    learn = make_learner(model=model)
    probe = model[4]
    watch = GradWatch()
    learn.add_cb(watch)
    res = learn.range_test(num_it=12, stop_div=False, valid_every=3, valid_batches=2, show_plot=False)
    learn.remove_cb(watch)
    assert watch.checked >= 11
    assert model.training and all(m.training for m in model.modules())
    val_calls = [c for c in probe.calls if c == (False, False)]
    train_calls = [c for c in probe.calls if c == (True, True)]
    assert len(val_calls) == 2 * len(res.val_losses) == 2 * 4
    assert len(train_calls) == 12 and len(probe.calls) == 12 + 8


def test_module_left_in_eval_stays_in_eval(make_learner):
    model = probed_model()
    model[1].eval()  # a frozen BatchNorm, as fine-tuning does
    learn = make_learner(model=model)
    learn.range_test(num_it=6, valid_every=2, show_plot=False)
    assert not model[1].training and model[0].training


def test_training_curve_unchanged_by_validation(make_learner):
    """Dropout, BatchNorm and gradients: the validation passes must not disturb training."""
    torch.manual_seed(1)
    plain = make_learner(model=probed_model()).range_test(num_it=25, show_plot=False)
    torch.manual_seed(1)
    valid = make_learner(model=probed_model()).range_test(
        num_it=25, valid_every=2, valid_batches=3, show_plot=False
    )
    np.testing.assert_array_equal(plain.losses, valid.losses)
    np.testing.assert_array_equal(plain.lrs, valid.lrs)


def test_learner_restored(make_learner):
    learn = make_learner()
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    rng = torch.get_rng_state()
    learn.range_test(num_it=10, valid_every=2, show_plot=False)
    after = learn.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_suggest_from_valid_reads_the_validation_curve(make_learner):
    res = make_learner().range_test(num_it=40, valid_every=2, suggest_from="valid", show_plot=False)
    assert res.suggest_from == "valid"
    assert res.suggestions == res.val_suggestions
    assert res.val_lrs.min() <= res.suggestion <= res.val_lrs.max()
    train = RangeResult(res.lrs, res.losses, res.smoothed, res.stop_reason, res.meta,
                        res.val_lrs, res.val_losses, "train")
    assert train.suggestions != res.suggestions or train.bounds != res.bounds
    assert train.val_suggestions == res.val_suggestions


def test_plot_draws_the_validation_loss(make_learner):
    res = make_learner().range_test(num_it=20, valid_every=2, show_plot=False)
    fig = res.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    np.testing.assert_array_equal(lines["validation loss"].get_xdata(), res.val_lrs)
    np.testing.assert_array_equal(lines["validation loss"].get_ydata(), res.val_losses)
    assert "validation loss" not in {ln.get_label() for ln in
                                     make_learner().range_test(num_it=8, show_plot=False).plot()
                                     .axes[0].get_lines()}


def test_save_load_round_trip(make_learner, tmp_path):
    res = make_learner().range_test(num_it=20, valid_every=3, suggest_from="valid", show_plot=False)
    back = RangeResult.load(res.save(tmp_path / "r.json"))
    np.testing.assert_array_equal(back.val_lrs, res.val_lrs)
    np.testing.assert_array_equal(back.val_losses, res.val_losses)
    assert back.suggest_from == "valid" and back.suggestion == res.suggestion
    old = res.to_dict()
    for key in ("val_lrs", "val_losses", "suggest_from"):
        del old[key]
    legacy = RangeResult.from_dict(old)
    assert legacy.val_lrs.size == 0 and legacy.suggest_from == "train"


def test_more_batches_asked_than_exist_uses_all(make_learner):
    learn = make_learner(n_valid=100, bs=64)  # two validation batches
    res = learn.range_test(num_it=6, valid_every=2, valid_batches=50, show_plot=False)
    assert res.meta["valid_batches"] == 2


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"valid_every": 0}, "valid_every"),
        ({"valid_every": -2}, "valid_every"),
        ({"valid_every": 1.5}, "valid_every"),
        ({"valid_every": True}, "valid_every"),
        ({"valid_every": 2, "valid_batches": 0}, "valid_batches"),
        ({"valid_every": 2, "valid_batches": None}, "valid_batches"),
        ({"valid_every": 2, "valid_batches": 2.0}, "valid_batches"),
        ({"valid_every": 2, "suggest_from": "test"}, "suggest_from"),
        ({"suggest_from": "valid"}, "suggest_from"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LRRange(**kwargs)


def test_bad_result_fields():
    with pytest.raises(ValueError, match="suggest_from"):
        RangeResult([1.0], [1.0], [1.0], suggest_from="nope")
    with pytest.raises(ValueError, match="val_lrs"):
        RangeResult([1.0], [1.0], [1.0], val_lrs=[1.0, 2.0], val_losses=[1.0])


def test_no_validation_dataloader(make_learner):
    learn = make_learner()
    learn.dls = DataLoaders(learn.dls.train)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    with pytest.raises(ValueError, match="valid_every"):
        learn.range_test(num_it=5, valid_every=1, show_plot=False)
    assert all(torch.equal(learn.model.state_dict()[k], v) for k, v in before.items())
    assert not any(isinstance(cb, LRRange) for cb in learn.cbs)
    res = learn.range_test(num_it=5, show_plot=False)  # a plain test still runs
    assert len(res) == 5


def test_plot_keeps_a_validation_loss_below_the_training_curve_in_view():
    lrs = np.logspace(-4, -1, 10)
    flat = np.full(10, 2.0)
    res = RangeResult(lrs, flat, flat, val_lrs=lrs[::3], val_losses=[1.0, 0.5, 0.4, 9.0])
    bottom, top = res.plot().axes[0].get_ylim()
    assert bottom < 0.4 and top < 9.0
