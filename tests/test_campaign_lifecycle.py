"""The one lifecycle: what --resume accepts for every kind, extensions, -o and companion
files, --force and study storage, kinds recorded in the file (docs/architecture.md)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from hpctest import assert_same_rows, read_table, run, write_config

SWEEP = """
# a sweep over a plain objective
[objective]
function = "testobj:quadratic"
[parameters]
x = {{ min = -1.0, max = 1.0, points = 5 }}
y = {{ min = -1.0, max = 1.0, points = 3 }}
[search]
method = "{method}"
{samples}
[local]
method = "none"
[run]
seed = {seed}
[output]
path = "o.h5"
"""

TEMPER = """
[temper]
replicas = 3
t_min = 1.0
t_max = 4.0
exchange_interval = {interval}
rounds = 6
[problem]
name = "ising"
L = 4
[run]
seed = 2
[output]
path = "pt.h5"
"""

HPO = """
[hpo]
sampler = "{sampler}"
n_trials = {n}
{extra}
[objective]
function = "hpoobj:quad"
[space]
x = {{ type = "uniform", low = -5.0, high = 5.0 }}
y = {{ type = "uniform", low = -5.0, high = 5.0 }}
[run]
seed = 5
[output]
path = "study.h5"
"""


def sweep_cfg(d, method="grid", samples="", seed=0):
    return write_config(d / "c.toml", SWEEP.format(method=method, samples=samples, seed=seed))


def ok_rows(path, table):
    rows = read_table(path, table)
    return rows[rows["status"] != 0]


# -- what --resume accepts --------------------------------------------------------------------

def reformatted(text: str) -> str:
    """The same campaign: comments, blank lines, other key order, [output] and [slurm] keys."""
    lines = ["# rewritten by hand", ""] + [ln + "   # note" if "=" in ln and "[" not in ln[:1]
                                           and '"""' not in ln else ln for ln in text.splitlines()]
    return "\n".join(lines) + "\n[slurm]\ntime = \"00:10:00\"\n"


@pytest.mark.parametrize("kind", ["sweep", "temper", "hpo"])
def test_comments_layout_output_and_slurm_keys_never_block_resume(tmp_path, kind):
    text = {"sweep": SWEEP.format(method="grid", samples="", seed=0),
            "temper": TEMPER.format(interval=5),
            "hpo": HPO.format(sampler="random", n=6, extra="")}[kind]
    cfg = write_config(tmp_path / "c.toml", text)
    run([kind, cfg], check=True)
    write_config(cfg, reformatted(text))
    proc = run([kind, cfg, "--resume"])
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("kind, old, new, key", [
    ("sweep", "points = 3", "points = 4", "parameters.y.points (3 -> 4)"),
    ("sweep", "seed = 0", "seed = 1", "run.seed (0 -> 1)"),
    ("temper", "exchange_interval = 5", "exchange_interval = 6",
     "temper.exchange_interval (5 -> 6)"),
    ("hpo", 'sampler = "random"', 'sampler = "tpe"', "hpo.sampler ('random' -> 'tpe')"),
    ("hpo", "high = 5.0 }\ny", "high = 6.0 }\ny", "space."),
])
def test_any_other_change_is_refused_naming_the_key(tmp_path, kind, old, new, key):
    text = {"sweep": SWEEP.format(method="grid", samples="", seed=0),
            "temper": TEMPER.format(interval=5),
            "hpo": HPO.format(sampler="random", n=6, extra="")}[kind]
    cfg = write_config(tmp_path / "c.toml", text)
    run([kind, cfg], check=True)
    assert old in text
    write_config(cfg, text.replace(old, new))
    proc = run([kind, cfg, "--resume"])
    assert proc.returncode == 2
    assert key in proc.stderr and "--resume needs the campaign" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- extending a campaign ---------------------------------------------------------------------

@pytest.mark.parametrize("method", ["random", "sobol"])
def test_more_samples_continue_the_same_design(tmp_path, method):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    cfg = sweep_cfg(a, method, "samples = 8")
    run(["sweep", cfg], check=True)
    first = ok_rows(a / "o.h5", "tasks")
    write_config(cfg, SWEEP.format(method=method, samples="samples = 12", seed=0))
    proc = run(["sweep", cfg, "--resume"], check=True)
    assert "12 ok" in proc.stdout
    extended = ok_rows(a / "o.h5", "tasks")
    assert len(extended) == 12
    assert_same_rows(extended[:8], first)                   # finished rows untouched
    run(["sweep", sweep_cfg(b, method, "samples = 12")], check=True)
    fresh = ok_rows(b / "o.h5", "tasks")
    np.testing.assert_array_equal(extended["x0"], fresh["x0"])
    np.testing.assert_array_equal(extended["objective"], fresh["objective"])


