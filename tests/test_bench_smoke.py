"""The overhead benchmark runs end to end in its tiny setting; no timing is asserted."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "overhead.py"


@pytest.fixture(scope="module")
def overhead():
    spec = importlib.util.spec_from_file_location("bench_overhead", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def report(overhead, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("bench") / "overhead.md"
    overhead.main(["--quick", "--out", str(out)])
    return out.read_text()


def section(report: str, k: int) -> str:
    return report.split(f"## ({k})")[1].split("\n## ")[0]


def rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]


def test_every_section_reports_finite_ratios(report):
    assert "CPUs: " in report and "fastai 2.8" in report and "torch-lr-finder" in report
    for k in (1, 2, 3, 4):
        body = rows(section(report, k))
        assert body, f"section {k} has no rows"
        for row in body:
            ratios = re.findall(r"\*\*([0-9.]+)\*\*", " | ".join(row))
            assert ratios and all(float(r) > 0 for r in ratios), row


def test_contenders_ran_the_same_number_of_steps(report):
    for row in rows(section(report, 2)):
        ours, theirs = row[-1].split(" / ")
        assert ours == theirs == row[1]


def test_snapshot_section_measures_every_contender_memory(report):
    body = {row[0]: row for row in rows(section(report, 4))}
    assert {"lrrange memory", "fastai save+load"} <= set(body)
    for row in body.values():
        assert float(row[-2]) >= 0 and float(row[-1]) >= 0


def test_suggestion_section_times_every_rule(report, overhead):
    names = {row[0] for row in rows(section(report, 5))}
    assert {f"lrrange {rule}" for rule in overhead.suggest.RULES} <= names
    assert {"fastai valley", "fastai steep", "fastai minimum", "fastai slide"} <= names


def test_range_test_reads_the_loss_only_after_the_optimizer_step(report):
    """On a GPU a read before backward would stall the pipeline; fastai's own loop reads after the step."""
    body = rows(section(report, 6))
    plain = [r[1:] for r in body if r[0] == "plain fit"]
    ours = [r[1:] for r in body if r[0] == "LRRange"]
    assert plain, "fastai's own loop reads the smoothed loss every step (Recorder)"
    extra = [r for r in ours if r not in plain]
    assert all(r[0] in ("after_step", "after_batch") for r in extra), extra
    assert sum(float(r[-1]) for r in extra) <= 1
