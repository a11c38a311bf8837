"""Helpers shared by the schedule tests (imported by test modules; not collected)."""

from __future__ import annotations

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
