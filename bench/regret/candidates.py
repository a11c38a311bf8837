"""Evaluate candidate default rules on the regret benchmark's recorded curves, without making them RULES.

Reads the range-test curves and peer results of the last full run
(``bench/results/regret.json``), fits one-cycle at each candidate's pick
(cached like every other fit) and prints, per optimizer, each candidate's
regret per classification task, its hit rate and worst distance, and its
paired difference in regret from the best peer (mean over task x seed pairs,
with its standard error), so a win can be told from seed noise. Writes
``bench/results/candidates.md`` and puts it into ``regret.md`` (as ``bench.regret`` does too).

Run: ``nice .venv/bin/python -m bench.regret.candidates``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lrrange import suggest
from lrrange.suggest import _fall, _first_below, _prepare

from . import tasks as T
from .run import RESULTS, Cache

PEERS = ("fastai valley", "fastai slide", "fastai minimum", "fastai steep", "torch-lr-finder steepest",
         "Lightning steepest")


def fraction(f: float):
    """``suggest.descent`` at fraction ``f``: the first LR ``f`` of the way down the main fall.

    0.45 to 0.6: round 1 of the choice of the default, on the MLP tasks: 0.55 had the smallest
    larger gap to the best peer (Adam, SGD) on the tuning seeds, and was the default until the
    held-out architectures showed it landing low. Principles tried before that: ``1 - 1/e``, the
    e-folding point if the fall is read as an exponential approach to its bottom; ``2/3`` and
    ``3/4``, probes of how fast regret changes past the middle.
    """

    def rule(lrs, losses):
        return suggest.descent(lrs, losses, f)

    return rule


def geo_halfway_minimum(lrs, losses):
    """Geometric mean of ``descent`` at 0.5 (halfway down) and fastai ``minimum`` (LR of the minimum / 10)."""
    return float(np.sqrt(suggest.descent(lrs, losses, 0.5) * suggest.minimum(lrs, losses)))


def blend(f: float):
    """``suggest.blend`` at fraction ``f``: the geometric mean of ``descent`` at ``f`` and a tenth of
    the main fall's bottom LR (fastai's ``minimum`` without the divergence tail).

    Round 2 of the choice of the default: ``descent`` alone (round 1) landed low on the held-out
    architectures, where ``minimum`` did better; on the MLP tasks the reverse held under SGD. The
    mean in log LR hedges between two readings with different failure modes.
    """

    def rule(lrs, losses):
        return suggest.blend(lrs, losses, f)

    return rule


def _fall_slope(lrs, losses):
    """``(lrs, start, slopes)``: loss slope against log LR from the fall's start to its bottom
    (``slopes`` None when the fall has fewer than three points)."""
    lrs_a, losses_a = _prepare(lrs, losses)
    start, bottom, _ = _fall(lrs_a, losses_a)
    if bottom - start < 2:
        return lrs_a, start, None
    return lrs_a, start, np.gradient(losses_a[start : bottom + 1], np.log(lrs_a[start : bottom + 1]))


def steepest_in_fall(lrs, losses):
    """The LR of the steepest fall of loss against log LR, between the fall's start and its bottom."""
    lrs_a, start, g = _fall_slope(lrs, losses)
    if g is None:
        return float(lrs_a[start])
    return float(lrs_a[start + int(np.argmin(g))])


def steep_upper(lrs, losses):
    """The last LR of the fall where the slope is still at least half the steepest slope."""
    lrs_a, start, g = _fall_slope(lrs, losses)
    if g is None:
        return float(lrs_a[start])
    k = int(np.argmin(g))
    steep_enough = g[k:] <= 0.5 * g[k]
    last = k + (int(np.argmin(steep_enough)) - 1 if not steep_enough.all() else len(steep_enough) - 1)
    return float(lrs_a[start + last])


def steepest_wide(lrs, losses):
    """The LR of the steepest fall in the main fall, the slope taken as a secant across a span of a
    fifth of the fall's width in log LR (from its 10% to its 90% point), so one noisy step cannot win."""
    lrs_a, losses_a = _prepare(lrs, losses)
    start, bottom, level = _fall(lrs_a, losses_a)
    a = _first_below(losses_a, start, bottom, level, 0.1)
    b = _first_below(losses_a, start, bottom, level, 0.9)
    x = np.log(lrs_a)
    half = max((x[b] - x[a]) / 10, 1e-12)
    idx = np.arange(start, bottom + 1)
    lo = np.searchsorted(x, x[idx] - half).clip(start, bottom)
    hi = (np.searchsorted(x, x[idx] + half, side="right") - 1).clip(start, bottom)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(hi > lo, (losses_a[hi] - losses_a[lo]) / (x[hi] - x[lo]), 0.0)
    return float(lrs_a[idx[int(np.argmin(slope))]])


