import sys
from pathlib import Path

# make tests/hpctest.py (shared helpers) and tests/objectives importable from every test folder
TESTS = Path(__file__).resolve().parent
for p in (TESTS, TESTS / "objectives"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def pytest_xdist_make_scheduler(config, log):
    """make test runs on pytest-xdist workers (-n 2): every test goes to whichever worker is
    free, except the SLURM tests, which share one worker (their session fixtures start one
    cluster at a time on this machine). A scheduler of our own, because xdist's loadgroup
    does not group under pytest 9 (it renames items through an attribute pytest 9 no
    longer reads)."""
    from xdist.scheduler import LoadScopeScheduling

    class SlurmTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/slurm" if nodeid.startswith("tests/slurm/") else nodeid

    return SlurmTogether(config, log)
