"""The result store: layout, in-place rows, resume checks, refusal of foreign files."""

import h5py
import numpy as np
import pytest

from hpcopt.errors import ResultFileError
from hpcopt.mpi.runtime import get_world
from hpcopt.store import schema
from hpcopt.store.dtypes import sweep_dtype
from hpcopt.store.reader import open_result, scan_table
from hpcopt.store.resultfile import ResultStore, TableSpec, check_existing, check_new_output


def make(path, n=10, config_hash="abc"):
    store = ResultStore(get_world(), path, parallel=False)
    store.create(kind="sweep", config_text="x = 1", config_hash=config_hash, seed=3,
                 tables={"tasks": TableSpec(sweep_dtype(2), n, {"param_names": ["a", "b"]})})
    return store


def rows(ids, objective):
    r = schema.empty_rows(sweep_dtype(2), ids)
    r["status"] = schema.OK
    r["objective"] = objective
    return r


def test_layout_and_in_place_rows(tmp_path):
    store = make(tmp_path / "r.h5")
    store.write_rows("tasks", rows([7, 2, 3], [3.0, 1.0, 2.0]))   # any order, gaps
    store.flush()
    # a reader sees the flushed rows while the writer still has the file open
    with open_result(tmp_path / "r.h5") as f:
        assert f.attrs["status"] == "running"
        t = f["tasks"][:]
        assert list(t["task_id"]) == list(range(10))
        assert list(np.flatnonzero(t["status"] == schema.OK)) == [2, 3, 7]
        scan = scan_table(f["tasks"])
        assert scan["counts"]["ok"] == 3 and scan["counts"]["pending"] == 7
        assert int(scan["best_row"]["task_id"]) == 2
    store.close("complete")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert f.attrs["kind"] == "sweep" and f.attrs["status"] == "complete"
        assert f.attrs["format_version"] == schema.FORMAT_VERSION
        assert f["tasks"].dtype.names[0] == "task_id"
        assert h5py.check_enum_dtype(f["tasks"].dtype["status"]) == schema.STATUS_NAMES


def test_resume_checks(tmp_path):
    make(tmp_path / "r.h5").close("interrupted")
    attrs, table_attrs = check_existing(tmp_path / "r.h5", kind="sweep", main_table="tasks")
    assert attrs["seed"] == 3 and table_attrs["param_names"] == '["a", "b"]'
    with pytest.raises(ResultFileError, match="not 'hpo'"):
        check_existing(tmp_path / "r.h5", kind="hpo", main_table="trials")
    with pytest.raises(ResultFileError, match="no 'trials' table"):
        check_existing(tmp_path / "r.h5", kind="sweep", main_table="trials")
    with pytest.raises(ResultFileError, match="does not exist"):
        check_existing(tmp_path / "missing.h5", kind="sweep", main_table="tasks")


def test_newer_foreign_truncated_files_are_refused(tmp_path):
    make(tmp_path / "new.h5").close("complete")
    with h5py.File(tmp_path / "new.h5", "r+") as f:
        f.attrs["format_version"] = schema.FORMAT_VERSION + 1
        f.attrs["hpcopt_version"] = "99.0"
    with pytest.raises(ResultFileError, match="newer hpcopt"):
        check_existing(tmp_path / "new.h5", kind="sweep", main_table="tasks")
    with pytest.raises(ResultFileError, match="newer hpcopt"):
        open_result(tmp_path / "new.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["data"] = np.arange(3)
    for fn in (lambda p: check_existing(p, kind="sweep", main_table="tasks"), open_result):
        with pytest.raises(ResultFileError, match="not an hpcopt result file"):
            fn(tmp_path / "foreign.h5")
    make(tmp_path / "t.h5", n=1000).close("complete")
    data = (tmp_path / "t.h5").read_bytes()
    (tmp_path / "t.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(ResultFileError, match="truncated or corrupted"):
        open_result(tmp_path / "t.h5")
    (tmp_path / "text.h5").write_text("not hdf5 at all")
    with pytest.raises(ResultFileError, match="not a readable HDF5 file"):
        check_existing(tmp_path / "text.h5", kind="sweep", main_table="tasks")


def test_new_output_never_overwrites_without_force(tmp_path):
    (tmp_path / "r.h5").write_bytes(b"precious")
    with pytest.raises(ResultFileError, match="--resume"):
        check_new_output(tmp_path / "r.h5", force=False)
    check_new_output(tmp_path / "r.h5", force=True)
    assert (tmp_path / "r.h5").read_bytes() == b"precious"      # checking changes nothing
    check_new_output(tmp_path / "sub" / "dir" / "r.h5", force=False)
    assert (tmp_path / "sub" / "dir").is_dir()


def test_unwritable_output_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        import os
        if os.access(d, os.W_OK):   # root ignores permission bits; use a path under a file
            target = tmp_path / "afile"
            target.write_text("x")
            with pytest.raises(ResultFileError, match="cannot create output directory"):
                check_new_output(target / "r.h5", force=False)
        else:
            with pytest.raises(ResultFileError, match="not writable"):
                check_new_output(d / "r.h5", force=False)
    finally:
        d.chmod(0o700)


def test_full_disk_is_refused_before_any_work(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 20, 10 << 20, 100 << 10))
    with pytest.raises(ResultFileError, match=r"has 0\.1 MiB free; this campaign needs about "
                                              r"9\.\d MiB \(with 4 MiB kept to checkpoint"):
        check_new_output(tmp_path / "r.h5", force=False, needed_bytes=4 << 20)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 40, 0, 1 << 40))
    check_new_output(tmp_path / "r.h5", force=False, needed_bytes=4 << 20)