def test_an_lhs_design_cannot_be_extended_and_says_why(tmp_path):
    cfg = sweep_cfg(tmp_path, "lhs", "samples = 8")
    run(["sweep", cfg], check=True)
    write_config(cfg, SWEEP.format(method="lhs", samples="samples = 12", seed=0))
    proc = run(["sweep", cfg, "--resume"])
    assert proc.returncode == 2
    assert "search.samples" in proc.stderr and "lhs design" in proc.stderr
    fewer = SWEEP.format(method="lhs", samples="samples = 4", seed=0)
    write_config(cfg, fewer)
    proc = run(["sweep", cfg, "--resume"])
    assert proc.returncode == 2 and "may only grow" in proc.stderr


def test_a_larger_n_trials_continues_the_study(tmp_path):
    cfg = write_config(tmp_path / "c.toml", HPO.format(sampler="random", n=6, extra=""))
    run(["hpo", cfg], check=True)
    first = ok_rows(tmp_path / "study.h5", "trials")
    write_config(cfg, HPO.format(sampler="random", n=10, extra=""))
    run(["hpo", cfg, "--resume"], check=True)
    rows = ok_rows(tmp_path / "study.h5", "trials")
    assert sorted(rows["task_id"].tolist()) == list(range(10))
    assert np.array_equal(rows[:6]["params_json"], first["params_json"])
    assert len(set(rows["params_json"].tolist())) == 10         # no point evaluated twice


# -- the file's recorded form and kind ----------------------------------------------------------

def test_files_without_a_canonical_config_are_compared_by_their_config_text(tmp_path):
    cfg = sweep_cfg(tmp_path)
    run(["sweep", cfg], check=True)
    with h5py.File(tmp_path / "o.h5", "r+") as f:        # as an earlier hpcopt wrote it
        del f.attrs["config_canonical"]
        del f.attrs["campaign"]
    write_config(cfg, reformatted(SWEEP.format(method="grid", samples="", seed=0)))
    assert run(["sweep", cfg, "--resume"]).returncode == 0
    write_config(cfg, SWEEP.format(method="grid", samples="", seed=3))
    proc = run(["sweep", cfg, "--resume"])
    assert proc.returncode == 2 and "run.seed (0 -> 3)" in proc.stderr


def test_the_kind_is_recorded_and_read_from_attributes(tmp_path):
    from hpcopt.campaign.registry import of_file
    assert of_file({"kind": "sweep"}).name == "sweep"
    assert of_file({"kind": "hpo"}, {"scheduler": "pbt"}).name == "pbt"     # format 1 PBT
    assert of_file({"kind": "hpo", "campaign": "pbt"}).name == "pbt"
    assert of_file({"kind": "hpo"}, {"scheduler": "optuna"}).name == "hpo"
    from hpcopt.errors import ResultFileError
    with pytest.raises(ResultFileError, match="not a string"):
        of_file({"kind": np.array(["sweep", "hpo"])})
    with pytest.raises(ResultFileError, match="unknown campaign kind 'anneal'"):
        of_file({"kind": "anneal"})
    cfg = sweep_cfg(tmp_path)
    run(["sweep", cfg], check=True)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f.attrs["campaign"] == "sweep" and f.attrs["kind"] == "sweep"
        canonical = json.loads(f.attrs["config_canonical"])
    assert canonical["parameters"]["y"]["points"] == 3 and canonical["run"]["seed"] == 0


# -- the study follows the result file ----------------------------------------------------------

def test_o_puts_the_journal_log_and_lock_next_to_the_result_file(tmp_path):
    cfg = write_config(tmp_path / "c.toml", HPO.format(sampler="random", n=4, extra=""))
    out = tmp_path / "elsewhere" / "mine.h5"
    proc = run(["hpo", cfg, "-o", out], check=True, cwd=tmp_path)
    assert (out.parent / "mine.h5.journal").exists() and (out.parent / "mine.h5.log").exists()
    assert not (tmp_path / "study.h5.journal").exists() and not (tmp_path / "study.h5").exists()
    assert str(out.parent / "mine.h5.journal") in proc.stdout
    with h5py.File(out, "r") as f:
        assert f["trials"].attrs["study_name"] == "mine"
    # a relative -o is taken from the current directory
    run(["hpo", cfg, "-o", "rel/r.h5"], check=True, cwd=tmp_path)
    assert (tmp_path / "rel" / "r.h5.journal").exists()


