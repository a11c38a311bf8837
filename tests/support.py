"""Helpers shared by the schedule tests (imported by test modules; not collected)."""

from __future__ import annotations

import fastai.callback.schedule  # noqa: F401  (Recorder.plot_sched)
import matplotlib.pyplot as plt
import numpy as np
from fastai.callback.core import Callback
from fastai.torch_core import params


def two_groups(model):
    """Splitter: the first and the last Linear layer of an MLP, as two param groups."""
    return [params(model[0]), params(model[2])]


class HyperTrace(Callback):
    """Every param group's ``lr`` and ``mom`` at each optimizer step."""

    order = 100

    def before_fit(self):
        self.trace = {"lr": [], "mom": []}

    def before_step(self):
        for key, values in self.trace.items():
            values.append([h[key] for h in self.learn.opt.hypers])


def assert_plot_sched_draws_the_record(learn) -> None:
    """``learn.recorder.plot_sched()`` draws exactly the recorded ``lr`` and ``mom``."""
    hps = learn.recorder.hps
    plt.close("all")
    learn.recorder.plot_sched()
    axes = plt.gcf().axes
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), hps["lr"])
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), hps["mom"])
    plt.close("all")
