"""Write the teaching notebooks in ``nbs/`` from the cells below: they are generated, not hand-edited.

    .venv/bin/python nbs/make_notebooks.py             # write 01_quickstart, 02_intuition, 03_cyclical
    .venv/bin/python nbs/make_notebooks.py --execute   # ... run them, keep the outputs, and save the
                                                       # README's figure to docs/range_test_repeats.png

Every notebook runs offline on scikit-learn's bundled digits; ``tests/test_notebooks.py``
executes them.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
README_FIGURE = HERE.parent / "docs" / "range_test_repeats.png"
README_FIGURE_TAG = "readme-figure"

SETUP = '''\
import time

{plotting}import numpy as np
{pandas}import torch
from fastai.callback.progress import ProgressCallback
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from sklearn.datasets import load_digits
from torch import nn

from lrrange import {names}

started = time.perf_counter()
torch.set_num_threads(1)  # a model this small runs fastest on one thread

# 1,797 8x8 digit images that ship with scikit-learn: nothing downloads.
x, y = load_digits(return_X_y=True)
order = np.random.default_rng(0).permutation(len(x))
x, y = x[order], y[order]
x = (x - x[:1200].mean(0)) / np.where(x[:1200].std(0) > 0, x[:1200].std(0), 1.0)
xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
train = list(zip(xt[:1200], yt[:1200], strict=True))
valid = list(zip(xt[1200:], yt[1200:], strict=True))


def make_learner(seed=0, bs=64, hidden=64):
    """A fresh Learner: an MLP on digits. The same seed gives the same weights and batch order."""
    set_seed(seed, reproducible=True)
    dls = DataLoaders.from_dsets(train, valid, bs=bs, num_workers=0)
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, 10))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy)
    learn.remove_cb(ProgressCallback)  # no progress bars in these notebooks
    return learn
'''

FOOTER = 'print(f"notebook ran in {time.perf_counter() - started:.1f} s")'


def setup(names: str, plots: bool = True) -> str:
    """The first code cell: imports (``names`` from lrrange), the digits data and ``make_learner``."""
    return SETUP.format(
        names=names,
        plotting="import matplotlib.pyplot as plt\n" if plots else "",
        pandas="import pandas as pd\n" if plots else "",
    )


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, tags: tuple[str, ...] = ()):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def quickstart() -> list:
    return [
        md("""
# Quickstart: find a learning rate, then train with one-cycle

One callback, one short `fit`: `LRRange` runs Leslie Smith's learning-rate range test, leaves
the learner as it found it, and hands you a plot and a learning rate. `OneCycle` then trains
with that rate. The data are scikit-learn's bundled digits, so this runs offline in seconds.
"""),
        code(setup("LRRange, OneCycle", plots=False)),
        md("""
## 1. Add the callback and fit

`learn.fit(1)` with `LRRange` attached runs the test instead of an epoch: the LR grows
geometrically from `1e-7` to `10` over at most 100 steps, each step's loss is recorded with
its bias-corrected moving average, and the fit is cancelled once the smoothed loss exceeds 4x
its best (or after 100 steps).
"""),
        code("""
learn = make_learner()
weights_before = [p.detach().clone() for p in learn.model.parameters()]

learn.add_cb(LRRange())
with learn.no_logging():  # the test spans several epochs; this hides fastai's per-epoch table
    learn.fit(1)
res = learn.range_result
print(res)
res.plot();
"""),
        md("""
The faint line is the loss of each batch, the bold one its smoothed version; the markers are
the picks of the suggestion rules (`res.suggestions`), the circled one is `res.suggestion`.
`res.stop_reason` says why the test ended. The whole curve is a table:
"""),
        code("""
print("stopped:", res.stop_reason, "| steps:", len(res))
print({name: f"{lr:.2e}" for name, lr in res.suggestions.items()})
res.to_frame().iloc[::10]
"""),
        md("""
## 2. The learner is as it was

