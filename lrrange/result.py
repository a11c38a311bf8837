"""RangeResult: the curve a range test measured, its suggestions, plot and export."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import suggest

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STOP_REASONS = ("completed", "diverged", "nonfinite", "interrupted")
CURVES = ("train", "valid")
_FORMAT = "lrrange.RangeResult/1"


@dataclass(eq=False)
class RangeResult:
    """What one LR range test measured.

    ``lrs``, ``losses`` and ``smoothed`` hold one entry per finite step, in the
    order run; ``lrs`` is the last param group's LR. ``stop_reason`` says why the
    test ended. ``suggestion`` is ``suggestions[suggest.DEFAULT]``; every rule's
    pick lies inside the tested LRs (NaN only when no step was recorded).

    In validation-loss mode ``val_lrs`` / ``val_losses`` hold the loss on fixed
    validation batches after every ``valid_every``-th step (empty otherwise);
    ``suggest_from="valid"`` makes ``suggestions`` and ``bounds`` read that
    curve instead of the smoothed training loss.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stop_reason: str = "completed"
    meta: dict[str, Any] = field(default_factory=dict)
    val_lrs: np.ndarray = field(default_factory=lambda: np.empty(0))
    val_losses: np.ndarray = field(default_factory=lambda: np.empty(0))
    suggest_from: str = "train"

    def __post_init__(self):
        self.lrs = np.asarray(self.lrs, dtype=float)
        self.losses = np.asarray(self.losses, dtype=float)
        self.smoothed = np.asarray(self.smoothed, dtype=float)
        self.val_lrs = np.asarray(self.val_lrs, dtype=float)
        self.val_losses = np.asarray(self.val_losses, dtype=float)
        if self.val_lrs.shape != self.val_losses.shape or self.val_lrs.ndim != 1:
            raise ValueError(
                "val_lrs and val_losses must be 1-d arrays of one length, got "
                f"{self.val_lrs.shape} and {self.val_losses.shape}"
            )
        if self.suggest_from not in CURVES:
            raise ValueError(f"suggest_from must be one of {CURVES}, got {self.suggest_from!r}")
        if not (self.lrs.shape == self.losses.shape == self.smoothed.shape) or self.lrs.ndim != 1:
            raise ValueError(
                "lrs, losses and smoothed must be 1-d arrays of one length, got "
                f"{self.lrs.shape}, {self.losses.shape}, {self.smoothed.shape}"
            )
        if self.stop_reason not in STOP_REASONS:
            raise ValueError(f"stop_reason must be one of {STOP_REASONS}, got {self.stop_reason!r}")

    def __len__(self) -> int:
        return len(self.lrs)

    def __repr__(self) -> str:
        return (
            f"RangeResult({len(self)} steps, lr {self._lr_span()}, stop_reason={self.stop_reason!r}, "
            f"suggestion={self.suggestion:.3g})"
        )

    def _lr_span(self) -> str:
        return f"{self.lrs[0]:.3g}..{self.lrs[-1]:.3g}" if len(self) else "none"

    def _curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The (lrs, losses) the suggestions read: smoothed training or validation loss."""
        if self.suggest_from == "valid":
            return self.val_lrs, self.val_losses
        return self.lrs, self.smoothed

    @cached_property
    def suggestions(self) -> dict[str, float]:
        """Every suggestion rule's pick, by name (see ``lrrange.suggest``).

        fastai's rules read the window ``lr_find`` reads, which depends on the
        number of steps asked for (``meta["num_it"]``), not only on those run.
        """
        num_it = None if self.suggest_from == "valid" else self.meta.get("num_it")
        return suggest.suggest_all(*self._curve(), num_it=num_it)

    @cached_property
    def val_suggestions(self) -> dict[str, float]:
        """Every rule's pick on the validation curve (NaN where none was recorded)."""
        return suggest.suggest_all(self.val_lrs, self.val_losses)

    @property
    def suggestion(self) -> float:
        """The LR to hand to one-cycle: the pick of ``suggest.DEFAULT``."""
        return self.suggestions[suggest.DEFAULT]

    @cached_property
    def bounds(self) -> tuple[float, float]:
        """``(base_lr, max_lr)`` for a cyclical schedule (rule in ``suggest.bounds``)."""
        return suggest.bounds(*self._curve())

    def to_frame(self) -> pd.DataFrame:
        """One row per step: ``lr``, ``loss``, ``smoothed``, indexed by step."""
        frame = pd.DataFrame({"lr": self.lrs, "loss": self.losses, "smoothed": self.smoothed})
        frame.index.name = "step"
        return frame

    def plot(self, ax: Axes | None = None, suggestions: bool = True) -> Figure:
        """Loss against LR on a log axis: raw loss faint, smoothed bold, picks marked.

        The validation loss, when recorded, is drawn as dots on a line.

        Draws on ``ax`` when given, else on a new figure; returns the Figure.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6.4, 4.0))
        else:
            fig = ax.figure
        ax.plot(self.lrs, self.losses, color="C0", alpha=0.3, lw=1, label="loss")
        ax.plot(self.lrs, self.smoothed, color="C0", lw=2, label="smoothed loss")
        if len(self.val_lrs):
            ax.plot(self.val_lrs, self.val_losses, color="k", marker=".", lw=1, label="validation loss")
        curve_lrs, curve = self._curve()
        if suggestions and len(curve_lrs):
            for k, (name, lr) in enumerate(self.suggestions.items()):
                if np.isfinite(lr):
                    y = float(np.interp(np.log(lr), np.log(curve_lrs), curve))
                    default = name == suggest.DEFAULT
                    ax.plot(
                        [lr], [y], marker="o" if default else "x", ms=9 if default else 7,
                        ls="none", color=f"C{k + 1}",
                        label=f"{name}{' (suggestion)' if default else ''}: {lr:.2e}",
                    )
        if len(self):
            val = self.val_losses[np.isfinite(self.val_losses)]
            lo = float(min(self.losses.min(), self.smoothed.min(), val.min() if len(val) else np.inf))
            hi = float(self.smoothed.max())
            pad = 0.05 * (hi - lo) or 0.05 * abs(hi) or 0.05
            ax.set_ylim(lo - pad, hi + pad)  # the raw divergence spike would flatten the curve
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title(f"LR range test ({len(self)} steps, {self.stop_reason})")
        ax.legend(fontsize="small")
        return fig

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "lrs": self.lrs.tolist(),
            "losses": self.losses.tolist(),
            "smoothed": self.smoothed.tolist(),
            "stop_reason": self.stop_reason,
            "meta": self.meta,
            "val_lrs": self.val_lrs.tolist(),
            "val_losses": self.val_losses.tolist(),
            "suggest_from": self.suggest_from,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RangeResult:
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a saved RangeResult (format {data.get('format')!r})")
        return cls(
            data["lrs"], data["losses"], data["smoothed"], data["stop_reason"], data["meta"],
            data.get("val_lrs", []), data.get("val_losses", []), data.get("suggest_from", "train"),
        )

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON; ``RangeResult.load`` gives back equal arrays, bit for bit."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> RangeResult:
        """Read a result written by ``save``."""
        return cls.from_dict(json.loads(Path(path).read_text()))
