"""What a range test costs beyond its training steps: lrrange against fastai and torch-lr-finder.

One command prints markdown tables (and writes them with ``--out``)::

    nice .venv/bin/python bench/overhead.py            # the full run (~10-15 min on 2 cores)
    .venv/bin/python bench/overhead.py --quick         # a tiny setting, for the smoke test

Contenders run interleaved in one process (the order rotates every round, so drift
in a shared machine's load hits all alike); each table gives the median of the
per-round ratios, their min-max spread and the median wall times. Sections:

1. ``LRRange`` for N steps vs a plain fastai ``fit`` over the same N batches;
2. ``Learner.range_test`` (with its suggestion) vs fastai's ``lr_find(num_it=N)``;
3. ``Learner.range_test`` vs torch-lr-finder's ``range_test`` + ``reset()``;
4. snapshot + restore of a large model with Adam state vs fastai's save + load, with
   the extra peak RSS each needs (every contender in a fresh subprocess);
5. suggestion rules on 1,000 / 10,000 / 100,000 points vs fastai's;
6. tensor-to-host conversions per step (device syncs on a GPU): plain fit vs ``LRRange``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import io
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path

import fastai.callback.schedule  # noqa: F401  (Learner.lr_find)
import numpy as np
import torch
from fastai.callback.core import Callback, CancelValidException
from fastai.callback.core import _events as FASTAI_EVENTS
from fastai.callback.progress import ProgressCallback
from fastai.callback.schedule import minimum as fa_minimum
from fastai.callback.schedule import slide as fa_slide
from fastai.callback.schedule import steep as fa_steep
from fastai.callback.schedule import valley as fa_valley
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.optimizer import Adam, OptimWrapper
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader, TensorDataset

from lrrange import LRRange, suggest
from lrrange.snapshot import Snapshot

START_LR, END_LR = 1e-7, 1e-2  # a range that does not diverge, so every contender runs all N steps
N_IN, N_OUT, BS = 64, 10, 64


@dataclass(frozen=True)
class Setting:
    """How much to run: step counts, repeats, models, the large model and the curve lengths."""

    steps: tuple[int, ...]
    repeats: int
    models: dict[str, tuple[int, ...]]  # name -> hidden layer widths
    big_width: int  # the snapshot model: big_layers Linear(big_width, big_width)
    big_layers: int
    points: tuple[int, ...]
    valley_cap: int  # fastai's valley is O(n^2): longer curves are not timed
    sync_steps: int
    min_seconds: float  # more rounds for quick contenders, until one's rounds add up to this
    call_budget: float  # seconds per timing batch of a suggestion rule


FULL = Setting(
    steps=(100, 1000),
    repeats=5,
    models={"small MLP 64-32-10": (32,), "wide MLP 64-2048-10": (2048,)},
    big_width=2048,
    big_layers=12,  # 50.3M parameters
    points=(1_000, 10_000, 100_000),
    valley_cap=1_000,
    sync_steps=20,
    min_seconds=6.0,
    call_budget=0.2,
)
QUICK = Setting(
    steps=(20,),
    repeats=2,
    models={"small MLP 64-32-10": (32,)},
    big_width=256,
    big_layers=2,
    points=(1_000,),
    valley_cap=300,
    sync_steps=6,
    min_seconds=0.0,
    call_budget=0.01,
)


# --- helpers ---------------------------------------------------------------------------------


def mlp(hidden: tuple[int, ...], n_in: int = N_IN, n_out: int = N_OUT) -> nn.Module:
    widths = (n_in, *hidden)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], n_out))


def dataset(n_batches: int, seed: int = 0) -> TensorDataset:
    """Gaussian inputs labelled by a random linear teacher: exactly ``n_batches`` batches of BS."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_batches * BS, N_IN, generator=g)
    y = (x @ torch.randn(N_IN, N_OUT, generator=g)).argmax(1)
    return TensorDataset(x, y)


