"""The range test under fastai's distributed training: 2 ranks on CPU (gloo), launched by torchrun.

``distributed_worker.py`` runs one rank; each rank reports to a JSON file. The
data are skewed so that rank 1's loss alone would trip the divergence check at
the third step: only the cross-rank loss average keeps the ranks in step.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import distributed_worker as worker
import numpy as np
import pytest
from fastai.data.load import DataLoader
from fastai.distributed import DistributedDL

from lrrange import distributed
from lrrange.smoothing import ema

WORKER = Path(worker.__file__)


def _kill(pid: int) -> None:
    """SIGKILL ``pid`` if it is still one of our worker processes."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if WORKER.name.encode() in cmdline:
        os.kill(pid, signal.SIGKILL)


def start(out: Path, mode: str, pg_timeout: float) -> subprocess.Popen:
    """Launch the worker on 2 ranks with torchrun, its output going to ``out/log``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(out), mode, str(pg_timeout)]  # fmt: skip
    with open(out / "log", "w") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def finish(proc: subprocess.Popen, out: Path, limit: float) -> int | None:
    """Wait for a launch; its exit code, or None if it ran past ``limit`` seconds.

    torchrun and each worker run in sessions of their own, so after torchrun's
    process group the surviving workers are killed by the PIDs they wrote.
    """
    try:
        return proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    finally:
        for pid_file in out.glob("pid*"):
            _kill(int(pid_file.read_text()))


def reports(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) if p.exists() else {} for p in (out / "rank0.json", out / "rank1.json")]


def first_divergence(losses) -> int | None:
    """The step at which LRRange's divergence rule would stop on ``losses`` alone."""
    smoothed = ema(losses)
    best = np.minimum.accumulate(smoothed)
    hits = np.nonzero(smoothed[1:] > 4.0 * best[:-1])[0]
    return int(hits[0]) + 1 if len(hits) else None


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[int | None, Path]]:
    """Both launches at once (the negative control mostly waits): mode -> (exit code, output dir)."""
    modes = {"sync": 30, "unsync": 10}  # process-group timeout, s
    outs = {mode: tmp_path_factory.mktemp(f"ddp_{mode}") for mode in modes}
    procs = {mode: start(outs[mode], mode, timeout) for mode, timeout in modes.items()}
    return {mode: (finish(procs[mode], outs[mode], limit=120), outs[mode]) for mode in modes}


@pytest.fixture(scope="module")
def synced(runs) -> list[dict]:
    rc, out = runs["sync"]
    ranks = reports(out)
    assert rc == 0 and all(r.get("done") for r in ranks), (out / "log").read_text()[-4000:]
    return ranks


def test_ranks_stop_at_the_same_step_with_identical_averaged_losses(synced):
    r0, r1 = (r["range"] for r in synced)
    assert first_divergence(r1["local_losses"]) == worker.BAD_BATCH  # rank 1 alone would stop here
    assert r0["stop_reason"] == r1["stop_reason"] == "completed"
    assert r0["losses"] == r1["losses"] and r0["lrs"] == r1["lrs"]
    assert len(r0["val_losses"]) == worker.NUM_IT // 8 and r0["val_losses"] == r1["val_losses"]
    # each step's loss is the batch-size-weighted mean over ranks (equal batches here)
    mean = (np.array(r0["local_losses"]) + np.array(r1["local_losses"])) / 2
    np.testing.assert_allclose(r0["losses"], mean, rtol=1e-6)


def test_the_loss_average_is_weighted_by_batch_size(synced):
    assert [r["world_size"] for r in synced] == [2, 2]
    assert [r["weighted_mean"] for r in synced] == [pytest.approx(50 / 30)] * 2


def test_num_it_counts_per_rank_batches_so_the_test_reaches_end_lr(synced):
    for r in synced:
        lrs = r["range"]["lrs"]
        assert len(lrs) == worker.NUM_IT  # 9 per-rank batches an epoch, 18 unsharded
        assert lrs[0] == pytest.approx(worker.START_LR) and lrs[-1] == pytest.approx(worker.END_LR)


def test_every_rank_is_restored_and_a_distributed_fit_one_cycle_trains(synced):
    for r in synced:
        assert r["range"]["restored"]
        assert r["fit_one_cycle"]["trained"] and np.isfinite(r["fit_one_cycle"]["losses"]).all()
    assert synced[0]["fit_one_cycle"]["losses"] == synced[1]["fit_one_cycle"]["losses"]


def test_only_rank0_plots_and_every_rank_has_the_result(synced):
    assert [r["range_test"]["steps"] for r in synced] == [8, 8]
    assert [r["range_test"]["figures"] for r in synced] == [1, 0]


def test_onecycle_and_cyclical_schedules_match_on_every_rank(synced):
    r0, r1 = synced
    assert r0["OneCycle"] == r1["OneCycle"] and r0["Cyclical"] == r1["Cyclical"]
    np.testing.assert_allclose(r0["OneCycle"], r0["fit_one_cycle"]["lrs"], rtol=1e-6)
    assert len(r0["OneCycle"]) == 2 * 9 and len(r0["Cyclical"]) == 9  # per-rank batches
    assert max(r0["Cyclical"]) == pytest.approx(1e-2) and r0["Cyclical"][-1] == pytest.approx(1e-3)


def test_negative_control_an_unsynchronised_stop_hangs_until_the_timeout(runs):
    rc, out = runs["unsync"]
    r0, r1 = reports(out)
    assert rc != 0
    assert r1["range"]["stop_reason"] == "diverged" and len(r1["range"]["lrs"]) == worker.BAD_BATCH + 1
    assert "range" not in r0  # rank 0 never got out of its range test
    # rank 0 waits in DDP's gradient all-reduce; gloo times out or sees rank 1's next collective
    assert re.search(r"Timed out|collective mismatch|Connection reset", (out / "log").read_text())


@pytest.mark.parametrize("n", [129, 130, 200, 1152])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sharded_len_is_the_number_of_batches_distributed_dl_yields(n, drop_last):
    dl = DataLoader(list(range(n)), bs=64, drop_last=drop_last)
    for rank in (0, 1):
        ddl = DistributedDL(dl, rank=rank, world_size=2)
        ddl._broadcast = lambda t, rank: t  # one process: nothing to broadcast
        assert sum(1 for _ in ddl) == distributed.sharded_len(dl, 2)


def test_no_collective_outside_distributed_training(make_learner, monkeypatch):
    def fail(*args):
        raise AssertionError("mean_loss called without distributed training")

    monkeypatch.setattr(distributed, "mean_loss", fail)
    learn = make_learner()
    assert not distributed.is_distributed(learn) and distributed.world_size() == 1 and distributed.is_rank0()
    res = learn.range_test(num_it=10, show_plot=False)
    assert len(res) == 10


def test_sharded_len_rejects_a_bad_rank_count():
    with pytest.raises(ValueError, match="n_ranks"):
        distributed.sharded_len(DataLoader(list(range(10)), bs=4), 0)
