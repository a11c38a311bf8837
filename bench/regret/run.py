"""Regret benchmark: train with one-cycle at each rule's suggestion and at every LR of a grid.

For each task, optimizer and seed, the seed fixes the initial weights and the
batch order; an lrrange range test (``learn.range_test``) runs from those
weights, every rule suggests an LR from its curve, and one-cycle trains for the
task's fixed budget at each suggestion and at each of 12 grid LRs. The best LR
is the grid LR with the best seed-averaged validation metric. Every fit is
cached under ``bench/regret/cache/`` (keyed by task, optimizer, seeds and
library versions), so a new rule costs only its own fits.

Run: ``nice .venv/bin/python -m bench.regret`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = HERE / "cache"
RESULTS = ROOT / "bench" / "results"
SEEDS = tuple(range(32))
NUM_IT = 100
FASTAI_RULES = ("valley", "slide", "minimum", "steep")


def _versions() -> dict[str, str]:
    import fastai
    import mlxtend
    import sklearn

    return {
        "torch": torch.__version__,
        "fastai": fastai.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "mlxtend": mlxtend.__version__,
        "python": sys.version.split()[0],
    }


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _range_code() -> str:
    """Source of what shapes a range-test curve: a change there re-runs the range tests only."""
    from lrrange import callbacks, schedules, smoothing, snapshot

    return _digest(*(inspect.getsource(m) for m in (callbacks, schedules, smoothing, snapshot)))


class Cache:
    """One JSON file per (task, optimizer, library versions); in it, fits keyed by seed and LR and
    range curves keyed by seed and the range-test code, so more seeds or a new rule add only fits."""

    def __init__(self, task, opt: str):
        from . import tasks

        key = _digest(task.__dict__ | {"load": task.load.__name__}, opt, _versions(), tasks.PROTOCOL)
        self.path = Path(os.environ.get("LRRANGE_BENCH_CACHE", CACHE)) / f"{task.name}-{opt}-{key}.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {"fits": {}, "range": {}}
        self.range_key = _range_code()

    def fit(self, task, arrays, seed: int, opt: str, lr: float) -> tuple[float, bool]:
        """The metric of one-cycle at ``lr`` from ``seed``'s start, and whether it had to be fitted."""
        k = f"{seed}:{lr:.17g}"
        fits = self.data["fits"]
        new = k not in fits
        if new:
            fits[k] = _fit(task, arrays, seed, opt, float(lr))
            self.save()
        return fits[k], new

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)


def _fit(task, arrays, seed: int, opt: str, lr: float) -> float:
    """Validation metric after one-cycle at ``lr``: accuracy, or MSE for regression (capped at 10)."""
    learn = task.learner(arrays, seed, opt)
    with learn.no_logging():
        learn.fit_one_cycle(task.epochs, lr)
    out = learn.validate()
    if task.regression:
        mse = float(out[0])
        return mse if np.isfinite(mse) and mse < 10 else 10.0
    return float(out[1])


def _range(task, arrays, seed: int, opt: str) -> dict:
    learn = task.learner(arrays, seed, opt)
    res = learn.range_test(num_it=NUM_IT, show_plot=False)
    return {"lrs": res.lrs.tolist(), "losses": res.losses.tolist(), "smoothed": res.smoothed.tolist(),
            "stop_reason": res.stop_reason}


def rule_picks(curve: dict) -> dict[str, float]:
    """Every compared rule's LR for one range-test curve."""
    from lrrange import suggest

    from .peers import fastai_rule, lightning, torch_lr_finder

    lrs, losses, sm = (np.asarray(curve[k]) for k in ("lrs", "losses", "smoothed"))
    picks = {f"lrrange {suggest.DEFAULT}": suggest.RULES[suggest.DEFAULT](lrs, sm)}
    for name in FASTAI_RULES:
        picks[f"fastai {name}"] = fastai_rule(name, lrs, sm, NUM_IT)
    picks["torch-lr-finder steepest"] = torch_lr_finder(lrs, losses)
    picks["Lightning steepest"] = lightning(lrs, sm)
    return picks