The test trained the model for up to 100 steps, yet the weights are restored (as are the
optimizer, the random generators and the batch order), and the callback detached itself:
"""),
        code("""
same = all(torch.equal(a, b) for a, b in zip(weights_before, learn.model.parameters(), strict=True))
print("weights identical after the test:", same)
print("LRRange still attached:", any(isinstance(cb, LRRange) for cb in learn.cbs))
"""),
        md("""
## 3. Train with one-cycle at the suggestion

`OneCycle()` without `lr_max` takes `learn.range_result.suggestion`; its schedule is fastai's
`fit_one_cycle`: the LR warms up from `lr_max/25` to `lr_max` over the first quarter, then
anneals, while the momentum moves the other way.
"""),
        code("""
learn.fit(5, cbs=OneCycle())
val_loss, val_acc = learn.validate()
print(f"one-cycle, 5 epochs, lr_max={res.suggestion:.2e}: validation loss {val_loss:.3f}, "
      f"accuracy {val_acc:.3f}")
learn.recorder.plot_sched()
"""),
        md("""
For comparison, the same 5 epochs at fastai's default fixed LR (`1e-3`), from the same weights:
"""),
        code("""
baseline = make_learner()
baseline.fit(5, 1e-3)
base_loss, base_acc = baseline.validate()
print(f"fixed lr 1e-3, 5 epochs: validation loss {base_loss:.3f}, accuracy {base_acc:.3f}")
"""),
        md("""
## 4. The same test in one call