def log_mid_10_90(lrs, losses):
    """Geometric middle of the LRs where the fall is 10% and 90% done (the centre of the fall in log LR)."""
    lrs_a, losses_a = _prepare(lrs, losses)
    start, bottom, level = _fall(lrs_a, losses_a)
    a = lrs_a[_first_below(losses_a, start, bottom, level, 0.1)]
    b = lrs_a[_first_below(losses_a, start, bottom, level, 0.9)]
    return float(np.sqrt(a * b))


def log_mid_fall(lrs, losses):
    """Geometric middle of the fall's start LR (where the reading begins) and its bottom LR."""
    lrs_a, losses_a = _prepare(lrs, losses)
    start, bottom, _ = _fall(lrs_a, losses_a)
    return float(np.sqrt(lrs_a[start] * lrs_a[bottom]))


def bottom_over_10(lrs, losses):
    """``suggest.bottom`` / 10 (divergence tail excluded), clipped into range: ``minimum`` on ``_fall``."""
    lrs_a, _ = _prepare(lrs, losses)
    return float(max(suggest.bottom(lrs, losses) / 10, lrs_a.min()))


CANDIDATES = {
    "fraction f=0.45": fraction(0.45),
    "halfway (f=0.5)": fraction(0.5),
    "descent f=0.55": fraction(0.55),
    "fraction f=0.6": fraction(0.6),
    "fraction f=1-1/e": fraction(1 - 1 / np.e),
    "fraction f=2/3": fraction(2 / 3),
    "fraction f=0.75": fraction(0.75),
    "geo(halfway, minimum)": geo_halfway_minimum,
    "blend f=0.5": blend(0.5),
    "blend f=0.55": blend(0.55),
    "blend f=0.6 (default)": blend(0.6),
    "steepest in fall": steepest_in_fall,
    "upper end of steep part": steep_upper,
    "steepest in fall, wide secant": steepest_wide,
    "log-middle of 10%..90%": log_mid_10_90,
    "log-middle start..bottom": log_mid_fall,
    "fall bottom / 10": bottom_over_10,
}


def _fits(args: tuple) -> tuple[str, dict[str, list[tuple[float, float]]], int]:
    """In a worker: every candidate's (lr, metric) on each run of one (task, optimizer) pair."""
    task_name, opt, runs = args
    torch.set_num_threads(1)
    task = T.ALL_TASKS[task_name]
    arrays, cache = task.arrays(), Cache(task, opt)
    out, n_fit = {}, 0
    for name, rule in CANDIDATES.items():
        for run in runs:
            c = run["curve"]
            lr = rule(np.asarray(c["lrs"]), np.asarray(c["smoothed"]))
            value, new = cache.fit(task, arrays, run["seed"], opt, lr)
            n_fit += new
            out.setdefault(name, []).append((lr, value))
    return f"{task_name}/{opt}", out, n_fit


