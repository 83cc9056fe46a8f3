"""Progress on rank 0 only, a log file next to the results, --quiet and --verbose."""

import os
import re
import socket

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
    assert "[rank 1 " not in proc.stderr and "[rank 2 " not in proc.stderr  # only rank 0 talks
    log = (tmp_path / "o.h5.log").read_text()
    assert "30/30 done" in log and "results in" in log


def test_quiet_and_verbose(tmp_path):
    cfg = write_config(tmp_path / "c.toml", CFG)
    quiet = run(["sweep", cfg, "-q"], check=True, HPCOPT_STATUS_INTERVAL="0",
                TESTOBJ_SLEEP="0")
    assert quiet.stderr == "" and "best:" in quiet.stdout
    verbose = run(["sweep", cfg, "--force", "-v"], n=2, check=True, TESTOBJ_SLEEP="0")
    assert "workers ready" in verbose.stderr and "[rank 1 " in verbose.stderr


#: every log line starts with date, time (UTC offset) and [rank R HOST]
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} \[rank (\d+) (\S+)\] ")


@pytest.mark.mpi
@pytest.mark.parametrize("n", [1, 2, 3])
def test_log_lines_carry_date_rank_and_host(tmp_path, n):
    cfg = write_config(tmp_path / "c.toml", CFG)
    proc = run(["sweep", cfg, "-v"], n=n, check=True, TESTOBJ_SLEEP="0")
    host = socket.gethostname()
    logged = [line for line in proc.stderr.splitlines() if "hpcopt:" in line]
    assert logged, proc.stderr
    ranks = set()
    for line in logged:
        stamp = STAMP.match(line)
        assert stamp and stamp.group(2) == host, line
        ranks.add(int(stamp.group(1)))
    assert ranks == set(range(n))                 # -v: every rank speaks, each says who it is
    file_lines = (tmp_path / "o.h5.log").read_text().splitlines()
    assert file_lines and all(STAMP.match(line) for line in file_lines), file_lines[:3]
    assert any(" INFO " in line and "results in" in line for line in file_lines)


@pytest.mark.mpi
@pytest.mark.parametrize("n", [1, 2, 3])
def test_log_file_is_never_opened_through_a_planted_symlink(tmp_path, n):
    cfg = write_config(tmp_path / "c.toml", CFG)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "o.h5.log").symlink_to(victim)
    proc = run(["sweep", cfg], n=n, TESTOBJ_SLEEP="0")
    assert proc.returncode == 2, proc.stderr
    assert "o.h5.log: is a symbolic link" in proc.stderr and "Traceback" not in proc.stderr
    assert victim.read_text() == "precious\n"
    (tmp_path / "o.h5.log").unlink()
    os.mkfifo(tmp_path / "o.h5.log")                  # a FIFO must not block the start
    proc = run(["sweep", cfg, "--force"], n=n, TESTOBJ_SLEEP="0", timeout=60)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr, proc.stderr
