"""The regret benchmark runs end to end on a slice (one task, one optimizer, 3 seeds) and caches."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lrrange import suggest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    sys.path.insert(0, str(ROOT))
    try:
        run = importlib.import_module("bench.regret.run")
        candidates = importlib.import_module("bench.regret.candidates")
    finally:
        sys.path.remove(str(ROOT))
    return run, candidates, tmp_path_factory.mktemp("regret")


@pytest.fixture(scope="module")
def first_run(bench):
    run, _, tmp = bench
    mp = pytest.MonkeyPatch()
    mp.setenv("LRRANGE_BENCH_CACHE", str(tmp / "unused"))  # main() points it at --cache
    args = ["--tasks", "breast_cancer", "--opts", "adam", "--seeds", "3", "--jobs", "1",
            "--cache", str(tmp / "cache"), "--out", str(tmp / "out")]
    run.main(args)
    yield args
    mp.undo()


def test_report_and_json(bench, first_run):
    _, _, tmp = bench
    md = (tmp / "out" / "regret.md").read_text()
    assert "## Adam (fastai default)" in md and "## SGD" not in md
    assert f"**lrrange {suggest.DEFAULT}** (default)" in md
    assert "- adam: regret <= 1.0 point on every classification task (breast_cancer" in md
    data = json.loads((tmp / "out" / "regret.json").read_text())
    raw = data["raw"]["breast_cancer/adam"]
    assert len(raw["grid"]) == 12 and np.asarray(raw["grid_metric"]).shape == (3, 12)
    assert data["stats"]["range_tests_run"] == 3
    for r in raw["runs"]:
        curve = r["curve"]
        lrs, smoothed = np.asarray(curve["lrs"]), np.asarray(curve["smoothed"])
        assert r["picks"][f"lrrange {suggest.DEFAULT}"] == suggest.RULES[suggest.DEFAULT](lrs, smoothed)
        peers = {*(f"fastai {n}" for n in suggest.FASTAI_RULES), "torch-lr-finder steepest",
                 "Lightning steepest"}
        assert set(r["picks"]) == {f"lrrange {suggest.DEFAULT}", *peers}
        assert all(0 <= m <= 1 for m in r["metric"].values())  # accuracies
    summary = data["summary"]["breast_cancer/adam"]["rules"][f"lrrange {suggest.DEFAULT}"]
    assert len(summary["regrets"]) == 3 and len(summary["hits"]) == 3
    assert data["agreement"]["curves"] == 3
    assert all(data["agreement"][n] == 3 for n in suggest.FASTAI_RULES)


def test_second_run_reads_every_fit_from_the_cache(bench, first_run):
    run, _, tmp = bench
    first = json.loads((tmp / "out" / "regret.json").read_text())
    run.main(first_run)
    second = json.loads((tmp / "out" / "regret.json").read_text())
    assert second["stats"]["fits_run"] == 0 and second["stats"]["range_tests_run"] == 0
    assert second["raw"] == first["raw"]


def test_candidates_on_the_slice(bench, first_run):
    _, candidates, tmp = bench
    candidates.main(["--results", str(tmp / "out"), "--jobs", "1"])
    md = (tmp / "out" / "candidates.md").read_text()
    assert "### adam (best peer:" in md and "| blend f=0.6 (default) |" in md
    assert "## Candidates tried" in (tmp / "out" / "regret.md").read_text()


def test_every_task_builds_a_learner_whose_model_fits_its_data(bench):
    tasks = importlib.import_module("bench.regret.tasks")  # importable once ``bench`` has run
    assert set(tasks.ALL_TASKS) == set(tasks.TASKS) | set(tasks.HELD_OUT)
    assert not set(tasks.TASKS) & set(tasks.HELD_OUT)
    for task in tasks.ALL_TASKS.values():
        x, y = task.arrays()
        assert len(x) > task.n_train and np.isfinite(x.numpy()).all()
        learn = task.learner((x, y), seed=0, opt="adam")
        xb, yb = learn.dls.one_batch()
        with torch.no_grad():
            out = learn.model(xb)
        assert out.shape == (len(xb), 1 if task.regression else task.n_classes), task.name
        assert np.isfinite(float(learn.loss_func(out, yb))), task.name