def collect(task_names, opts, seeds, log=print) -> dict:
    """Run (or read from cache) every range test and fit; return the raw results."""
    from . import tasks as T

    torch.set_num_threads(1)
    raw = {}
    stats = {"fits_run": 0, "fits_cached": 0, "fit_s": 0.0, "range_tests_run": 0}
    for name in task_names:
        task = T.ALL_TASKS[name]
        arrays = task.arrays()
        for opt in opts:
            cache = Cache(task, opt)
            ranges = cache.data["range"]

            def fit(seed, lr, task=task, arrays=arrays, opt=opt, cache=cache):
                t0 = time.perf_counter()
                value, new = cache.fit(task, arrays, seed, opt, lr)
                if new:
                    stats["fits_run"] += 1
                    stats["fit_s"] += time.perf_counter() - t0
                    log(f"  fit {task.name}/{opt} seed {seed} lr {lr:.3g}: {value:.4f} "
                        f"({time.perf_counter() - t0:.1f}s)")
                else:
                    stats["fits_cached"] += 1
                return value

            grid = T.GRIDS[opt]
            metric = np.array([[fit(s, lr) for lr in grid] for s in seeds])
            runs = []
            for s in seeds:
                rk = f"{s}:{cache.range_key}"
                if rk not in ranges:
                    ranges[rk] = _range(task, arrays, s, opt)
                    cache.save()
                    stats["range_tests_run"] += 1
                curve = ranges[rk]
                picks = rule_picks(curve)
                runs.append({"seed": s, "stop_reason": curve["stop_reason"], "n_points": len(curve["lrs"]),
                             "picks": picks, "metric": {r: fit(s, lr) for r, lr in picks.items()},
                             "curve": curve})
            raw[f"{name}/{opt}"] = {"task": name, "opt": opt, "regression": task.regression,
                                   "grid": grid.tolist(), "grid_metric": metric.tolist(), "runs": runs}
    log(f"fits run {stats['fits_run']} ({stats['fit_s']:.0f}s), cached {stats['fits_cached']}, "
        f"range tests run {stats['range_tests_run']}")
    return raw, stats


def _collect_one(args: tuple) -> tuple[dict, dict]:
    """One (task, optimizer) in a worker process: its own cache file, so workers never share one."""
    name, opt, seeds = args
    return collect([name], [opt], seeds, log=lambda msg: print(msg, flush=True))


def collect_parallel(task_names, opts, seeds, jobs: int, log=print) -> tuple[dict, dict]:
    """``collect`` with each (task, optimizer) pair in one of ``jobs`` worker processes."""
    if jobs <= 1:
        return collect(task_names, opts, seeds, log)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pairs = [(name, opt, tuple(seeds)) for name in task_names for opt in opts]
    raw, stats = {}, {"fits_run": 0, "fits_cached": 0, "fit_s": 0.0, "range_tests_run": 0}
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        for part, st in pool.map(_collect_one, pairs):
            raw |= part
            for k in stats:
                stats[k] += st[k]
    log(f"all: fits run {stats['fits_run']} ({stats['fit_s']:.0f}s of worker time), cached "
        f"{stats['fits_cached']}, range tests run {stats['range_tests_run']}")
    return raw, stats


def summarise(raw: dict) -> dict:
    """Per task/optimizer and rule: mean regret, hit rate within one grid step, log10 distances."""
    out = {}
    for key, r in raw.items():
        grid, metric = np.asarray(r["grid"]), np.asarray(r["grid_metric"])
        sign = -1.0 if r["regression"] else 1.0  # larger is better after the sign
        mean = sign * metric.mean(0)
        tied = np.flatnonzero(mean >= mean.max() - 1e-12)
        b = int(tied[0])
        step = float(np.log10(grid[1] / grid[0]))
        rules = {}
        for rule in r["runs"][0]["picks"]:
            regrets, dists, signed = [], [], []
            for run in r["runs"]:
                s = [x["seed"] for x in r["runs"]].index(run["seed"])
                got = sign * run["metric"][rule]
                regrets.append((sign * metric[s, b] - got) * (1.0 if r["regression"] else 100.0))
                lg = np.log10(run["picks"][rule] / grid[tied])
                i = int(np.argmin(np.abs(lg)))
                dists.append(float(abs(lg[i])))
                signed.append(float(lg[i]))
            rules[rule] = {"regret": float(np.mean(regrets)), "regrets": regrets,
                           "hits": [d <= step + 1e-9 for d in dists], "dist": dists, "signed": signed}
        out[key] = {"best_lr": grid[tied].tolist(), "best_metric": float(sign * mean.max()),
                    "step": step, "rules": rules, "regression": r["regression"]}
    return out


