import sys
from pathlib import Path

# make tests/hpctest.py (shared helpers) and tests/objectives importable from every test folder
TESTS = Path(__file__).resolve().parent
for p in (TESTS, TESTS / "objectives"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
