import sys
from pathlib import Path

# make hpo_helpers importable from the test modules of this folder
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
