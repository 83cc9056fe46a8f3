"""`report` and `--resume` on malformed or crafted result files: exit 2, one message naming
the file and the fault, no traceback, no endless scan (a hard timeout), no huge allocation
(an address-space limit), for every fault of the list in docs/reliability.md."""

import resource
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from hpctest import command, env, run, write_config

SWEEP = """
[objective]
function = "testobj:quadratic"
[parameters]
x = { min = -2.0, max = 2.0, points = 6 }
y = { min = -2.0, max = 2.0, points = 5 }
[local]
method = "none"
[output]
path = "sweep.h5"
"""
TEMPER = """
[temper]
replicas = 3
t_min = 1.0
t_max = 4.0
rounds = 8
exchange_interval = 5
[problem]
name = "ising"
L = 4
[output]
path = "temper.h5"
"""
HPO = """
[hpo]
sampler = "random"
n_trials = 6
[objective]
function = "testobj:quadratic"
[space]
x = { type = "uniform", low = -2.0, high = 2.0 }
y = { type = "uniform", low = -2.0, high = 2.0 }
[output]
path = "hpo.h5"
"""
CONFIGS = {"sweep": SWEEP, "temper": TEMPER, "hpo": HPO}
#: an address-space cap for the readers: a crafted file must not make them allocate more
MEMORY_LIMIT = 6 * 2**30


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One real result file (and its config) per kind, written by the program."""
    root = tmp_path_factory.mktemp("crafted")
    files = {}
    for kind, text in CONFIGS.items():
        cfg = write_config(root / f"{kind}.toml", text)
        run([kind, cfg, "-q"], cwd=root, check=True, timeout=300)
        files[kind] = (cfg, root / f"{kind}.h5")
    return files


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def hpcopt(args, cwd):
    return subprocess.run(command(args, None), cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=120, preexec_fn=limited)


def craft(made, tmp_path, kind, change):
    cfg, base = made[kind]
    path = tmp_path / f"crafted-{kind}.h5"
    shutil.copy(base, path)
    with h5py.File(path, "r+") as f:
        change(f, tmp_path)
    return cfg, path


def assert_refused(proc, path, fault):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hpcopt: error: {path}: "), proc.stderr
    assert fault in lines[0], lines[0]


# -- the crafts ---------------------------------------------------------------------------------

def set_attr(name, value, obj="/"):
    def change(f, _):
        f[obj].attrs[name] = value
    return change


def replace_table(name, make):
    """Replace table `name` by make(f, old_rows, old_attrs, tmp_path) (keeping attributes)."""
    def change(f, tmp_path):
        rows, attrs = f[name][()], dict(f[name].attrs)
        del f[name]
        new = make(f, rows, tmp_path)
        if isinstance(new, (h5py.Dataset, h5py.Group)):
            for k, v in attrs.items():
                new.attrs[k] = v
    return change


def without_status(f, rows, _):
    return f.create_dataset("tasks" if "n_eval" in rows.dtype.names else
                            "trials" if "params_json" in rows.dtype.names else "rounds",
                            data=rows[[n for n in rows.dtype.names if n != "status"]])


def huge(f, rows, _):
    name = "tasks" if "n_eval" in rows.dtype.names else "trials"
    return f.create_dataset(name, shape=(2**40,), dtype=rows.dtype, chunks=(1024,),
                            maxshape=(None,))


def external_link(f, rows, tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as other:
        other["tasks"] = rows
    f["tasks"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/tasks")


def soft_link(f, rows, _):
    f["elsewhere"] = rows
    f["tasks"] = h5py.SoftLink("/elsewhere")


def external_storage(f, rows, tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(rows.tobytes())
    return f.create_dataset("tasks", shape=rows.shape, dtype=rows.dtype,
                            external=[(str(raw), 0, h5py.h5f.UNLIMITED)])


def as_trials(f, _):
    """A sweep file relabelled 'hpo' with its table under the hpo name."""
    f["trials"] = f["tasks"][()]
    del f["tasks"]
    f.attrs["kind"] = "hpo"


CASES = {
    "format_version string": ("sweep", set_attr("format_version", "one"),
                              "root attribute 'format_version' is a string"),
    "world_size string": ("sweep", set_attr("world_size", "two"),
                          "root attribute 'world_size' is a string ('two'), expected an integer"),
    "seed string": ("hpo", set_attr("seed", "x"), "root attribute 'seed' is a string"),
    "seed float": ("temper", set_attr("seed", 1.5), "root attribute 'seed' is float"),
    "sweep table without status": ("sweep", replace_table("tasks", without_status),
                                   "table 'tasks' has no 'status' column"),
    "hpo table without status": ("hpo", replace_table("trials", without_status),
                                 "table 'trials' has no 'status' column"),
    "temper table without status": ("temper", replace_table("rounds", without_status),
                                    "table 'rounds' has no 'status' column"),
    "group for a table": ("sweep", replace_table("tasks", lambda f, r, _: f.create_group("tasks")),
                          "'tasks' is a group where the sweep table 'tasks' belongs"),
    "temper group for a table": ("temper", replace_table(
        "rounds", lambda f, r, _: f.create_group("rounds")), "'rounds' is a group"),
    "kind temper on a sweep layout": ("sweep", set_attr("kind", "temper"),
                                      "has no 'rounds' table"),
    "kind sweep on an hpo layout": ("hpo", set_attr("kind", "sweep"), "has no 'tasks' table"),
    "hpo kind, sweep columns": ("sweep", as_trials, "table 'trials' has no 'state' column"),
    "array-valued kind": ("sweep", set_attr("kind", np.array([b"sweep", b"hpo"])),
                          "root attribute 'kind' is an array of shape (2,)"),
    "unknown kind": ("sweep", set_attr("kind", "fit"), "root attribute 'kind' is 'fit'"),
    "non-numeric best": ("sweep", set_attr("objective", "low", "best"),
                         "best attribute 'objective' is a string ('low'), expected a number"),
    "hpo non-numeric best": ("hpo", set_attr("objective", "low", "best"),
                             "best attribute 'objective' is a string"),
    "best params not JSON": ("sweep", set_attr("params", "{x: 1", "best"),
                             "best attribute 'params'"),
    "2^40 declared rows": ("sweep", replace_table("tasks", huge),
                           "'tasks' declares 1099511627776 rows"),
    "hpo 2^40 declared rows": ("hpo", replace_table("trials", huge),
                               "'trials' declares 1099511627776 rows"),
    "external link": ("sweep", replace_table("tasks", external_link),
                      "'/tasks' is an external link"),
    "soft link": ("sweep", replace_table("tasks", soft_link), "'/tasks' is a soft link"),
    "external raw storage": ("sweep", replace_table("tasks", external_storage),
                             "'/tasks' keeps its data in an external file"),
    "config nested too deep": ("sweep", set_attr("config", "a = " + "[" * 5000 + "]" * 5000),
                               "root attribute 'config' is not valid TOML (tables or arrays "
                               "nested deeper than 32 levels)"),
    "param_names not matching x": ("sweep", set_attr("param_names", '["a", "b", "c"]', "tasks"),
                                   "'param_names' has 3 entries for 2 parameters"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_file_is_refused_by_report_and_resume(made, tmp_path, case):
    kind, change, fault = CASES[case]
    cfg, path = craft(made, tmp_path, kind, change)
    assert_refused(hpcopt(["report", path], tmp_path), path, fault)
    assert_refused(hpcopt(["report", path, "--json", "--export", tmp_path / "x"], tmp_path),
                   path, fault)
    resumed = hpcopt([kind, cfg, "--resume", "-o", path], tmp_path)
    assert resumed.returncode == 2 and "Traceback" not in resumed.stderr, resumed.stderr
    assert f"hpcopt: error: {path}: " in resumed.stderr


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_the_real_files_pass_under_the_same_limits(made, tmp_path, kind):
    cfg, path = made[kind]
    proc = hpcopt(["report", path, "--export", tmp_path / "x"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert hpcopt([kind, cfg, "--resume", "-q", "-o", path], tmp_path).returncode == 0


def test_table_shorter_than_the_config_is_refused_on_resume(made, tmp_path):
    cfg, path = craft(made, tmp_path, "sweep", replace_table(
        "tasks", lambda f, rows, _: f.create_dataset("tasks", data=rows[:12])))
    assert hpcopt(["report", path], tmp_path).returncode == 0     # a valid, shorter file
    proc = hpcopt(["sweep", cfg, "--resume", "-o", path], tmp_path)
    assert_refused(proc, path, "table 'tasks' has 12 rows but the config defines 30 tasks")
    cfg, path = craft(made, tmp_path, "temper", replace_table(
        "rounds", lambda f, rows, _: f.create_dataset("rounds", data=rows[:5])))
    proc = hpcopt(["temper", cfg, "--resume", "-o", path], tmp_path)
    assert_refused(proc, path, "table 'rounds' has 5 rows but the config defines 8 tasks")