def loaders(n_batches: int) -> tuple[DataLoader, DataLoader]:
    ds = dataset(n_batches)
    valid = TensorDataset(*dataset(1, seed=1).tensors)
    return DataLoader(ds, batch_size=BS, shuffle=True, drop_last=True), DataLoader(valid, batch_size=BS)


def learner(dls: DataLoaders, model: nn.Module, opt_func=Adam, path: str | None = None) -> Learner:
    """A fastai Learner without its progress bar (the same for every contender, and quiet)."""
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), opt_func=opt_func, path=path or ".")
    learn.remove_cb(ProgressCallback)
    learn.logger = quiet
    return learn


def quiet(*args: object) -> None:
    """A logger for Recorder that prints nothing (ProgressCallback, removed, would replace print)."""


class NoValidation(Callback):
    """Skip validation, as a range test does, so a plain fit does the same work."""

    def before_validate(self) -> None:
        raise CancelValidException()


def timed(fn: Callable[[], object], collect: bool = True) -> tuple[float, float]:
    """Wall and CPU (this process, all threads) seconds of one call, after a garbage collection."""
    if collect:
        gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


Times = dict[str, dict[str, list[float]]]  # contender -> {"wall": [...], "cpu": [...]}


def interleave(contenders: dict[str, Callable[[], object]], repeats: int, min_seconds: float = 0.0) -> Times:
    """Time each contender: one warm-up, then rounds in a rotating order (A B, B A, ...).

    At least ``repeats`` rounds, more while one round is quick, until the rounds
    add up to about ``min_seconds`` (at most 4x ``repeats``).
    """
    names = list(contenders)
    warm = sum(timed(contenders[name])[0] for name in names)
    rounds = max(repeats, min(4 * repeats, int(min_seconds / max(warm, 1e-9))))
    times: Times = {name: {"wall": [], "cpu": []} for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            wall, cpu = timed(contenders[name])
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    return times


def ratios(times: Times, num: str, den: str, clock: str = "wall") -> list[float]:
    return [a / b for a, b in zip(times[num][clock], times[den][clock], strict=True)]


def ratio_cells(times: Times, num: str, den: str) -> list[str]:
    """Median wall-time ratio, its min-max spread, and the median CPU-time ratio."""
    wall, cpu = ratios(times, num, den), ratios(times, num, den, "cpu")
    return [f"**{statistics.median(wall):.3f}**", f"{min(wall):.3f}-{max(wall):.3f}",
            f"{statistics.median(cpu):.3f}"]


def ms(times: Times, name: str) -> str:
    return f"{1e3 * statistics.median(times[name]['wall']):.1f}"


RATIO_HEAD = ["spread (wall)", "CPU-time ratio"]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# --- 1-3: whole range tests --------------------------------------------------------------------


def bench_fit(setting: Setting) -> str:
    """(1) LRRange for N steps vs a plain fit over the same N batches (no validation in either)."""
    rows = []
    for name, hidden in setting.models.items():
        for n in setting.steps:
            learn = learner(DataLoaders(*loaders(n)), mlp(hidden))

            def test(learn=learn, n=n):
                learn.fit(1, cbs=LRRange(START_LR, END_LR, num_it=n, stop_div=False))
                assert len(learn.range_result) == n, learn.range_result

            def fit(learn=learn):
                learn.fit(1, cbs=NoValidation())

            contenders = {"fit": fit, "lrrange": test, "fit again": fit}
            times = interleave(contenders, setting.repeats, setting.min_seconds)
            control = ratio_cells(times, "fit again", "fit")
            shares = [own_share(learn, lambda n=n: LRRange(START_LR, END_LR, num_it=n, stop_div=False))
                      for _ in range(3)]
            own = statistics.median(shares)
            rows.append([name, str(n), *ratio_cells(times, "lrrange", "fit"), f"{control[0]} ({control[1]})",
                         f"**{1 / (1 - own):.4f}**", ms(times, "lrrange"), ms(times, "fit"),
                         str(len(times["fit"]["wall"]))])
    head = ("A/A control: the plain fit timed twice per round; its ratio is what noise alone gives. "
            "Own-code ratio: 1 / (1 - s), s the share of a range test's wall time spent inside LRRange's "
            "own event methods (snapshot, per-step schedule and recording, restore, result), measured "
            "within the same run (median of 3), so the machine's load cancels.\n\n")
    return head + table(["model", "N", "lrrange / fit", *RATIO_HEAD, "A/A fit / fit (spread)",
                         "own-code ratio", "lrrange ms", "fit ms", "rounds"], rows)


def own_share(learn: Learner, make: Callable[[], Callback]) -> float:
    """Share of one ``learn.fit(1, cbs=make())`` spent inside the callback's own event methods."""
    cb, spent = make(), [0.0]

    def clocked(method: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            t0 = time.perf_counter()
            try:
                return method()
            finally:
                spent[0] += time.perf_counter() - t0

        return run

    for event in FASTAI_EVENTS:
        if callable(getattr(type(cb), event, None)):
            object.__setattr__(cb, event, clocked(getattr(cb, event)))  # fastai looks events up per call
    total = timed(lambda: learn.fit(1, cbs=cb))[0]
    return spent[0] / total


def bench_lr_find(setting: Setting, tmp: str) -> str:
    """(2) range_test + its suggestion vs fastai's lr_find with its default (valley) suggestion."""
    rows = []
    for name, hidden in setting.models.items():
        for n in setting.steps:
            learn = learner(DataLoaders(*loaders(n)), mlp(hidden), path=tmp)
            steps: dict[str, int] = {}

            def ours(learn=learn, n=n, steps=steps):
                res = learn.range_test(START_LR, END_LR, num_it=n, show_plot=False)
                steps["lrrange"] = len(res)
                return res.suggestion

            def theirs(learn=learn, n=n, steps=steps):
                out = learn.lr_find(START_LR, END_LR, num_it=n, show_plot=False)
                steps["lr_find"] = len(learn.recorder.lrs)
                return out.valley

            times = interleave({"lr_find": theirs, "lrrange": ours}, setting.repeats, setting.min_seconds)
            rows.append([name, str(n), *ratio_cells(times, "lrrange", "lr_find"),
                         ms(times, "lrrange"), ms(times, "lr_find"),
                         f"{steps['lrrange']} / {steps['lr_find']}"])
    return table(["model", "N", "lrrange / lr_find", *RATIO_HEAD, "lrrange ms", "lr_find ms",
                  "steps run"], rows)


def tlf_steepest(history: dict[str, list[float]], skip_start: int = 10, skip_end: int = 5) -> float:
    """torch-lr-finder's suggestion (the steepest descent of the loss), which it computes in ``plot``."""
    lrs, losses = history["lr"], history["loss"]
    if len(lrs) > skip_start + skip_end + 2:
        lrs, losses = lrs[skip_start:-skip_end], losses[skip_start:-skip_end]
    return lrs[int(np.gradient(np.asarray(losses)).argmin())]


def bench_torch_lr_finder(setting: Setting) -> str:
    """(3) range_test vs torch-lr-finder on the same model, torch Adam and torch DataLoader."""
    from torch_lr_finder import LRFinder

    rows = []
    for name, hidden in setting.models.items():
        for n in setting.steps:
            train, valid = loaders(n)
            model = mlp(hidden)
            opt_func = partial(OptimWrapper, opt=torch.optim.Adam)
            learn = learner(DataLoaders(train, valid), model, opt_func=opt_func)
            opt = torch.optim.Adam(model.parameters(), lr=START_LR)
            criterion = nn.CrossEntropyLoss()

            def theirs(n=n, train=train, model=model, opt=opt, criterion=criterion):
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    finder = LRFinder(model, opt, criterion, device="cpu")
                    finder.range_test(train, start_lr=START_LR, end_lr=END_LR, num_iter=n, diverge_th=1e9)
                    tlf_steepest(finder.history)
                    finder.reset()
                assert len(finder.history["lr"]) == n

            def ours(learn=learn, n=n):
                res = learn.range_test(START_LR, END_LR, num_it=n, stop_div=False, show_plot=False)
                assert len(res) == n
                return res.suggestion

            def fit(learn=learn):
                learn.fit(1, cbs=NoValidation())

            times = interleave({"torch-lr-finder": theirs, "lrrange": ours, "fit": fit}, setting.repeats,
                               setting.min_seconds)
            rows.append([name, str(n), *ratio_cells(times, "lrrange", "torch-lr-finder"),
                         ms(times, "lrrange"), ms(times, "torch-lr-finder"),
                         ratio_cells(times, "fit", "torch-lr-finder")[0]])
    return table(["model", "N", "lrrange / tlf", *RATIO_HEAD, "lrrange ms", "tlf ms",
                  "plain fastai fit / tlf"], rows)


# --- 4: snapshot + restore of a large model, each contender in a fresh subprocess ---------------


def big_learner(width: int, layers: int, path: str) -> Learner:
    """A deep stack of square Linear layers with Adam state from one training step."""
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)])
    x = torch.randn(8, width)
    dls = DataLoaders(DataLoader(TensorDataset(x, x), batch_size=8), DataLoader(TensorDataset(x, x)))
    learn = Learner(dls, model, loss_func=nn.MSELoss(), path=path)
    learn.remove_cb(ProgressCallback)
    learn.logger = quiet
    learn.create_opt()
    learn.model(x).square().mean().backward()
    learn.opt.step()
    learn.opt.zero_grad()
    return learn


