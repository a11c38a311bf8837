"""Shared fixtures: small, real fastai Learners on data that ships with scikit-learn."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from fastai.optimizer import Adam
from fastai.torch_core import set_seed
from sklearn.datasets import load_digits
from torch import nn

import lrrange  # noqa: F401  (patches Learner.range_test)

# The models here are tiny: one thread is faster than two and keeps 2-core CI machines responsive.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits_arrays():
    """Standardised digits (constant pixels guarded), shuffled once, as float32/int64 tensors."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    mean, std = x.mean(0), x.std(0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def digits_learner(
    arrays,
    seed: int = 0,
    n_train: int = 1200,
    n_valid: int = 300,
    bs: int = 64,
    hidden: int = 32,
    opt_func=Adam,
    model: nn.Module | None = None,
    **kwargs,
) -> Learner:
    """A fresh Learner (MLP on digits); the same seed gives the same weights and batch order."""
    x, y = arrays
    set_seed(seed, reproducible=True)
    train = list(zip(x[:n_train], y[:n_train], strict=True))
    valid = list(zip(x[n_train : n_train + n_valid], y[n_train : n_train + n_valid], strict=True))
    dls = DataLoaders.from_dsets(train, valid, bs=bs, num_workers=0)
    if model is None:
        model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    return Learner(
        dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy, opt_func=opt_func, **kwargs
    )


@pytest.fixture
def make_learner(digits_arrays):
    """Factory: ``make_learner(seed=0, n_train=1200, bs=64, hidden=32, opt_func=Adam, model=None)``."""

    def make(**kwargs) -> Learner:
        return digits_learner(digits_arrays, **kwargs)

    return make


@pytest.fixture
def quiet_learner(make_learner):
    """Factory of quiet learners (no bar, no log): MLP on digits, 5 batches an epoch, two param groups."""
    from support import two_groups

    def make(**kwargs) -> Learner:
        learn = make_learner(n_train=320, hidden=16, splitter=two_groups, **kwargs)
        learn.no_bar().__enter__()
        learn.no_logging().__enter__()
        return learn

    return make
