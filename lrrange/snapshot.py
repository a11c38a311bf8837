"""Capture and restore everything a range test disturbs.

A ``Snapshot`` is a list of parts, each with ``restore()``. The tensors (model
parameters and buffers, gradients, optimizer state) live in a ``TensorStore``:
clones in host or device memory (``"memory"``, the default, no files), or one
temporary file in ``tempfile.gettempdir()`` (``"disk"``, for models too large
to copy) that is removed when the snapshot is restored or closed. Restoring
copies values back into the live tensors, so parameters keep their identity
and the optimizer's references stay valid. Everything else (RNGs, the
DataLoaders' shuffling generators, the loop counters, the recorder's history,
the callbacks list) is small and kept in memory.
"""

from __future__ import annotations

import copy
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastai.optimizer import OptimWrapper
from fastcore.foundation import L
from torch import nn

SNAPSHOT_MODES = ("memory", "disk")
FILE_PREFIX = "lrrange-"

# What ``fit`` and fastai's default callbacks set on the learner itself while training.
LOOP_ATTRS = (
    "n_epoch", "epoch", "iter", "n_iter", "train_iter", "pct_train", "training",
    "final_record", "smooth_loss", "loss", "loss_grad", "pred", "xb", "yb", "dl",
)  # fmt: skip


def check_snapshot_mode(mode: Any) -> None:
    """Reject a snapshot mode other than ``"memory"`` or ``"disk"``."""
    if not isinstance(mode, str) or mode not in SNAPSHOT_MODES:
        raise ValueError(f"snapshot must be one of {SNAPSHOT_MODES}, got {mode!r}")


def clone_tree(obj: Any) -> Any:
    """Deep copy of nested dicts/lists/tuples in which tensors are detached clones."""
    return map_tensors(obj, lambda t: t.detach().clone())