def test_force_replaces_its_own_journal_but_never_a_named_study(tmp_path):
    cfg = write_config(tmp_path / "c.toml", HPO.format(sampler="random", n=4, extra=""))
    run(["hpo", cfg], check=True)
    run(["hpo", cfg, "--force"], check=True)
    assert len(ok_rows(tmp_path / "study.h5", "trials")) == 4      # a fresh study of 4 trials
    shared = HPO.format(sampler="random", n=4,
                        extra='storage = "shared.journal"\nstudy_name = "shared"')
    write_config(cfg, shared)
    run(["hpo", cfg, "-o", "a.h5"], check=True, cwd=tmp_path)
    before = (tmp_path / "shared.journal").read_bytes()
    proc = run(["hpo", cfg, "-o", "b.h5", "--force"], cwd=tmp_path)
    assert proc.returncode == 2 and "already has 4 trial(s)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "b.h5").exists()
    assert (tmp_path / "shared.journal").read_bytes() == before      # untouched


def test_resume_refuses_a_missing_or_foreign_study(tmp_path):
    cfg = write_config(tmp_path / "c.toml", HPO.format(sampler="random", n=4, extra=""))
    run(["hpo", cfg], check=True)
    journal = tmp_path / "study.h5.journal"
    kept = journal.read_bytes()
    journal.unlink()
    proc = run(["hpo", cfg, "--resume"])
    assert proc.returncode == 2 and "is not in" in proc.stderr
    # another campaign's study under the same name and storage
    other = tmp_path / "other"
    other.mkdir()
    ocfg = write_config(other / "c.toml", HPO.format(sampler="random", n=2, extra=""))
    run(["hpo", ocfg], check=True)
    journal.write_bytes((other / "study.h5.journal").read_bytes())
    proc = run(["hpo", cfg, "--resume"])
    assert proc.returncode == 2 and "does not hold trials [2, 3]" in proc.stderr
    journal.write_bytes(kept)
    assert run(["hpo", cfg, "--resume"]).returncode == 0


def test_parameters_that_do_not_match_the_model_are_refused_before_any_work(tmp_path):
    from hpctest import NIST
    cfg = write_config(tmp_path / "c.toml", f"""
[model]
name = "nist:Misra1a"
[data]
path = "{NIST / 'Misra1a.dat'}"
[parameters]
b1 = {{ min = 100.0, max = 1000.0, points = 2 }}
c2 = {{ min = 1e-5, max = 1e-2, points = 2 }}
[output]
path = "m.h5"
""")
    proc = run(["sweep", cfg], n=2)
    assert proc.returncode == 2 and proc.stderr.count("hpcopt: error") == 1
    assert "missing b2" in proc.stderr and "not parameters of the model: c2" in proc.stderr
    assert not (tmp_path / "m.h5").exists()


def test_a_report_over_the_files_of_one_study_counts_each_trial_once(tmp_path):
    """Issue 13.5: array tasks write one file each and share a study."""
    import shutil
    cfg = write_config(tmp_path / "c.toml", HPO.format(sampler="random", n=8, extra=""))
    study = ["--storage", str(tmp_path / "s.journal"), "--study-name", "s"]
    run(["hpo", cfg, "-o", "task0.h5", *study], check=True, cwd=tmp_path,
        SLURM_ARRAY_TASK_ID="0")
    write_config(cfg, HPO.format(sampler="random", n=12, extra=""))   # 4 more for task 1
    run(["hpo", cfg, "-o", "task1.h5", *study], check=True, cwd=tmp_path,
        SLURM_ARRAY_TASK_ID="1")
    files = [tmp_path / "task0.h5", tmp_path / "task1.h5"]
    out = json.loads(run(["report", *files, "--json"], check=True).stdout)
    assert [f["n_tasks"] for f in out["files"]] == [8, 4]
    (s,) = out["studies"]
    assert s["study_name"] == "s" and s["n_trials"] == 12 and s["in_several_files"] == []
    text = run(["report", *files], check=True).stdout
    assert "study 's' in" in text and "12 trials over 2 file(s), each counted once" in text
    shutil.copy(files[0], tmp_path / "copy.h5")          # the same trials in two files
    out = json.loads(run(["report", files[0], tmp_path / "copy.h5", "--json"],
                         check=True).stdout)
    assert out["studies"][0]["n_trials"] == 8
    assert out["studies"][0]["in_several_files"] == list(range(8))