def time_rules() -> dict[str, float]:
    """Milliseconds per call on a 10,000-point curve (lrrange) and fastai's valley at 1,000 points."""
    from fastai.callback.schedule import valley as fastai_valley

    from lrrange import suggest

    rng = np.random.default_rng(0)
    n = 10_000
    lrs = np.geomspace(1e-7, 10, n)
    x = np.linspace(0, 1, n)
    losses = 2.3 - 2 * np.exp(-((x - 0.7) / 0.2) ** 2) + np.cumsum(rng.normal(0, 0.003, n))
    def best_ms(fn, *args, reps: int = 10) -> float:
        """Fastest of ``reps`` calls: the machine is shared, so the minimum is the cost, not the load."""
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - t0)
        return min(times) * 1e3

    out = {}
    calls = [*suggest.RULES.items(), ("suggest_all", suggest.suggest_all), ("bounds", suggest.bounds)]
    for name, rule in calls:
        out[f"lrrange {name} @10k"] = best_ms(rule, lrs, losses)
    m = 1000
    lr_t, loss_t = torch.tensor(np.geomspace(1e-7, 10, m)), torch.tensor(losses[:: n // m][:m])
    out["fastai valley @1k"] = best_ms(fastai_valley, lr_t, loss_t, m, reps=1)
    out["lrrange valley @1k"] = best_ms(suggest.valley, lr_t.numpy(), loss_t.numpy())
    return out


def _fmt_rule(name: str, default: str) -> str:
    return f"**{name}** (default)" if name == default else name


def _pooled(summary: dict, keys: list[str], rule: str, field: str) -> list:
    return [x for k in keys for x in summary[k]["rules"][rule][field]]


def goals(summary: dict, default: str) -> list[str]:
    """Issue 6's goals for the default rule, each checked on the measured numbers."""
    from . import tasks as T

    out = []
    for opt in T.OPTIMIZERS:
        keys = [k for k in summary if k.endswith(f"/{opt}")]
        cls = [k for k in keys if not summary[k]["regression"]]
        if not cls:
            continue
        regs = {k.split("/")[0]: summary[k]["rules"][default]["regret"] for k in cls}
        hit = 100 * np.mean(_pooled(summary, cls, default, "hits"))
        worst = max(_pooled(summary, cls, default, "dist"))
        worst_all = max(_pooled(summary, keys, default, "dist"))
        mean = np.mean(list(regs.values()))
        peers = {r: np.mean([summary[k]["rules"][r]["regret"] for k in cls])
                 for r in summary[cls[0]]["rules"] if r != default}
        best_peer = min(peers, key=peers.get)

        def mark(ok: bool) -> str:
            return "met" if ok else "**not met**"

        d = np.concatenate([np.subtract(summary[k]["rules"][default]["regrets"],
                                        summary[k]["rules"][best_peer]["regrets"]) for k in cls])
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        out += [
            f"- {opt}: regret <= 1.0 point on every classification task "
            f"({', '.join(f'{t} {v:.2f}' for t, v in regs.items())}): {mark(max(regs.values()) <= 1.0)}; "
            f"hit rate >= 60% ({hit:.0f}% on classification): {mark(hit >= 60)}; never > 1 decade from "
            f"the best LR (worst {worst:.2f} on classification, {worst_all:.2f} with diabetes): "
            f"{mark(worst <= 1.0)}; lower mean classification regret than every peer ({mean:.2f} vs "
            f"best peer {best_peer} {peers[best_peer]:.2f}; paired difference {d.mean():+.2f} ± {se:.2f} "
            f"(mean ± standard error over {len(d)} task x seed pairs)): {mark(mean < peers[best_peer])}."
        ]
    out += ["", _windows(summary, default)]
    return out


def _windows(summary: dict, default: str, width: int = 8) -> str:
    """How often the default has the lowest mean classification regret within disjoint seed windows."""
    from . import tasks as T

    n = len(next(iter(summary.values()))["rules"][default]["regrets"])
    if n < 2 * width:
        return ""
    wins = []
    for lo in range(0, n - width + 1, width):
        won = True
        for opt in T.OPTIMIZERS:
            cls = [k for k in summary if k.endswith(f"/{opt}") and not summary[k]["regression"]]
            if not cls:
                continue
            mean = {r: np.mean([np.mean(summary[k]["rules"][r]["regrets"][lo : lo + width]) for k in cls])
                    for r in summary[cls[0]]["rules"]}
            won &= min(mean, key=mean.get) == default
        wins.append(won)
    return (f"Seed noise: in {sum(wins)} of the {len(wins)} disjoint windows of {width} seeds the default "
            "has the lowest mean classification regret under both optimizers (the best LR still "
            f"taken from all {n} seeds); with a handful of seeds the top rules trade places, so the "
            "comparison needs all of them.")


def report(summary: dict, agree: dict, timings: dict, wall: float, seeds, default: str, stats: dict,
           out: Path = RESULTS) -> str:
    """The Markdown tables: one per optimizer, rules as rows; then the goals and timings."""
    from . import tasks as T

    tasks = list(dict.fromkeys(k.split("/")[0] for k in summary))
    lines = [
        "# Suggestion regret (issue 6)",
        "",
        f"Generated by `nice .venv/bin/python -m bench.regret` in {wall / 60:.1f} min wall time "
        f"({os.cpu_count()} CPU cores shared with other jobs, {stats.get('jobs', 1)} worker processes, "
        f"torch threads 1): {stats['fits_run']} fits run ({stats['fit_s'] / 60:.1f} min of worker "
        f"time), {stats['fits_cached']} read from the cache, "
        f"{stats['range_tests_run']} range tests run. Seeds {list(seeds)}; "
        f"range test 1e-7..10, {NUM_IT} steps, lrrange's `LRRange`; one-cycle "
        "(`fit_one_cycle`, fastai defaults) for a fixed budget per task; best LR = grid LR with the "
        "best seed-averaged validation metric (12-point log grid: Adam 1e-4..1, SGD+momentum 0.9 "
        "1e-3..10).",
        "",
        "Regret: best grid LR's metric minus the suggestion's, same seed, averaged over seeds — "
        "accuracy points for classification, validation MSE (standardised target) for diabetes "
        "(the no-harm check). Hit: within one grid step (0.36 decades) of the best LR (any tied "
        "best). log10: decades from the best LR (signed median, worst absolute). \"cls\": the "
        "three classification tasks; \"all\": with diabetes.",
        "",
        "Tasks: " + "; ".join(
            f"{t.name} ({'MSE' if t.regression else f'{t.n_classes} classes'}, {t.n_train} train, "
            f"{t.arch}, bs {t.bs}, {t.epochs} epochs)" for t in map(T.ALL_TASKS.get, tasks)) + ".",
        "",
    ]
    for opt, label in (("adam", "Adam (fastai default)"), ("sgd", "SGD with momentum 0.9")):
        keys = [k for k in summary if k.endswith(f"/{opt}")]
        if not keys:
            continue
        keys = sorted(keys, key=lambda k: summary[k]["regression"])
        cls = [k for k in keys if not summary[k]["regression"]]
        tnames = [k.split("/")[0] for k in keys]
        lines += [f"## {label}", "", "Best grid LR: " + ", ".join(
            f"{k.split('/')[0]} {summary[k]['best_lr'][0]:.3g} "
            f"({summary[k]['best_metric'] * (1 if summary[k]['regression'] else 100):.2f}"
            f"{' MSE' if summary[k]['regression'] else '%'})" for k in keys) + ".", ""]
        head = ["rule", *[f"{t} regret" for t in tnames], "mean cls regret", "hit cls", "hit all",
                "median log10", "worst cls", "worst all"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for rule in summary[keys[0]]["rules"]:
            regs = [summary[k]["rules"][rule]["regret"] for k in keys]
            cells = [
                _fmt_rule(rule, default),
                *[f"{x:.3f}" if summary[k]["regression"] else f"{x:.2f}"
                  for x, k in zip(regs, keys, strict=True)],
                f"{np.mean([summary[k]['rules'][rule]['regret'] for k in cls]):.2f}",
                f"{100 * np.mean(_pooled(summary, cls, rule, 'hits')):.0f}%",
                f"{100 * np.mean(_pooled(summary, keys, rule, 'hits')):.0f}%",
                f"{np.median(_pooled(summary, keys, rule, 'signed')):+.2f}",
                f"{max(_pooled(summary, cls, rule, 'dist')):.2f}",
                f"{max(_pooled(summary, keys, rule, 'dist')):.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Goals for the default rule (issue 6)", "", *goals(summary, default), ""]
    candidates = out / "candidates.md"  # written by ``python -m bench.regret.candidates``
    if candidates.exists():
        lines += [candidates.read_text().strip(), ""]
    n = agree["curves"]
    lines += [
        "## lrrange's re-implementations vs fastai's functions", "",
        f"On the {n} range-test curves above, `lrrange.suggest.valley/slide/minimum/steep` "
        f"(given `num_it={NUM_IT}`) equal fastai's functions called as `lr_find` calls them on "
        + ", ".join(f"{name} {agree[name]}" for name in FASTAI_RULES) + f" of {n} curves "
        "(random curves: `tests/test_suggest.py`). Without `num_it` they skip `n//10` of the `n` "
        "recorded steps, which differs from lr_find's `num_it//10` when the test stopped early.", "",
    ]
    lines += ["## Suggestion time (fastest of repeated calls)", "", "| call | ms |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in timings.items()]
    lines.append("")
    return "\n".join(lines)


def agreement(raw: dict) -> dict:
    """How often lrrange's fastai rules give exactly what fastai's own functions give inside lr_find."""
    from lrrange import suggest

    out = {name: 0 for name in FASTAI_RULES}
    out["curves"] = 0
    for r in raw.values():
        for run in r["runs"]:
            lrs, sm = np.asarray(run["curve"]["lrs"]), np.asarray(run["curve"]["smoothed"])
            out["curves"] += 1
            for name in FASTAI_RULES:
                ours = suggest.RULES[name](lrs, sm, num_it=NUM_IT)
                theirs = float(np.clip(run["picks"][f"fastai {name}"], lrs.min(), lrs.max()))
                out[name] += ours == theirs
    return out


def main(argv: list[str] | None = None) -> None:
    from . import tasks as T

    p = argparse.ArgumentParser(prog="python -m bench.regret", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(T.TASKS), choices=list(T.ALL_TASKS),
                   help=f"default: {' '.join(T.TASKS)}; held out (the default rule was not chosen on "
                   f"them): {' '.join(T.HELD_OUT)}")
    p.add_argument("--opts", nargs="+", default=list(T.OPTIMIZERS), choices=list(T.OPTIMIZERS))
    p.add_argument("--seeds", type=int, default=len(SEEDS), help="number of seeds (>= 3)")
    p.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 8),
                   help="worker processes, one (task, optimizer) pair each (default: CPU count, at most 8)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--cache", type=Path, default=None,
                   help=f"cache folder (default {CACHE.relative_to(ROOT)}, or $LRRANGE_BENCH_CACHE)")
    args = p.parse_args(argv)
    if args.cache is not None:
        os.environ["LRRANGE_BENCH_CACHE"] = str(args.cache.resolve())  # worker processes inherit it
    if args.seeds < 3:
        p.error("--seeds must be >= 3")
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    from lrrange import suggest

    seeds = tuple(range(args.seeds))
    t0 = time.perf_counter()
    raw, stats = collect_parallel(args.tasks, args.opts, seeds, args.jobs)
    stats["jobs"] = args.jobs
    summary = summarise(raw)
    timings = time_rules()
    wall = time.perf_counter() - t0
    default = f"lrrange {suggest.DEFAULT}"
    agree = agreement(raw)
    md = report(summary, agree, timings, wall, seeds, default, stats, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "regret.md").write_text(md)
    (args.out / "regret.json").write_text(json.dumps(
        {"versions": _versions(), "seeds": seeds, "wall_s": wall, "default": default, "stats": stats,
         "agreement": agree, "timings_ms": timings, "summary": summary, "raw": raw}, separators=(",", ":")))
    print(md)


if __name__ == "__main__":
    main()