def snapshot_bytes(learn: Learner) -> int:
    """Bytes of the tensors lrrange's Snapshot copies: parameters, buffers, gradients, optimizer state."""
    tensors = list(learn.model.state_dict().values())
    tensors += [p.grad for p in learn.model.parameters() if p.grad is not None]
    tensors += [v for s in learn.opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


def snapshot_contenders(learn: Learner | None) -> dict[str, Callable[[], object]]:
    """One snapshot + restore each (lrrange's disk snapshot too, where Snapshot offers it).

    ``learn`` is read only when a contender runs, so ``None`` gives just the names.
    """

    def memory():
        Snapshot(learn).restore()

    def fastai():
        learn.save("bench_tmp", with_opt=True)
        learn.load("bench_tmp", with_opt=True)

    out = {"lrrange memory": memory}
    if "mode" in inspect.signature(Snapshot).parameters:
        out["lrrange disk"] = lambda: Snapshot(learn, mode="disk").restore()
    out["fastai save+load"] = fastai
    return out


class PeakRSS:
    """Highest resident set size seen while the block runs (sampled every millisecond)."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()

    def __enter__(self):
        gc.collect()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def snapshot_worker(args: argparse.Namespace) -> None:
    """Subprocess: the extra peak RSS of one contender's snapshot + restore, printed as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        learn = big_learner(args.width, args.layers, tmp)
        contender = snapshot_contenders(learn)[args.worker]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with PeakRSS() as rss:
            contender()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"extra": rss.peak - rss.base, "maxrss_delta": 1024 * (after - before)}))


