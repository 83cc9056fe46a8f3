"""Progress on rank 0 only, a log file next to the results, --quiet and --verbose."""

import pytest

from hpctest import run, write_config

CFG = """
[objective]
function = "testobj:slow"
[parameters]
x = { min = -1.0, max = 1.0, points = 10 }
y = { min = -1.0, max = 1.0, points = 3 }
[local]
method = "none"
[run]
chunk_size = 1
[output]
path = "o.h5"
"""


@pytest.mark.mpi
def test_status_lines_in_batch_logs_and_log_file(tmp_path):
    cfg = write_config(tmp_path / "c.toml", CFG)
    proc = run(["sweep", cfg], n=3, check=True, HPCOPT_STATUS_INTERVAL="0.2",
               TESTOBJ_SLEEP="0.05")
    lines = [l for l in proc.stderr.splitlines() if "sweep:" in l and "done" in l]
    assert lines, proc.stderr
    assert "/30 done" in lines[-1] and "/s, best" in lines[-1] and "ETA" in lines[-1]
    assert "[rank" not in proc.stderr                      # only rank 0 talks
    log = (tmp_path / "o.h5.log").read_text()
    assert "30/30 done" in log and "results in" in log


def test_quiet_and_verbose(tmp_path):
    cfg = write_config(tmp_path / "c.toml", CFG)
    quiet = run(["sweep", cfg, "-q"], check=True, HPCOPT_STATUS_INTERVAL="0",
                TESTOBJ_SLEEP="0")
    assert quiet.stderr == "" and "best:" in quiet.stdout
    verbose = run(["sweep", cfg, "--force", "-v"], n=2, check=True, TESTOBJ_SLEEP="0")
    assert "workers ready" in verbose.stderr and "[rank 1]" in verbose.stderr