def map_tensors(obj: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """Copy of nested dicts/lists/tuples with every tensor replaced by ``fn(tensor)``.

    Other leaves are shallow-copied; a list or tuple subclass becomes a plain list.
    """
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [map_tensors(v, fn) for v in obj]
        return type(obj)(items) if type(obj) in (list, tuple) else items
    return copy.copy(obj)


class _Slot(int):
    """Where a tensor stood in a tree whose tensors went to a ``TensorStore``."""


class TensorStore:
    """Copies of a flat list of tensors, in memory or in one temporary file.

    ``"disk"`` writes the live tensors straight to a file made by
    ``tempfile.mkstemp`` (unique, private, in the directory ``TMPDIR`` selects),
    so the snapshot costs no host memory; ``close()`` removes the file.
    """

    def __init__(self, tensors: list[torch.Tensor], mode: str = "memory"):
        check_snapshot_mode(mode)
        self.mode = mode
        self.path: Path | None = None
        if mode == "memory":
            self.tensors: list[torch.Tensor] | None = [t.detach().clone() for t in tensors]
            return
        self.tensors = None
        fd, name = tempfile.mkstemp(prefix=FILE_PREFIX, suffix=".pt")
        self.path = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save([t.detach() for t in tensors], f)
        except BaseException:
            self.close()
            raise

    def load(self) -> list[torch.Tensor]:
        """The saved tensors; from disk memory-mapped, valid while the caller holds them."""
        if self.tensors is not None:
            return self.tensors
        if self.path is None:
            raise RuntimeError("this snapshot was already restored or closed")
        return torch.load(self.path, weights_only=True, mmap=True)

    def close(self) -> None:
        """Drop the copies; remove the file (idempotent)."""
        self.tensors = None
        path, self.path = self.path, None
        if path is not None:
            path.unlink(missing_ok=True)


def _take(obj: Any, out: list[torch.Tensor]) -> Any:
    """``obj`` with every tensor moved to ``out`` and replaced by its ``_Slot``."""

    def slot(t: torch.Tensor) -> _Slot:
        out.append(t)
        return _Slot(len(out) - 1)

    return map_tensors(obj, slot)


def _put(obj: Any, tensors: list[torch.Tensor], fresh: bool) -> Any:
    """Inverse of ``_take``; ``fresh`` clones each tensor (needed when they are file-backed)."""
    if isinstance(obj, _Slot):
        t = tensors[obj]
        return t.clone() if fresh else t
    if isinstance(obj, dict):
        return {k: _put(v, tensors, fresh) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_put(v, tensors, fresh) for v in obj]
        return type(obj)(items) if type(obj) in (list, tuple) else items
    return obj


def _put_into(obj: Any, live: Any, tensors: list[torch.Tensor]) -> Any:
    """Like ``_put(..., fresh=True)``, but copies into ``live``'s tensor at the same place when it
    has the same shape and dtype, so restoring from a file allocates nothing new."""
    if isinstance(obj, _Slot):
        t = tensors[obj]
        if isinstance(live, torch.Tensor) and live.shape == t.shape and live.dtype == t.dtype:
            with torch.no_grad():
                live.copy_(t)
            return live
        return t.clone()
    if isinstance(obj, dict):
        live_d = live if isinstance(live, dict) else {}
        return {k: _put_into(v, live_d.get(k), tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        live_l = live if isinstance(live, (list, tuple)) and len(live) == len(obj) else [None] * len(obj)
        items = [_put_into(v, w, tensors) for v, w in zip(obj, live_l, strict=True)]
        return type(obj)(items) if type(obj) in (list, tuple) else items
    return obj


def _live_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict's live tensors plus the non-persistent buffers it leaves out."""
    live = model.state_dict(keep_vars=True)
    for name, buf in model.named_buffers():
        live.setdefault(name, buf)
    return live


class ModelState:
    """Parameters, buffers, gradients, ``requires_grad`` and the train/eval flag of every module."""

    def __init__(self, model: nn.Module, out: list[torch.Tensor]):
        self.model = model
        live = _live_tensors(model)
        self.keys = list(live)
        self.first = len(out)
        out.extend(live.values())
        self.params = list(model.parameters())
        self.flags = [p.requires_grad for p in self.params]
        self.grads = [None if p.grad is None else _take(p.grad, out) for p in self.params]
        self.modes = [(m, m.training) for m in model.modules()]

    def restore(self, tensors: list[torch.Tensor], fresh: bool) -> None:
        live = _live_tensors(self.model)
        with torch.no_grad():
            for i, k in enumerate(self.keys):
                live[k].copy_(tensors[self.first + i])
        for p, flag, g in zip(self.params, self.flags, self.grads, strict=True):
            p.requires_grad_(flag)
            if g is None:
                p.grad = None
            elif p.grad is None or p.grad.shape != tensors[g].shape:
                p.grad = _put(g, tensors, fresh=True)
            else:
                p.grad.copy_(tensors[g])
        for m, mode in self.modes:
            m.training = mode


class OptimizerState:
    """A fastai ``Optimizer``'s per-parameter state and hyper-parameters, or a
    wrapped PyTorch optimizer's ``state_dict``."""

    def __init__(self, opt, out: list[torch.Tensor]):
        self.opt = opt
        self.torch_opt = opt.opt if isinstance(opt, OptimWrapper) else None
        if self.torch_opt is not None:
            self.saved = _take(self.torch_opt.state_dict(), out)
        else:
            self.state_obj = opt.state
            self.keys = list(opt.state)
            self.saved = _take([opt.state[p] for p in self.keys], out)
            self.hypers = [dict(h) for h in opt.hypers]

    def restore(self, tensors: list[torch.Tensor], fresh: bool) -> None:
        if self.torch_opt is not None:
            self.torch_opt.load_state_dict(_put(self.saved, tensors, fresh))
            return
        if fresh:  # file-backed or kept for another run: copy into the live state where it fits
            live = [self.opt.state.get(p) for p in self.keys]
            state = _put_into(self.saved, live, tensors)
        else:
            state = _put(self.saved, tensors, fresh)
        self.opt.state = self.state_obj
        self.opt.state.clear()
        self.opt.state.update(zip(self.keys, state, strict=True))
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


def _loaders(dls) -> list:
    loaders = getattr(dls, "loaders", None)
    if loaders is None:
        loaders = [getattr(dls, name, None) for name in ("train", "valid")]
    return [dl for dl in loaders if dl is not None]


class DataOrderState:
    """The shuffling state of every DataLoader in ``learn.dls``.

    A fastai ``DataLoader`` replaces its ``random.Random`` (``dl.rng``) by one
    seeded from it at the start of each pass (``randomize()``); a PyTorch
    ``DataLoader`` may own a ``torch.Generator``. Both are put back, so the
    next epoch draws the batch order it would have drawn without the test.
    """

    def __init__(self, dls):
        self.rngs = []
        self.gens = []
        for dl in _loaders(dls):
            rng = getattr(dl, "rng", None)
            if isinstance(rng, random.Random):
                self.rngs.append((dl, rng, rng.getstate()))
            for owner in (dl, getattr(dl, "sampler", None)):
                gen = getattr(owner, "generator", None)
                if isinstance(gen, torch.Generator):
                    self.gens.append((gen, gen.get_state()))

    def restore(self) -> None:
        for dl, rng, state in self.rngs:
            rng.setstate(state)
            dl.rng = rng
        for gen, state in self.gens:
            gen.set_state(state)


def _copy_value(v: Any) -> Any:
    """Tensors cloned, containers shallow-copied, other objects kept by reference."""
    if isinstance(v, torch.Tensor):
        return v.detach().clone()
    if isinstance(v, (list, dict, set, L)):
        return copy.copy(v)
    return v


_MISSING = object()


class AttrState:
    """Some (``names``) or all instance attributes of one object; restoring also removes new ones."""

    def __init__(self, obj: Any, names: tuple[str, ...] | None = None, skip: tuple[str, ...] = ()):
        self.obj, self.skip = obj, skip
        live = vars(obj)
        self.names = tuple(live) if names is None else names
        self.all = names is None
        self.saved = {k: _copy_value(live.get(k, _MISSING)) for k in self.names if k not in skip}

    def restore(self) -> None:
        live = vars(self.obj)
        if self.all:
            for k in [k for k in live if k not in self.saved and k not in self.skip]:
                del live[k]
        for k, v in self.saved.items():
            if v is _MISSING:
                live.pop(k, None)
            else:
                live[k] = v


class CallbackListState:
    """Which callbacks are attached, in which order (the order breaks ties between equal ``order``)."""

    def __init__(self, learn):
        self.learn = learn
        self.cbs = list(learn.cbs)

    def restore(self) -> None:
        learn = self.learn
        for cb in [cb for cb in learn.cbs if cb not in self.cbs]:
            learn.remove_cb(cb)
        for cb in self.cbs:
            if cb not in learn.cbs:
                cb.learn = learn
                setattr(learn, cb.name, cb)
        learn.cbs.items[:] = self.cbs


def loop_state(learn) -> AttrState:
    """The learner's training-loop attributes (``LOOP_ATTRS``), best taken before ``fit`` begins."""
    return AttrState(learn, LOOP_ATTRS)


def _recorder_parts(learn) -> Iterator[AttrState]:
    recorder = vars(learn).get("recorder")
    if recorder is None:
        return
    yield AttrState(recorder, skip=("learn",))
    for metric in (getattr(recorder, "smooth_loss", None), getattr(recorder, "loss", None)):
        if metric is not None and hasattr(metric, "__dict__"):
            yield AttrState(metric)
    for metric in getattr(learn, "metrics", None) or ():
        if hasattr(metric, "__dict__"):
            yield AttrState(metric)


class Snapshot:
    """Everything a range test may change on a learner, restorable once.

    ``mode="memory"`` keeps one copy of the model's and optimizer's tensors in
    memory; ``mode="disk"`` writes them to one temporary file instead (see
    ``TensorStore``), removed by ``restore()`` or ``close()``. ``loop`` is a
    ``loop_state(learn)`` taken earlier, at the start of ``fit``.
    """

    def __init__(self, learn, mode: str = "memory", loop: AttrState | None = None):
        check_snapshot_mode(mode)
        tensors: list[torch.Tensor] = []
        self.tensor_parts: list[Any] = [ModelState(learn.model, tensors)]
        if learn.opt is not None:
            self.tensor_parts.append(OptimizerState(learn.opt, tensors))
        self.rng = RNGState()
        self.parts: list[Any] = [
            self.rng,
            DataOrderState(learn.dls),
            loop_state(learn) if loop is None else loop,
            *_recorder_parts(learn),
            CallbackListState(learn),
        ]
        self.store = TensorStore(tensors, mode)

    @property
    def path(self) -> Path | None:
        """The temporary file of a ``"disk"`` snapshot while it exists, else ``None``."""
        return self.store.path

    def rewind(self) -> None:
        """Put the tensors and RNGs back but keep the snapshot, for the next of several runs in one fit.

        The training loop's own state (counters, recorder, callbacks) is left
        alone: the fit goes on.
        """
        tensors = self.store.load()
        for part in self.tensor_parts:
            part.restore(tensors, fresh=True)
        del tensors
        self.rng.restore()

    def restore(self) -> None:
        """Put everything back, then drop the copies and remove the file, also if a part fails."""
        try:
            tensors = self.store.load()
            fresh = self.store.mode == "disk"
            errors = []
            for part in self.tensor_parts:
                try:
                    part.restore(tensors, fresh)
                except Exception as e:
                    errors.append(e)
            del tensors
            for part in self.parts:
                try:
                    part.restore()
                except Exception as e:
                    errors.append(e)
            if errors:
                raise errors[0]
        finally:
            self.close()

    def close(self) -> None:
        """Forget the saved state without restoring it; removes a ``"disk"`` snapshot's file."""
        self.tensor_parts, self.parts = [], []
        self.store.close()