def start_worker(*args: str) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--worker", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def worker_result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"benchmark worker {proc.args} failed:\n{err}")
    return json.loads(out.strip().splitlines()[-1])


def bench_snapshot(setting: Setting) -> str:
    """(4) snapshot + restore alone: extra peak RSS (a fresh process per contender), then time.

    The memory workers run side by side (RSS is per process); the timing, interleaved
    in this process, runs after they have finished.
    """
    size = ["--width", str(setting.big_width), "--layers", str(setting.big_layers)]
    workers = {name: start_worker(name, *size) for name in snapshot_contenders(None)}
    mems = {name: worker_result(proc) for name, proc in workers.items()}
    with tempfile.TemporaryDirectory() as tmp:
        learn = big_learner(setting.big_width, setting.big_layers, tmp)
        contenders = snapshot_contenders(learn)
        times = interleave(contenders, setting.repeats)
        state, params = snapshot_bytes(learn), sum(p.numel() for p in learn.model.parameters())
        del learn, contenders
    rows = []
    for name in times:
        extra = max(mems[name]["extra"], mems[name]["maxrss_delta"])
        rows.append([name, ms(times, name), *ratio_cells(times, name, "fastai save+load"),
                     f"{extra / 2**20:.0f}", f"{extra / state:.2f}"])
    head = (f"{params / 1e6:.1f}M parameters, fastai Adam state after one step; lrrange copies "
            f"{state / 2**20:.0f} MiB (parameters, gradients, optimizer state); "
            f"{len(next(iter(times.values()))['wall'])} interleaved rounds.\n\n")
    return head + table(["contender", "median ms", "/ fastai save+load", *RATIO_HEAD,
                         "extra peak RSS MiB", "extra / state copied"], rows)


