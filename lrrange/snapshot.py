"""Capture and restore everything a range test disturbs.

A ``Snapshot`` is a list of parts, each with ``restore()``. Restoring copies
values back into the live tensors (parameters keep their identity, so the
optimizer's references stay valid) and hands the saved optimizer state back
without another copy, so the extra memory is one copy of the state.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import torch
from fastai.optimizer import OptimWrapper
from torch import nn


def clone_tree(obj: Any) -> Any:
    """Deep copy of nested dicts/lists/tuples in which tensors are detached clones."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: clone_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone_tree(v) for v in obj) if type(obj) in (list, tuple) else [
            clone_tree(v) for v in obj
        ]
    return copy.copy(obj)


class ModelState:
    """Parameters, buffers, gradients and the train/eval flag of every module."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.tensors = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
        self.grads = [(p, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()]
        self.modes = [(m, m.training) for m in model.modules()]

    def restore(self) -> None:
        live = self.model.state_dict(keep_vars=True)
        with torch.no_grad():
            for k, saved in self.tensors.items():
                live[k].copy_(saved)
        for p, g in self.grads:
            if g is None:
                p.grad = None
            elif p.grad is None or p.grad.shape != g.shape:
                p.grad = g
            else:
                p.grad.copy_(g)
        for m, mode in self.modes:
            m.training = mode


class OptimizerState:
    """A fastai ``Optimizer``'s per-parameter state and hyper-parameters, or a
    wrapped PyTorch optimizer's ``state_dict``."""

    def __init__(self, opt):
        self.opt = opt
        self.torch_opt = opt.opt if isinstance(opt, OptimWrapper) else None
        if self.torch_opt is not None:
            self.saved = clone_tree(self.torch_opt.state_dict())
        else:
            self.state = {p: clone_tree(s) for p, s in opt.state.items()}
            self.hypers = [dict(h) for h in opt.hypers]

    def restore(self) -> None:
        if self.torch_opt is not None:
            self.torch_opt.load_state_dict(self.saved)
            return
        self.opt.state.clear()
        self.opt.state.update(self.state)
        for live, saved in zip(self.opt.hypers, self.hypers, strict=True):
            live.clear()
            live.update(saved)


class RNGState:
    """Python's, NumPy's, torch's CPU and every initialised CUDA device's generator."""

    def __init__(self):
        self.py = random.getstate()
        self.np = np.random.get_state()
        self.torch = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    def restore(self) -> None:
        random.setstate(self.py)
        np.random.set_state(self.np)
        torch.set_rng_state(self.torch)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


class Snapshot:
    """Everything a range test may change on a learner, restorable once."""

    def __init__(self, learn):
        self.parts: list[Any] = [RNGState(), ModelState(learn.model)]
        if learn.opt is not None:
            self.parts.append(OptimizerState(learn.opt))

    def restore(self) -> None:
        for part in self.parts:
            part.restore()
        self.parts = []
