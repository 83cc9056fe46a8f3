"""Population-based training under mpiexec: lineage, checkpoints, resume after a kill."""

import json
import signal

import numpy as np
import pytest

from hpctest import REPO, kill_group, read_table, run, start, wait_for_rows

pytestmark = pytest.mark.mpi


def config(tmp_path, max_steps=40):
    text = (REPO / "examples" / "hpo-pbt.toml").read_text().replace(
        "max_steps = 40", f"max_steps = {max_steps}")
    path = tmp_path / "pbt.toml"
    path.write_text(text)
    return path


def finished(path):
    rows = read_table(path, "trials")
    return rows[rows["status"] != 0]


def test_pbt_population_exploits_and_records_lineage(tmp_path):
    run(["hpo", config(tmp_path)], n=3, check=True, timeout=300)
    rows = finished(tmp_path / "pbt.h5")
    assert set(rows["member"]) == set(range(6))
    last = {m: rows[rows["member"] == m]["end_step"].max() for m in range(6)}
    assert set(last.values()) == {40}                        # every member trained to the end
    exploits = rows[rows["parent_member"] >= 0]
    assert len(exploits) >= 1                                # someone copied a better member
    assert (exploits["parent_member"] != exploits["member"]).all()
    assert set(rows["rank"]) <= {1, 2}
    # checkpoints next to the result file; only the latest of each member is kept
    ckpt = tmp_path / "pbt_pbt"
    assert ckpt.is_dir()
    report = json.loads(run(["report", tmp_path / "pbt.h5", "--json"], check=True).stdout)
    assert report["status"] == "complete" and "lr" in report["best"]["params"]


def test_pbt_resume_after_kill_continues_every_member(tmp_path):
    cfg = config(tmp_path, max_steps=200)
    proc = start(["hpo", cfg], n=3)
    try:
        wait_for_rows(tmp_path / "pbt.h5", "trials", 12, timeout=120)
    finally:
        kill_group(proc, signal.SIGKILL)
        proc.wait(timeout=30)
    before = finished(tmp_path / "pbt.h5")
    assert len(before) >= 12
    run(["hpo", cfg, "--resume"], n=2, check=True, timeout=300)
    after = finished(tmp_path / "pbt.h5")
    by_id = {int(r["task_id"]): r for r in after}
    for r in before:                                          # nothing recorded is lost
        assert by_id[int(r["task_id"])]["objective"] == r["objective"]
    for m in range(6):                                        # every member reached the end
        assert after[after["member"] == m]["end_step"].max() == 200
    assert np.isfinite(after["objective"]).all()


def test_report_plots_include_the_pbt_lineage(tmp_path):
    run(["hpo", config(tmp_path, max_steps=20)], n=2, check=True, timeout=300)
    run(["report", tmp_path / "pbt.h5", "--plots", tmp_path / "plots"], check=True)
    png = tmp_path / "plots" / "pbt_lineage.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