# --- 5: suggestion rules ---------------------------------------------------------------------


def curve(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A range-test-shaped smoothed loss: flat, falling, then blowing up, with a little noise."""
    rng = np.random.default_rng(seed)
    lrs = np.geomspace(1e-7, 10, n)
    x = np.log10(lrs)
    loss = 2.3 - 1.5 / (1 + np.exp(-(x + 3) * 2)) + np.exp(2 * (x - 0.3)) + rng.normal(0, 0.01, n)
    return lrs, loss


def per_call(fn: Callable[[], object], budget: float, repeats: int = 3) -> float:
    """Median CPU seconds per call over ``repeats`` batches of calls, each batch about ``budget`` seconds."""
    t = timed(fn, collect=False)[1]
    loops = max(1, int(budget / max(t, 1e-6)))
    batch = lambda: [fn() for _ in range(loops)]
    return statistics.median(timed(batch, collect=False)[1] / loops for _ in range(repeats))


def bench_suggest(setting: Setting) -> str:
    """(5) every lrrange rule (and ``bounds``) vs fastai's, as lr_find calls them (tensors, num_it)."""
    ours: dict[str, Callable] = {f"lrrange {k}": v for k, v in suggest.RULES.items()}
    ours["lrrange bounds"] = suggest.bounds
    ours["lrrange suggest_all (every rule)"] = suggest.suggest_all
    theirs = {"fastai valley": fa_valley, "fastai slide": fa_slide,
              "fastai minimum": fa_minimum, "fastai steep": fa_steep}
    rows = []
    for name in [*ours, *theirs]:
        row = [name]
        for n in setting.points:
            lrs, losses = curve(n)
            if name in ours:
                row.append(f"{1e3 * per_call(partial(ours[name], lrs, losses), setting.call_budget):.3f}")
            elif name == "fastai valley" and n > setting.valley_cap:
                row.append("not run (O(n^2))")
            else:
                call = partial(theirs[name], torch.tensor(lrs), torch.tensor(losses), n)
                reps = 1 if n >= 100_000 else 3
                row.append(f"{1e3 * per_call(call, setting.call_budget, reps):.3f}")
        rows.append(row)
    note = (f"CPU ms per call on a synthetic range-test curve; fastai's valley (a Python double loop, "
            f"O(n^2)) is run only up to {setting.valley_cap:,} points.\n\n")
    return note + table(["rule", *[f"{n:,} points, ms" for n in setting.points]], rows)


# --- 6: host syncs per step ------------------------------------------------------------------

HOST_READS = {"__float__", "__int__", "__bool__", "__index__", "__format__", "item", "tolist", "numpy",
              "cpu", "nonzero"}


class HostReads(TorchFunctionMode):
    """Count tensor-to-host reads (a device sync on a GPU), keyed by fastai event and call site."""

    def __init__(self):
        super().__init__()
        self.seen: Counter[tuple[str, str, str]] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            frame, site, event = sys._getframe(1), None, "-"
            while frame is not None:
                mod = frame.f_globals.get("__name__", "")
                if site is None and not mod.startswith("torch"):
                    site = f"{mod}.{frame.f_code.co_name}"
                if frame.f_code.co_name in FASTAI_EVENTS:
                    event = frame.f_code.co_name
                    break
                frame = frame.f_back
            self.seen[(event, site or "?", name)] += 1
        return func(*args, **(kwargs or {}))


def count_reads(n: int, with_test: bool) -> Counter[tuple[str, str, str]]:
    """Host reads during one fit of ``n`` batches, with fastai's own loop (Recorder, ProgressCallback)."""
    learn = Learner(DataLoaders(*loaders(n)), mlp((32,)), loss_func=nn.CrossEntropyLoss())
    cbs = lambda: [LRRange(START_LR, END_LR, num_it=n, stop_div=False)] if with_test else [NoValidation()]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        learn.fit(1, cbs=cbs())  # the first fit creates the optimizer
        with HostReads() as reads:
            learn.fit(1, cbs=cbs())
    return reads.seen


def bench_syncs(setting: Setting) -> str:
    """(6) reads per training step: the difference between fits of 2n and n steps, divided by n."""
    n = setting.sync_steps
    rows = []
    for label, with_test in (("plain fit", False), ("LRRange", True)):
        short, long = count_reads(n, with_test), count_reads(2 * n, with_test)
        for key in sorted(set(short) | set(long)):
            per_step = (long[key] - short[key]) / n
            if per_step:
                rows.append([label, *key, f"{per_step:g}"])
    return table(["run", "event", "call site", "read", "per step"], rows)


# --- main -------------------------------------------------------------------------------------


def header() -> str:
    libs = ["torch", "fastai", "numpy", "torch-lr-finder", "psutil", "lrrange"]
    vers = ", ".join(f"{lib} {version(lib)}" for lib in libs)
    return (f"CPUs: {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), "
            f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}; "
            f"Python {platform.python_version()}; {vers}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny setting: a smoke run of every section")
    parser.add_argument("--out", type=Path, help="also write the markdown report to this file")
    parser.add_argument("--only", nargs="*", type=int, choices=range(1, 7), help="sections to run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--layers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two intra-op threads on a busy 2-core machine spin and time noise
    try:
        if args.worker:
            return snapshot_worker(args)
        return report(args)
    finally:
        torch.set_num_threads(threads)


def report(args: argparse.Namespace) -> None:
    setting = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    parts = [f"# lrrange overhead benchmark{' (--quick)' if args.quick else ''}\n\n{header()}\n"]
    print(parts[0], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        sections = {
            1: ("(1) LRRange vs plain fastai fit, same N batches", lambda: bench_fit(setting)),
            2: ("(2) range_test vs fastai lr_find, incl. snapshot/restore/suggestion",
                lambda: bench_lr_find(setting, tmp)),
            3: ("(3) range_test vs torch-lr-finder range_test + reset",
                lambda: bench_torch_lr_finder(setting)),
            4: ("(4) snapshot + restore alone", lambda: bench_snapshot(setting)),
            5: ("(5) suggestion time per call", lambda: bench_suggest(setting)),
            6: ("(6) tensor-to-host reads per step (device syncs on a GPU)", lambda: bench_syncs(setting)),
        }
        for key, (title, run) in sections.items():
            if args.only and key not in args.only:
                continue
            t = time.perf_counter()
            text = f"## {title}\n\n{run()}\n\n({time.perf_counter() - t:.0f} s)\n"
            print(text, flush=True)
            parts.append(text)
    parts.append(f"Total wall time: {time.perf_counter() - t0:.0f} s\n")
    print(parts[-1])
    if args.out:
        args.out.write_text("\n".join(parts))


if __name__ == "__main__":
    main()