def _gap(d: np.ndarray) -> str:
    return f"{d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(len(d)):.2f}" if len(d) > 1 else "n/a"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.regret.candidates", description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=RESULTS,
                   help="folder with the regret.json of a full run; candidates.md and regret.md go there too")
    p.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 8), help="worker processes")
    args = p.parse_args(argv)
    results = args.results
    raw = json.loads((results / "regret.json").read_text())["raw"]
    seeds = [run["seed"] for run in next(iter(raw.values()))["runs"]]
    tune = set(seeds[: len(seeds) // 2])  # the first half (issue tasks: where round 1 chose a fraction)
    cls = {k: r for k, r in raw.items() if not T.ALL_TASKS[r["task"]].regression}
    t0 = time.perf_counter()
    jobs = [(r["task"], r["opt"], [{"seed": run["seed"], "curve": run["curve"]} for run in r["runs"]])
            for r in cls.values()]
    if args.jobs <= 1:
        done = {key: (out, n) for key, out, n in map(_fits, jobs)}
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            done = {key: (out, n) for key, out, n in pool.map(_fits, jobs)}
    n_fit = sum(n for _, n in done.values())
    rows: dict[str, dict[str, list]] = {}
    floor: dict[str, list[float]] = {}
    for key, r in cls.items():
        grid, metric = np.asarray(r["grid"]), np.asarray(r["grid_metric"])
        mean = metric.mean(0)
        tied = np.flatnonzero(mean >= mean.max() - 1e-12)
        b = int(tied[0])
        step = float(np.log10(grid[1] / grid[0]))
        floor.setdefault(r["opt"], []).append(100 * float(np.mean(metric[:, b] - metric.max(1))))
        peer_reg = {p: [100 * (metric[i, b] - run["metric"][p]) for i, run in enumerate(r["runs"])]
                    for p in PEERS}
        for name, picks in done[key][0].items():
            for i, (run, (lr, got)) in enumerate(zip(r["runs"], picks, strict=True)):
                lg = np.log10(lr / grid[tied])
                j = int(np.argmin(np.abs(lg)))
                row = rows.setdefault(f"{r['opt']}|{name}", {})
                row.setdefault(r["task"], []).append(100 * (metric[i, b] - got))
                row.setdefault("dist", []).append(float(abs(lg[j])))
                row.setdefault("signed", []).append(float(lg[j]))
                row.setdefault("tune", []).append(run["seed"] in tune)
                for p in PEERS:
                    row.setdefault(f"vs {p}", []).append(100 * (metric[i, b] - got) - peer_reg[p][i])
        for p in PEERS:
            row = rows.setdefault(f"{r['opt']}|peer {p}", {})
            row.setdefault(r["task"], []).extend(peer_reg[p])
    print(f"{n_fit} new fits in {time.perf_counter() - t0:.0f}s")
    lo, hi = min(seeds), max(seeds)
    mid = max(tune)
    lines = [
        "## Candidates tried", "",
        "Candidate default rules, each a pure function of (lrs, smoothed losses) with no per-task or "
        "per-optimizer constant, evaluated on the curves and seeds above without being made rules "
        "(`nice .venv/bin/python -m bench.regret.candidates`, code and rationale in "
        "`bench/regret/candidates.py`). Columns: mean regret per classification task (points), mean over "
        "them, hit rate, worst |log10| distance and signed median log10 on classification, and the "
        "paired difference in regret from the best peer (mean ± standard error over seeds x tasks; "
        f"negative: the candidate is better), on all {len(seeds)} seeds, on seeds {lo}-{mid} (on the "
        "issue's tasks: where round 1 chose `descent`'s fraction, see bench/README.md) and on seeds "
        f"{mid + 1}-{hi}. Oracle floor (best grid LR per seed, chosen with hindsight): " + ", ".join(
            f"{opt} {np.mean(v):.2f}" for opt, v in floor.items()) + " points.", ""]
    met: dict[str, list[bool]] = {}
    gaps: list[float] = []
    for opt in T.OPTIMIZERS:
        if f"{opt}|peer {PEERS[0]}" not in rows:
            continue
        names = list(rows[f"{opt}|peer {PEERS[0]}"])  # the classification tasks run, in order
        peers = {p: np.mean([np.mean(v) for t, v in rows[f"{opt}|peer {p}"].items()]) for p in PEERS}
        best = min(peers, key=peers.get)
        lines += [f"### {opt} (best peer: {best}, {peers[best]:.2f})", "",
                  f"| candidate | {' | '.join(names)} | mean cls | hit | worst | median log10 "
                  f"| vs best peer | seeds {lo}-{mid} | seeds {mid + 1}-{hi} | four goals met here |",
                  "|---|" + "---|" * (len(names) + 10)]
        for name in CANDIDATES:
            row = rows[f"{opt}|{name}"]
            regs = [np.mean(row[t]) for t in names]
            d = np.asarray(row[f"vs {best}"])
            in_tune = np.asarray(row["tune"])
            hit = 100 * np.mean([x <= step + 1e-9 for x in row["dist"]])
            ok = max(regs) <= 1.0 and hit >= 60 and max(row["dist"]) <= 1.0 and np.mean(regs) < peers[best]
            lines.append(
                f"| {name} | " + " | ".join(f"{x:.2f}" for x in regs) + f" | {np.mean(regs):.2f} | "
                f"{hit:.0f}% | {max(row['dist']):.2f} | {np.median(row['signed']):+.2f} | "
                f"{_gap(d)} | {_gap(d[in_tune])} | {_gap(d[~in_tune])} | {'yes' if ok else 'no'} |")
            met.setdefault(name, []).append(ok)
            if max(regs) <= 1.0 and hit >= 60 and max(row["dist"]) <= 1.0:
                gaps.append(abs(d.mean()) / max(d.std(ddof=1) / np.sqrt(len(d)), 1e-12) if d.any() else 0.0)
        lines.append("")
    both = [name for name, oks in met.items() if all(oks)]
    gap = (f"Where a candidate meets the other three goals, its gap to the best peer is at most "
           f"{max(gaps):.1f} standard errors.") if gaps else ""
    lines += [f"Meets all four goals under every optimizer run: {', '.join(both) or 'none'}. {gap}", ""]
    md = "\n".join(lines)
    (results / "candidates.md").write_text(md)
    regret_md = results / "regret.md"
    text = regret_md.read_text()
    head, sep, tail = text.partition("## Candidates tried")
    if sep:  # replace the section, up to the next top-level section
        nxt = tail.find("\n## ", 1)
        tail = tail[nxt + 1 :] if nxt >= 0 else ""
    else:
        head, sep, tail = text.partition("## lrrange's re-implementations")
        tail = sep + tail
    regret_md.write_text(head + md.strip() + "\n\n" + tail)
    print(md)


if __name__ == "__main__":
    main()
