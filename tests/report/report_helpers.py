"""Helpers shared by the report tests (fixtures are in conftest.py)."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np

from hpctest import joined_rows
from hpcopt.report.figures import PlotContext
from hpcopt.report.loaded import open_loaded

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == PNG_MAGIC and path.stat().st_size > 1000


def finished_rows(path: Path, table: str) -> np.ndarray:
    """Plain h5py: the rows a report counts (status not pending; written samples), vectors
    joined."""
    with h5py.File(path, "r", locking=False) as f:
        rows = joined_rows(f, table)
        if "status" in rows.dtype.names:
            return rows[rows["status"] != 0]
        if table == "samples":
            return rows[np.isfinite(rows["energy"])]
        return rows


def fake_world():
    """What ResultStore needs of a world for the serial writer (no MPI in this process)."""
    return SimpleNamespace(is_root=True, size=1, rank=0)


def copy_to(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    return dst


def one_figure(path, figure, out_dir):
    """Draw a single figure function the way plot_all does; (written stems, notes)."""
    notes = []
    out_dir.mkdir(exist_ok=True)
    with open_loaded(path) as r:
        ctx = PlotContext(r.f, path, out_dir, notes.append, loaded=r)
        figure(ctx)
    assert all(is_png(p) for p in ctx.written)
    return {p.stem for p in ctx.written}, notes
