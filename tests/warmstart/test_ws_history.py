"""The fit history: round trip, record decoding, dedupe, foreign files, concurrent appends."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpcopt.errors import DataError
from hpcopt.warmstart import history as hist
from hpcopt.warmstart.history import add_fit, load_history, read_records

REPO = Path(__file__).resolve().parents[2]


def test_round_trip_to_arrays(tmp_path):
    path = tmp_path / "h" / "history.h5"   # the directory is created
    names = ("D0", "alpha")
    for i, (T, c) in enumerate([(20.0, 0.1), (30.0, 0.2), (40.0, 0.3)]):
        rid = add_fit(path, "xpcs:homodyne", names, {"temperature": T, "concentration": c,
                                                    "sample": "silica"},
                      [1000.0 * (i + 1), -0.5 + 0.1 * i], chi2=100.0 + i, chi2_reduced=1.0 + i,
                      source=f"run{i}.h5")
        assert rid == i
    add_fit(path, "nist:Misra1a", ("b1", "b2"), {}, [240.0, 5.5e-4], chi2=0.12)
    h = load_history(path, "xpcs:homodyne")
    assert len(h) == 3 and h.param_names == names
    assert h.condition_names == ("concentration", "temperature")   # strings are not inputs
    np.testing.assert_array_equal(h.params, [[1000.0, -0.5], [2000.0, -0.4], [3000.0, -0.3]])
    np.testing.assert_array_equal(h.conditions, [[0.1, 20.0], [0.2, 30.0], [0.3, 40.0]])
    np.testing.assert_array_equal(h.chi2, [100.0, 101.0, 102.0])
    np.testing.assert_array_equal(h.chi2_reduced, [1.0, 2.0, 3.0])
    assert h.sources == ("run0.h5", "run1.h5", "run2.h5")
    # parameter order is the caller's
    h2 = load_history(path, "xpcs:homodyne", ("alpha", "D0"))
    np.testing.assert_array_equal(h2.params[:, 1], h.params[:, 0])
    assert len(load_history(path, "nist:Misra1a")) == 1
    assert len(load_history(path, "xpcs:heterodyne")) == 0
    recs = read_records(path)
    assert recs[0]["conditions"]["sample"] == "silica" and recs[3]["model"] == "nist:Misra1a"
    # readable with plain h5py, no hpcopt
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == hist.FORMAT
        row = f["fits"][0]
        assert json.loads(row["params"])["D0"] == 1000.0
    assert not list(tmp_path.glob("h/.*.tmp"))   # no temporary files left


def test_missing_conditions_are_nan_and_missing_file_is_empty(tmp_path):
    path = tmp_path / "history.h5"
    assert read_records(path) == [] and len(load_history(path, "m")) == 0
    add_fit(path, "m", ("a",), {"T": 1.0}, [1.0], 1.0)
    add_fit(path, "m", ("a",), {"T": 2.0, "c": 5.0}, [2.0], 1.0)
    h = load_history(path, "m")
    assert h.condition_names == ("T", "c")
    assert np.isnan(h.conditions[0, 1]) and h.conditions[1, 1] == 5.0


def test_same_source_is_recorded_once(tmp_path):
    path = tmp_path / "history.h5"
    a = add_fit(path, "m", ("a",), {}, [1.0], 1.0, source="r.h5", source_created="2024-01-01")
    b = add_fit(path, "m", ("a",), {}, [1.0], 1.0, source="r.h5", source_created="2024-01-01")
    c = add_fit(path, "m", ("a",), {}, [1.0], 1.0, source="r.h5", source_created="2024-02-01")
    assert a == b != c and len(read_records(path)) == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"best_params": [1.0, 2.0]}, "2 best parameters"),
    ({"best_params": [np.nan]}, "finite"),
    ({"chi2": np.inf}, "chi2 must be finite"),
    ({"conditions": {"T": [1, 2]}}, "condition 'T'"),
    ({"conditions": {"T": np.nan}}, "condition 'T' must be finite"),
])
def test_bad_records_are_refused(tmp_path, kwargs, match):
    args = {"model": "m", "param_names": ("a",), "conditions": {}, "best_params": [1.0],
            "chi2": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        add_fit(tmp_path / "history.h5", **args)
    assert not (tmp_path / "history.h5").exists()


def test_foreign_file_is_a_data_error(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(DataError, match="not an hpcopt fit history") as err:
        load_history(path, "m")
    assert str(path) in str(err.value)
    with pytest.raises(DataError):
        add_fit(path, "m", ("a",), {}, [1.0], 1.0)
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="cannot read"):
        read_records(tmp_path / "junk.h5")


_WRITER = textwrap.dedent("""
    import sys
    from hpcopt.warmstart.history import add_fit
    path, who = sys.argv[1], int(sys.argv[2])
    for k in range(5):
        add_fit(path, "m", ("a", "b"), {"T": float(who), "k": float(k)}, [who, k], 1.0,
                source=f"w{who}-{k}")
""")


def test_concurrent_appends_from_processes_lose_nothing(tmp_path):
    path = tmp_path / "history.h5"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(w)], env=env)
             for w in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    recs = read_records(path)
    assert len(recs) == 20
    assert sorted(r["record_id"] for r in recs) == list(range(20))
    assert sorted(r["source"] for r in recs) == sorted(f"w{w}-{k}" for w in range(4) for k in range(5))
    for r in recs:   # every record intact
        assert r["params"] == {"a": r["conditions"]["T"], "b": r["conditions"]["k"]}


def test_threads_in_one_process_are_serialised(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    path = tmp_path / "history.h5"
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: add_fit(path, "m", ("a",), {"i": i}, [i], 1.0), range(12)))
    assert sorted(r["params"]["a"] for r in read_records(path)) == list(range(12))


def test_a_held_lock_times_out_with_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "history.h5"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(path) + '.lock'!r}, os.O_RDWR | os.O_CREAT)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(hist, "LOCK_TIMEOUT", 0.2)
        with pytest.raises(DataError, match="held the lock"):
            add_fit(path, "m", ("a",), {}, [1.0], 1.0)
    finally:
        holder.kill()
        holder.wait()
    add_fit(path, "m", ("a",), {}, [1.0], 1.0)   # free again once the holder is gone
    assert len(read_records(path)) == 1