`learn.range_test()` is the one-call form (like fastai's `lr_find`); it takes every `LRRange`
argument and returns the `RangeResult`. `repeats=k` runs k tests with different batch orders
and reports their spread — see `02_intuition.ipynb` for what that spread says.
"""),
        code("""
res2 = make_learner().range_test(num_it=100, show_plot=False)
print(f"suggestion {res2.suggestion:.2e}, same as above: {res2.suggestion == res.suggestion}")
"""),
        code(FOOTER),
    ]


def intuition() -> list:
    return [
        md("""
# What the range test can and cannot tell you

Users of the LR range test ask: is it an unbiased estimate of how the LR behaves over a whole
training run? Does the random starting point matter? The batch order? What does a plateau or a
local minimum do? Why pick an LR *below* the minimum of the curve? Each section below answers
one question with a measurement on the same small task (an MLP on scikit-learn's digits), and
every number comes from a cell you can rerun.
"""),
        code(setup("OneCycle")),
        md("""
## 1. What the bias-corrected moving average does

The raw per-batch loss is noisy, so the test reads an exponential moving average,
`avg_t = beta*avg_{t-1} + (1-beta)*loss_t` with `beta = 0.98` and `avg_0 = 0`. Without a
correction it starts near zero (step 1 gives `0.02 * loss`) and is still low after many steps;
dividing by `1 - beta**t` removes that bias from step 1 on. Below, one test's raw loss, its
corrected average (what `LRRange` records) and the uncorrected one:
"""),
        code("""
res = make_learner().range_test(num_it=100, show_plot=False)
beta, raw = res.meta["beta"], res.losses
steps = np.arange(1, len(raw) + 1)
uncorrected = np.zeros_like(raw)
avg = 0.0
for i, loss in enumerate(raw):
    avg = beta * avg + (1 - beta) * loss
    uncorrected[i] = avg
corrected = uncorrected / (1 - beta**steps)
print("LRRange's smoothed curve is the corrected average:", np.allclose(corrected, res.smoothed))

fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
n = 40
a.plot(steps[:n], raw[:n], ".", color="0.6", label="raw loss")
a.plot(steps[:n], corrected[:n], lw=2, label="bias-corrected EMA (recorded)")
a.plot(steps[:n], uncorrected[:n], lw=2, ls="--", label="uncorrected EMA")
a.set_xlabel("step")
a.set_ylabel("loss")
a.set_title(f"first {n} steps")
a.legend()
b.plot(res.lrs, raw, color="0.6", lw=0.8, label="raw loss")
b.plot(res.lrs, corrected, lw=2, label="bias-corrected EMA")
b.plot(res.lrs, uncorrected, lw=2, ls="--", label="uncorrected EMA")
b.set_xscale("log")
b.set_xlabel("learning rate")
b.set_title("the whole test")
b.legend()
plt.tight_layout()


def first_divergence(curve, factor=4.0):
    best = np.inf
    for i, v in enumerate(curve):
        if v > factor * best:
            return i + 1
        best = min(best, v)
    return None


print(f"step 1: raw {raw[0]:.3f}, corrected {corrected[0]:.3f}, uncorrected {uncorrected[0]:.3f}")
for t in (1, 10, 50, 100):
    print(f"step {t:>3}: uncorrected / corrected = {uncorrected[t - 1] / corrected[t - 1]:.2f}")
print("the stop rule 'smoothed > 4 x best' fires at step",
      first_divergence(uncorrected), "on the uncorrected average and at step",
      first_divergence(corrected), "on the corrected one (None: never)")
"""),
        md("""
The uncorrected average rises from zero during the first steps (the printed ratios: it is still
below the corrected value after the whole 100-step test), so "4x the best value so far" is
reached while nothing diverges: a test reading it stops within the first few steps unless it
skips them. The corrected average tracks the raw loss from the first step.
"""),
        md("""
## 2. How much do the batch order and the starting point move the curve?

`learn.range_test(repeats=k)` runs k tests from the same weights, each with its own seeded
batch order, and reads them on a common LR grid: median, 10-90% band, each run's pick, the
spread of the picks in decades and a robust pick (the lower quartile of the picks, in log
space). `reinit=True` also starts each run from fresh random weights.
"""),
        code("""
orders = make_learner().range_test(repeats=5, num_it=80, show_plot=False)
inits = make_learner().range_test(repeats=5, num_it=80, reinit=True, show_plot=False)
fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
orders.plot(ax=a)
inits.plot(ax=b)
plt.tight_layout()
print(f"one grid step is {np.log10(orders.lrs[1] / orders.lrs[0]):.2f} decades")
pd.DataFrame({
    "batch orders": [*(f"{lr:.2e}" for lr in orders.run_suggestions), f"{orders.spread:.2f}",
                     f"{orders.suggestion:.2e}"],
    "fresh initialisations": [*(f"{lr:.2e}" for lr in inits.run_suggestions), f"{inits.spread:.2f}",
                              f"{inits.suggestion:.2e}"],
}, index=[*(f"run {i} pick" for i in range(5)), "spread (decades)", "robust pick"])
""", tags=(README_FIGURE_TAG,)),
        md("""
The shaded band is where the middle 80% of the runs lie at each LR; the table gives each run's
own suggestion (`res.suggestion`, the `blend` rule) and how many decades separate the
extremes. A single test is one draw from this spread. How far a pick moves depends on the
rule that reads the curve: the same runs, read by every rule:
"""),
        code("""
def rule_spreads(rep):  # decades between each rule's highest and lowest pick across the runs
    picks = pd.DataFrame([r.suggestions for r in rep.runs])
    return np.log10(picks.max() / picks.min())


spreads = pd.DataFrame({"batch orders": rule_spreads(orders),
                        "fresh initialisations": rule_spreads(inits)})
spreads.rename_axis("spread of the picks (decades)")
"""),
        md("""
Rules that read one point of the curve (its minimum, its steepest slope) move with the batch
noise near that point; a rule that reads a level of the whole fall moves less. The robust pick
of a repeated test (`orders.suggestion`) is less exposed to a lucky or unlucky draw either way.

Is the curve batch-*size* dependent too? The same test with three batch sizes:
"""),
        code("""
fig, ax = plt.subplots(figsize=(6.4, 4))
rows = []
for bs in (16, 64, 256):
    r = make_learner(bs=bs).range_test(num_it=80, show_plot=False)
    ax.plot(r.lrs, r.smoothed, lw=2, label=f"batch size {bs}")
    rows.append({"batch size": bs, "suggestion": r.suggestion,
                 "LR at the minimum": r.lrs[np.nanargmin(r.smoothed)], "stop": r.stop_reason})
ax.set_xscale("log")
ax.set_xlabel("learning rate")
ax.set_ylabel("smoothed loss")
ax.set_ylim(top=3.0)
ax.legend()
ax.set_title("one range test per batch size")
by_bs = pd.DataFrame(rows)
by_bs["decades from bs=64"] = np.log10(by_bs["suggestion"] / by_bs.loc[1, "suggestion"])
by_bs
"""),
        md("""
Each batch size gives its own curve: every test takes the same 80 steps, but a smaller batch
makes each step's loss and gradient noisier and sees fewer examples per LR. Compare the two LR
columns: how far the suggestion and the LR at the minimum move with the batch size is the batch
dependence of this test on this task.
A test measures the batch size it ran with; rerun it when you change the batch size.
"""),
        md("""
## 3. A plateau, and a test started in a minimum

The test reads the loss *while* the weights change, so it measures the LR together with the
state the model is in. Two starting states show this:

* a **plateau**: the same network with all weights scaled by 0.05, so that gradients are tiny
  and the loss stays flat until the LR is large enough to escape;
* a **minimum**: the network after 4 epochs of one-cycle training, already sitting in a basin.
"""),
        code("""
fresh = make_learner()
r_fresh = fresh.range_test(num_it=80, show_plot=False)

flat = make_learner()
with torch.no_grad():
    for p in flat.model.parameters():
        p.mul_(0.05)
r_flat = flat.range_test(num_it=80, show_plot=False)

trained = make_learner()
with trained.no_logging():
    trained.fit(4, cbs=OneCycle(lr_max=r_fresh.suggestion))
r_trained = trained.range_test(num_it=80, show_plot=False)

fig, ax = plt.subplots(figsize=(7, 4))
rows = []
for name, r in (("fresh init", r_fresh), ("plateau (weights x 0.05)", r_flat),
                ("after 4 epochs (in a minimum)", r_trained)):
    line, = ax.plot(r.lrs, r.smoothed, lw=2, label=name)
    ax.axvline(r.suggestion, color=line.get_color(), ls="--", lw=1)
    rows.append({"start": name, "suggestion": r.suggestion,
                 "decades from fresh": np.log10(r.suggestion / r_fresh.suggestion),
                 "loss at start": r.smoothed[0], "lowest smoothed loss": np.nanmin(r.smoothed)})
ax.set_xscale("log")
ax.set_xlabel("learning rate")
ax.set_ylabel("smoothed loss")
ax.set_ylim(0, 3.2)
ax.legend()
ax.set_title("same network, three starting states (dashed: picks)")
pd.DataFrame(rows)
"""),
        md("""
On the plateau the loss stays flat for longer before it falls, and the pick moves with the
start of the fall (the table's "decades from fresh"). From a minimum the curve starts low and
only shows where training is thrown out of the basin: there is no fall to read, and the pick
lands wherever the flat start happens to dip (the table shows how far from the fresh pick).
The test answers "which LR works from *here*", not "which LR is best for the whole run": run it
on the state you are about to train.
"""),
        md("""
## 4. Is the test an unbiased estimate of the whole training? Why pick below the minimum?

The honest way to know which LR is best is to train with each. Below, one-cycle training for
3 epochs at a grid of `lr_max` values (final validation loss), drawn over the range test of the
same starting weights, with three candidate picks marked: the LR at the minimum of the smoothed
curve, a tenth of it, and `res.suggestion`.
"""),
        code("""
def one_cycle_loss(lr_max, epochs=3):
    learn = make_learner()
    with learn.no_logging():
        learn.fit(epochs, cbs=OneCycle(lr_max=float(lr_max)))
    return learn.validate()


lr_at_min = float(res.lrs[np.nanargmin(res.smoothed)])
picks = {"at the minimum": lr_at_min, "minimum / 10": lr_at_min / 10, "suggestion": res.suggestion}
grid = np.logspace(-3.5, 0.5, 7)
grid_val = [one_cycle_loss(lr)[0] for lr in grid]
pick_val = {name: one_cycle_loss(lr) for name, lr in picks.items()}

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(res.lrs, res.smoothed, color="0.5", lw=1.5, label="range test: smoothed training loss")
ax.plot(grid, grid_val, "o-", color="C0", lw=2, label="one-cycle, 3 epochs: validation loss")
for k, (name, lr) in enumerate(picks.items()):
    ax.plot([lr], [pick_val[name][0]], marker="*", ms=14, ls="none", color=f"C{k + 1}",
            label=f"{name} ({lr:.1e})")
ax.set_xscale("log")
ax.set_ylim(0, 3.2)
ax.set_xlabel("learning rate (lr_max for one-cycle)")
ax.set_ylabel("loss")
ax.legend(fontsize="small")
ax.set_title("what the test reads vs what training at that LR gives")
best = grid[int(np.argmin(grid_val))]
print(f"best lr_max on the grid: {best:.1e}; the test's minimum is "
      f"{np.log10(lr_at_min / best):+.2f} decades from it")
pd.DataFrame({name: {"lr_max": lr, "validation loss": pick_val[name][0],
                     "accuracy": pick_val[name][1]} for name, lr in picks.items()}).T
"""),
        md("""
The range test's curve and the one-cycle outcome are different functions of the LR: the test
spends only a few steps at each LR, on weights trained by all the smaller LRs before it, and its
minimum sits where the loss is about to blow up within *those* few steps. Training for whole
epochs at that LR has to survive it for much longer, which is why the pick is taken below the
minimum; the table gives the validation loss and accuracy each candidate reached on this task.
"""),
        code(FOOTER),
    ]


def cyclical() -> list:
    return [
        md("""
# Cyclical learning rates and one-cycle, with bounds from a range test

Smith (2017) takes the bounds of a cyclical schedule from the range test: roughly, the base
where the loss starts to fall and the maximum where it stops falling. `res.bounds` gives
`(base_lr, max_lr)` by the rule in `lrrange.suggest.bounds`, `Cyclical` takes them by default,
and `OneCycle` takes `res.suggestion`. Here the schedules train the same network for the same
8 epochs from the same weights, on three batch orders each.
"""),
        code(setup("Cyclical, OneCycle")),
        code("""
learn = make_learner()
res = learn.range_test(num_it=100, show_plot=False)
base_lr, max_lr = res.bounds
ax = res.plot().axes[0]
ax.axvspan(base_lr, max_lr, color="C2", alpha=0.15, label="cyclical bounds")
ax.legend(fontsize="small")
print(f"bounds: base_lr={base_lr:.2e}, max_lr={max_lr:.2e}; one-cycle lr_max={res.suggestion:.2e}")
print("batches per epoch:", len(learn.dls.train))
"""),
        md("""
## Train with each schedule

Triangular cycles between the bounds with a constant amplitude; triangular2 halves the
amplitude every cycle; one-cycle warms up to `lr_max` once and anneals far below its start.
`Cyclical`'s default half cycle is two epochs, so 8 epochs hold two full cycles. A fixed LR at
the suggestion is the baseline. A small callback records the LR and momentum of every batch.
"""),
        code("""
from fastai.callback.core import Callback


class HyperTrace(Callback):
    order = 60  # after the schedulers have set this batch's values

    def before_fit(self):
        self.lr_trace, self.mom_trace = [], []

    def before_batch(self):
        if self.training:
            self.lr_trace.append(self.opt.hypers[-1]["lr"])
            self.mom_trace.append(self.opt.hypers[-1]["mom"])


EPOCHS, SEEDS = 8, (0, 1, 2)
schedules = {
    "triangular": lambda: [Cyclical(mode="triangular")],
    "triangular2": lambda: [Cyclical(mode="triangular2")],
    "one-cycle": lambda: [OneCycle()],
    "fixed LR": lambda: [],
}
runs = {name: [] for name in schedules}
for name, make_cbs in schedules.items():
    for seed in SEEDS:
        learn = make_learner(seed=seed)
        learn.range_result = res  # the bounds and suggestion measured above
        trace = HyperTrace()
        with learn.no_logging():
            learn.fit(EPOCHS, res.suggestion, cbs=[*make_cbs(), trace])
        runs[name].append({
            "lrs": trace.lr_trace, "moms": trace.mom_trace,
            "valid_loss": np.array([v[1] for v in learn.recorder.values]),
            "accuracy": np.array([v[2] for v in learn.recorder.values]),
        })

fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
epochs = np.arange(1, EPOCHS + 1)
for k, (name, rs) in enumerate(runs.items()):
    axes[0].plot(rs[0]["lrs"], color=f"C{k}", label=name)
    axes[1].plot(rs[0]["moms"], color=f"C{k}", label=name)
    losses = np.array([r["valid_loss"] for r in rs])
    axes[2].plot(epochs, np.median(losses, 0), "o-", color=f"C{k}", label=f"{name} (median)")
    axes[2].fill_between(epochs, losses.min(0), losses.max(0), color=f"C{k}", alpha=0.15)
axes[0].set_yscale("log")
axes[0].set_title("LR per iteration")
axes[0].set_xlabel("iteration")
axes[1].set_title("momentum (Adam's beta1) per iteration")
axes[1].set_xlabel("iteration")
axes[2].set_title(f"validation loss per epoch, {len(SEEDS)} seeds (band: min-max)")
axes[2].set_xlabel("epoch")
for a in axes:
    a.legend(fontsize="small")
plt.tight_layout()
pd.DataFrame({
    name: {
        "final validation loss (median)": np.median([r["valid_loss"][-1] for r in rs]),
        "final validation loss (min-max)": "{:.3f}-{:.3f}".format(
            min(r["valid_loss"][-1] for r in rs), max(r["valid_loss"][-1] for r in rs)),
        "final accuracy (median)": np.median([r["accuracy"][-1] for r in rs]),
    }
    for name, rs in runs.items()
}).T
"""),
        md("""
The left panels are the schedules as trained; the right one what each did to the validation
loss, as the median over three batch orders with their range shaded, and the table the final
numbers. Read the width of the bands before the medians: where two overlap, a single run would
not tell those schedules apart on this task. The cyclical schedules end each cycle back at
`base_lr` after a peak at `max_lr`; one-cycle ends after a long anneal far below its start,
which is where it reaches its final loss.
"""),
        code(FOOTER),
    ]


NOTEBOOKS = {
    "01_quickstart.ipynb": quickstart,
    "02_intuition.ipynb": intuition,
    "03_cyclical.ipynb": cyclical,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 600) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    resources = {"metadata": {"path": str(HERE)}}
    # the kernel inherits the environment: MPLBACKEND=Agg (as `make test` sets for the suite)
    # would replace Jupyter's inline backend and leave the notebooks without figures
    backend = os.environ.pop("MPLBACKEND", None)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources=resources).execute()
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
    return nb


def save_readme_figure(nb: nbformat.NotebookNode, out: Path = README_FIGURE) -> Path:
    """Write the first PNG output of the cell tagged ``readme-figure``."""
    for cell in nb.cells:
        if README_FIGURE_TAG in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png")
                if png:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(base64.b64decode(png))
                    return out
    raise ValueError(f"no PNG output in a cell tagged {README_FIGURE_TAG!r}; execute the notebook first")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run the notebooks and keep their outputs")
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS), help="which notebooks")
    args = parser.parse_args(argv)
    for name in args.names:
        nb = build(name)
        if args.execute:
            execute(nb)
            if name == "02_intuition.ipynb":
                print("wrote", save_readme_figure(nb))
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
