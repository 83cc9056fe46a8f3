"""Several HPO result files of one study (array tasks, resumed runs) as one study.

Each array task writes its own file and the study's storage holds every trial; a report
over the files of a study counts each trial once: by study (name and storage, as the
files record them), the distinct trial numbers with a finished row, and the numbers that
more than one file claims (a fault: each trial belongs to the file of the task that ran
it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..store import schema
from .hooks import Loaded


def study_key(r: Loaded) -> tuple[str, str] | None:
    """(study name, storage) of an HPO file, None for other kinds."""
    hpo = r.hooks.details(r) if r.hooks.section == "hpo" else None
    return None if hpo is None else (hpo["study_name"], hpo["storage"])


def finished_trials(r: Loaded) -> np.ndarray:
    """The trial numbers of the file's finished rows."""
    status = r.main.fields("status")[:]
    return np.asarray(r.main.fields("task_id")[:][status != schema.PENDING], dtype=np.int64)


def combine(files: list[tuple[Path, tuple[str, str], np.ndarray]]) -> list[dict]:
    """One entry per study: its name and storage, the files, the trials counted once, and
    the trial numbers found in more than one file."""
    studies: dict[tuple[str, str], dict] = {}
    for path, key, numbers in files:
        entry = studies.setdefault(key, {"study_name": key[0], "storage": key[1],
                                         "files": [], "seen": {}})
        entry["files"].append(str(path))
        for n in numbers.tolist():
            entry["seen"].setdefault(n, []).append(str(path))
    out = []
    for entry in studies.values():
        seen = entry.pop("seen")
        entry["n_trials"] = len(seen)
        entry["in_several_files"] = sorted(n for n, where in seen.items() if len(where) > 1)
        out.append(entry)
    return out


def format_studies(studies: list[dict]) -> list[str]:
    lines = []
    for s in studies:
        lines.append(f"study {s['study_name']!r} in {s['storage']}: {s['n_trials']} trials "
                     f"over {len(s['files'])} file(s), each counted once")
        if s["in_several_files"]:
            several = s["in_several_files"]
            lines.append(f"  warning: trials {several[:10]}{'...' if len(several) > 10 else ''}"
                         " are recorded in more than one file")
    return lines
