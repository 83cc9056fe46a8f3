"""jobs/ templates: rendering, quoting, validation of [slurm], and the batch scripts' own
logic (signal forwarding, --resume, requeue, hostfiles) run with bash and stand-ins for
srun, mpirun, scontrol and hpcopt (no SLURM needed; test_cluster.py runs them for real)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcopt import slurm
from hpcopt.store.resultfile import slurm_ids
from hpcopt.errors import ConfigError, UsageError

def render(write_config, folder: Path, template: str, slurm_table: dict | None,
           kind: str = "hpo", **kw) -> str:
    return slurm.prepare_job(write_config(folder, slurm_table, kind, **kw), template).text


def directives(script: str) -> list[str]:
    return re.findall(r"^#SBATCH (.*)$", script, re.M)


FULL = {"partition": "main", "time": "4:00:00", "mem": "16G", "cpus_per_task": 4, "ntasks": 8,
        "nodes": 2, "gpus": 1,
        "env_setup": ["module load python/3.11", "source /opt/venv/bin/activate"],
        "array": 6, "max_concurrent": 2, "signal_lead": 300, "account": "proj-1", "qos": "normal",
        "extra_sbatch": ["--mail-type=END", "--exclusive"], "job_name": "my run",
        "max_requeue": 2}


# -- rendering -----------------------------------------------------------------------------

@pytest.mark.parametrize("template", ["single", "mpirun", "array"])
@pytest.mark.parametrize("table", [{"array": 3}, FULL], ids=["minimal", "full"])
def test_templates_render_to_valid_bash(tmp_path, template, table, write_config):
    kinds = ["hpo"] if template == "array" else ["hpo", "sweep", "temper"]
    for kind in kinds:
        script = render(write_config, tmp_path, template, table, kind)
        assert "{{" not in script
        path = tmp_path / f"{template}-{kind}.sbatch"
        path.write_text(script)
        proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        # sbatch reads #SBATCH lines only before the first command
        first_command = next(i for i, line in enumerate(script.splitlines())
                             if line.strip() and not line.startswith("#"))
        assert all(i < first_command for i, line in enumerate(script.splitlines())
                   if line.startswith("#SBATCH"))
        assert f" {kind} \"$CONFIG\" -o \"$RESULT\"" in script


def test_signal_directive_and_traps(tmp_path, write_config):
    for template in ("single", "mpirun", "array"):
        script = render(write_config, tmp_path, template, {"array": 2})
        assert "--signal=B:USR1@120" in directives(script)
        assert "trap '_hpcopt_forward USR1' USR1" in script
        assert "trap '_hpcopt_forward TERM' TERM" in script
        script = render(write_config, tmp_path, template,
                        {"array": 2, "signal_lead": 45, "time": 2})
        assert "--signal=B:USR1@45" in directives(script)
        assert "--time=2" in directives(script)


def test_directives_from_the_slurm_table(tmp_path, write_config):
    d = directives(render(write_config, tmp_path, "array", FULL))
    for expected in ("--partition=main", "--time=4:00:00", "--mem=16G", "--cpus-per-task=4",
                     "--ntasks=8", "--nodes=2", "--gres=gpu:1", "--account=proj-1", "--qos=normal",
                     "--mail-type=END", "--exclusive", "--requeue", '--job-name="my run"',
                     "--array=0-5%2", "--open-mode=append", f"--chdir={tmp_path}"):
        assert expected in d
    assert f"--output={tmp_path}/my_run-%A_%a.out" in d
    assert f"--error={tmp_path}/my_run-%A_%a.err" in d
    single = directives(render(write_config, tmp_path, "single", {}))
    assert f"--output={tmp_path}/hpcopt-hpo-study-%j.out" in single
    assert not any(x.startswith(("--partition", "--gres", "--array", "--requeue")) for x in single)
    assert directives(render(write_config, tmp_path, "array", {"array": 4}))[-2] == "--array=0-3"


def test_env_setup_lines_are_inserted_verbatim(tmp_path, write_config):
    lines = ["module load gcc/12 openmpi", 'source "$HOME/my venv/bin/activate"',
             "export A='x y'; echo {{not a placeholder}}"]
    script = render(write_config, tmp_path, "single", {"env_setup": lines})
    assert "\n".join(lines) in script
    script = render(write_config, tmp_path, "single", {"env_setup": "module load a\nmodule load b"})
    assert "module load a\nmodule load b\n" in script


def test_default_hpcopt_is_this_python(tmp_path, write_config):
    script = render(write_config, tmp_path, "single", {})
    assert f"HPCOPT=({os.path.abspath(sys.executable)} -m hpcopt)" in script
    script = render(write_config, tmp_path, "single", {"hpcopt": "/opt/hpc opt/bin/hpcopt --quiet"})
    assert "HPCOPT=(/opt/hpc opt/bin/hpcopt --quiet)" in script
    script = render(write_config, tmp_path, "single", {"hpcopt": ["/opt/hpc opt/bin/hpcopt"]})
    assert "HPCOPT=('/opt/hpc opt/bin/hpcopt')" in script


def test_srun_mpi_type(tmp_path, write_config):
    assert "srun --mpi=pmi2 " in render(write_config, tmp_path, "single", {})
    assert "srun --mpi=pmix " in render(write_config, tmp_path, "single", {"mpi": "pmix"})
    assert "srun  --kill-on-bad-exit=1" in render(write_config, tmp_path, "single", {"mpi": ""})


def test_sbatch_values_are_quoted_for_sbatch(tmp_path, write_config):
    table = {"job_name": 'a "quoted" # name', "extra_sbatch": ['--comment=it is \\ "x"']}
    d = directives(render(write_config, tmp_path / "", "single", table, output="logs %x/out.h5"))
    assert '--job-name="a \\"quoted\\" # name"' in d
    assert '--comment="it is \\\\ \\"x\\""' in d
    assert f'--output="{tmp_path}/logs %%x/a__quoted____name-%j.out"' in d


def test_time_limits(tmp_path):
    cases = {30: 1800, "30": 1800, "1:30": 90, "4:00:00": 14400, "2-0": 172800,
             "1-2:3": (26 * 60 + 3) * 60, "1-2:3:4": (26 * 60 + 3) * 60 + 4, "UNLIMITED": None}
    for text, seconds in cases.items():
        cfg = slurm.parse_slurm_config({"slurm": {"time": text, "signal_lead": 10}}, "x.toml")
        assert cfg.time_seconds == seconds, text


# -- validation ----------------------------------------------------------------------------

BAD = [
    ("time", "abc"), ("time", 0), ("time", "1:2:3:4"), ("time", True), ("mem", "16 G"),
    ("mem", "-5G"), ("mem", 0), ("partition", "a b"), ("partition", "x;rm"), ("account", 3),
    ("cpus_per_task", 0), ("ntasks", "2"), ("nodes", 0), ("gpus", -1), ("array", 0),
    ("max_concurrent", 0), ("signal_lead", 0), ("signal_lead", 70000),
    ("extra_sbatch", "--exclusive"), ("extra_sbatch", ["exclusive"]),
    ("extra_sbatch", ["--a b=1"]), ("extra_sbatch", ["--comment=a\nb"]), ("env_setup", 3),
    ("env_setup", ["ok", 4]), ("hpcopt", ""), ("hpcopt", "'unclosed"), ("hpcopt", [1]),
    ("mpirun", []), ("mpi", "pm i"), ("job_name", "a\nb"), ("job_name", " "),
    ("max_requeue", -1), ("partiton", "main"),
]


@pytest.mark.parametrize("key,value", BAD, ids=[f"{k}={v!r}" for k, v in BAD])
def test_bad_values_name_key_and_file(tmp_path, key, value, write_config):
    config = write_config(tmp_path, {key: value})
    with pytest.raises(ConfigError) as info:
        slurm.prepare_job(config, "single")
    assert info.value.key.startswith(f"slurm.{key.split('[')[0]}")
    assert str(config) in str(info.value)


def test_signal_lead_must_fit_in_the_time_limit(tmp_path, write_config):
    config = write_config(tmp_path, {"time": "2:00", "signal_lead": 120})
    with pytest.raises(ConfigError, match=r"slurm.signal_lead.*120 s"):
        slurm.prepare_job(config, "single")
    assert slurm.prepare_job(write_config(tmp_path, {"time": 3, "signal_lead": 120}), "single")


def test_array_needs_size_and_hpo(tmp_path, write_config):
    with pytest.raises(ConfigError, match="slurm.array"):
        render(write_config, tmp_path, "array", {})
    with pytest.raises(UsageError, match="--template single"):
        render(write_config, tmp_path, "array", {"array": 2}, "sweep")
    # without [hpo] storage the study follows the config's [output] path, which every
    # array task shares (each task writes its own -o result file)
    config = write_config(tmp_path, {"array": 2}, name="nostore.toml")
    config.write_text(config.read_text().replace('storage = "study.journal"\n', ""))
    assert "--array=0-1" in slurm.prepare_job(config, "array").text


def test_unknown_template_and_user_templates(tmp_path, write_config):
    config = write_config(tmp_path, {})
    with pytest.raises(UsageError, match="single, mpirun, array"):
        slurm.prepare_job(config, "nope")
    mine = tmp_path / "mine.sbatch"
    mine.write_text("#!/bin/bash\n{{sbatch_options}}\n{{signal_handling}}\n"
                    "_hpcopt_run_step {{hpcopt}} {{command}} {{config}}\n")
    assert "-m hpcopt hpo " in slurm.prepare_job(config, str(mine)).text
    mine.write_text("#!/bin/bash\n{{no_such_value}}\n")
    with pytest.raises(UsageError, match="no_such_value"):
        slurm.prepare_job(config, str(mine))


def test_command_and_output_from_the_config(tmp_path, write_config):
    for kind in ("hpo", "sweep", "temper"):
        script = render(write_config, tmp_path, "single", {}, kind, output="sub/r.h5")
        assert f" {kind} \"$CONFIG\"" in script
        assert f"RESULT={tmp_path}/sub/r.h5" in script
    config = write_config(tmp_path, None, "sweep", name="noout.toml")
    config.write_text(config.read_text().replace("[output]\npath = \"study.h5\"\n", ""))
    assert "[output]" not in config.read_text()
    assert f"RESULT={tmp_path}/noout.h5" in slurm.prepare_job(config, "single").text
    other = slurm.prepare_job(config, "single", output=tmp_path / "o.h5").text
    assert f"RESULT={tmp_path}/o.h5" in other


# -- the batch scripts' logic, run with bash and stand-ins ---------------------------------

FAKE_SRUN = """#!/bin/bash
printf '%s\\n' "$@" > "$FAKE_LOG/srun.args"
while [ $# -gt 0 ] && [[ $1 == -* ]]; do shift; done
exec "$@"
"""
FAKE_MPIRUN = """#!/bin/bash
if [ "$1" = --version ]; then
    if [ "$FAKE_MPI" = openmpi ]; then echo "mpirun (Open MPI) 5.0.3"
    else echo "HYDRA build details:"; fi
    exit 0
fi
printf '%s\\n' "$@" > "$FAKE_LOG/mpirun.args"
while [ $# -gt 0 ] && [[ $1 == -* ]]; do
    case $1 in -f|--hostfile) cp "$2" "$FAKE_LOG/hostfile"; shift 2;; -n) shift 2;; *) shift;; esac
done
exec "$@"
"""
FAKE_SCONTROL = """#!/bin/bash
echo "$*" >> "$FAKE_LOG/scontrol.calls"
if [ "$1 $2" = "show hostnames" ]; then printf '%s\\n' $FAKE_HOSTS; fi
"""


@pytest.fixture
def fake_bin(tmp_path):
    folder = tmp_path / "fakebin"
    folder.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("mpirun", FAKE_MPIRUN),
                       ("scontrol", FAKE_SCONTROL)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    (tmp_path / "fakelog").mkdir()
    return folder


def start_script(tmp_path, fake_bin, standin, script: str, mode: str, **env) -> subprocess.Popen:
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    e = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    e.update(PATH=f"{fake_bin}:{os.environ['PATH']}", SLURM_JOB_ID="42", SLURM_NTASKS="3",
             SLURM_JOB_NODELIST="node[1-2]", SLURM_TASKS_PER_NODE="2,1",
             FAKE_LOG=str(tmp_path / "fakelog"), FAKE_HOSTS="node1 node2",
             STANDIN_DIR=str(standin.parent.parent / "records"), STANDIN_MODE=mode)
    e.update(env)
    return subprocess.Popen(["bash", str(path)], env=e, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def record(standin: Path, timeout: float = 30) -> dict:
    path = standin.parent.parent / "records" / "42-0.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, "the stand-in never started"
        time.sleep(0.05)
    return json.loads(path.read_text())


def test_quoted_paths_reach_hpcopt_intact(tmp_path, fake_bin, standin, write_config):
    folder = tmp_path / "it's a \"dir\" $HOME"
    folder.mkdir()
    config = write_config(folder, {"hpcopt": [str(standin)]}, output="out put/r $x.h5")
    script = slurm.prepare_job(config, "single").text
    rc, err = finish(start_script(tmp_path, fake_bin, standin, script, "exit"))
    assert rc == 0, err
    rec = record(standin)
    assert rec["argv"] == ["hpo", str(config), "-o", str(folder / "out put" / "r $x.h5")]
    srun_args = (tmp_path / "fakelog" / "srun.args").read_text().split("\n")
    assert srun_args[:3] == ["--mpi=pmi2", "--kill-on-bad-exit=1", str(standin)]


def test_resume_is_automatic_when_the_result_file_exists(tmp_path, fake_bin, standin,
                                                          write_config):
    config = write_config(tmp_path, {"hpcopt": [str(standin)]})
    script = slurm.prepare_job(config, "single").text
    (tmp_path / "study.h5").write_bytes(b"")
    rc, err = finish(start_script(tmp_path, fake_bin, standin, script, "exit"))
    assert rc == 0, err
    assert record(standin)["argv"] == ["hpo", str(config), "-o", str(tmp_path / "study.h5"),
                                       "--resume"]


@pytest.mark.parametrize("template", ["single", "mpirun", "array"])
@pytest.mark.parametrize("sig", ["USR1", "TERM"])
def test_signals_are_forwarded_to_the_step(tmp_path, fake_bin, standin, template, sig,
                                           write_config):
    config = write_config(tmp_path, {"hpcopt": [str(standin)], "array": 2,
                                     "mpirun": [str(fake_bin / "mpirun")]})
    script = slurm.prepare_job(config, template).text
    proc = start_script(tmp_path, fake_bin, standin, script, "wait", SLURM_ARRAY_TASK_ID="1")
    record(standin)                                   # the step runs
    proc.send_signal(getattr(signal, f"SIG{sig}"))    # to the batch shell only, like B:USR1
    rc, err = finish(proc)
    assert rc == 3, err
    assert record(standin)["signal"] == "SIGUSR1"     # TERM is passed on as USR1 (not to srun)
    assert f"SIG{sig} at" in err and "checkpointed" in err
    assert not (tmp_path / "fakelog" / "scontrol.calls").exists() or \
        "requeue" not in (tmp_path / "fakelog" / "scontrol.calls").read_text()


@pytest.mark.parametrize("sig,restarts,requeued", [("USR1", None, True), ("USR1", "1", True),
                                                   ("USR1", "2", False), ("TERM", None, False)])
def test_requeue_after_a_time_limit_stop(tmp_path, fake_bin, standin, sig, restarts, requeued,
                                         write_config):
    config = write_config(tmp_path, {"hpcopt": [str(standin)], "max_requeue": 2})
    script = slurm.prepare_job(config, "single").text
    extra = {"SLURM_RESTART_COUNT": restarts} if restarts else {}
    proc = start_script(tmp_path, fake_bin, standin, script, "wait", **extra)
    record(standin)
    proc.send_signal(getattr(signal, f"SIG{sig}"))
    rc, err = finish(proc)
    assert rc == 3, err
    calls = tmp_path / "fakelog" / "scontrol.calls"
    assert (calls.exists() and "requeue 42" in calls.read_text()) == requeued


def test_a_signal_before_the_step_starts_it_not(tmp_path, fake_bin, standin, write_config):
    config = write_config(tmp_path, {"hpcopt": [str(standin)], "env_setup": "kill -USR1 $$"})
    script = slurm.prepare_job(config, "single").text
    rc, err = finish(start_script(tmp_path, fake_bin, standin, script, "exit"))
    assert rc == 3, err
    assert "before the job step started" in err
    assert not list((tmp_path / "records").glob("*.json"))


def test_step_exit_status_is_the_job_exit_status(tmp_path, fake_bin, standin, write_config):
    config = write_config(tmp_path, {"hpcopt": ["bash", "-c", "exit 7"]})
    rc, err = finish(start_script(tmp_path, fake_bin, standin,
                                  slurm.prepare_job(config, "single").text, "exit"))
    assert rc == 7 and "failed with status 7" in err


@pytest.mark.parametrize("flavor,lines,option", [
    ("hydra", ["node1:2", "node2:1"], "-f"),
    ("openmpi", ["node1 slots=2", "node2 slots=1"], "--hostfile")])
def test_mpirun_hostfile(tmp_path, fake_bin, standin, flavor, lines, option, write_config):
    config = write_config(tmp_path, {"hpcopt": [str(standin)],
                                     "mpirun": [str(fake_bin / "mpirun")]})
    proc = start_script(tmp_path, fake_bin, standin, slurm.prepare_job(config, "mpirun").text,
                        "exit", FAKE_MPI=flavor)
    rc, err = finish(proc)
    assert rc == 0, err
    assert (tmp_path / "fakelog" / "hostfile").read_text().split("\n")[:-1] == lines
    args = (tmp_path / "fakelog" / "mpirun.args").read_text().split("\n")
    assert args[0] == option and args[2:4] == ["-n", "3"]
    assert record(standin)["argv"][:2] == ["hpo", str(config)]


def test_hostfile_expands_compressed_task_counts(tmp_path, fake_bin, standin, write_config):
    config = write_config(tmp_path, {"hpcopt": [str(standin)],
                                     "mpirun": [str(fake_bin / "mpirun")]})
    proc = start_script(tmp_path, fake_bin, standin, slurm.prepare_job(config, "mpirun").text,
                        "exit", FAKE_HOSTS="a b c d", SLURM_TASKS_PER_NODE="4(x3),2")
    assert finish(proc)[0] == 0
    assert (tmp_path / "fakelog" / "hostfile").read_text().split() == ["a:4", "b:4", "c:4", "d:2"]


def test_array_tasks_get_their_own_result_files(tmp_path, fake_bin, standin, write_config):
    config = write_config(tmp_path, {"hpcopt": [str(standin)], "array": 3})
    script = slurm.prepare_job(config, "array").text
    (tmp_path / "study.task2.h5").write_bytes(b"")
    for task in ("0", "2"):
        rc, err = finish(start_script(tmp_path, fake_bin, standin, script, "exit",
                                      SLURM_ARRAY_TASK_ID=task, SLURM_JOB_ID=f"4{task}"))
        assert rc == 0, err
    recs = {r["env"]["SLURM_ARRAY_TASK_ID"]: r["argv"]
            for r in map(json.loads, (p.read_text() for p in
                                      (tmp_path / "records").glob("*.json")))}
    assert recs["0"] == ["hpo", str(config), "-o", str(tmp_path / "study.task0.h5")]
    assert recs["2"] == ["hpo", str(config), "-o", str(tmp_path / "study.task2.h5"), "--resume"]


# -- submit --------------------------------------------------------------------------------

def test_dry_run_prints_the_script(tmp_path, capsys, write_config):
    config = write_config(tmp_path, {"partition": "debug"})
    assert slurm.submit(config, "single", dry_run=True) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/bin/bash") and "#SBATCH --partition=debug" in out
    assert not list(tmp_path.glob("*.sbatch"))


def test_submit_without_sbatch_is_a_usage_error(tmp_path, monkeypatch, write_config):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="sbatch not found.*--dry-run"):
        slurm.submit(write_config(tmp_path, {}), "single")


@pytest.mark.parametrize("ok", [True, False])
def test_submit_calls_sbatch(tmp_path, monkeypatch, capsys, ok, write_config):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text(
        "#!/bin/bash\necho \"$@\" > \"$(dirname \"$0\")/args\"\n" +
        ("echo '4242;cluster'\n" if ok else
         "echo 'sbatch: error: invalid partition' >&2; exit 1\n"))
    (bindir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    config = write_config(tmp_path, {}, output="results/r.h5")
    if ok:
        assert slurm.submit(config, "mpirun") == 0
        assert "Submitted batch job 4242" in capsys.readouterr().out
        script = tmp_path / "study.mpirun.sbatch"
        assert (bindir / "args").read_text().split() == ["--parsable", str(script)]
        assert script.read_text().startswith("#!/bin/bash")
        assert (tmp_path / "results").is_dir()      # for the job's .out/.err files
    else:
        with pytest.raises(UsageError, match="invalid partition"):
            slurm.submit(config, "mpirun")


def test_slurm_ids(monkeypatch):
    for var in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                "SLURM_JOB_NODELIST", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(var, raising=False)
    assert not slurm.in_slurm_allocation() and slurm_ids() == {}
    monkeypatch.setenv("SLURM_JOB_ID", "17")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "15")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "n[1-2]")
    assert slurm.in_slurm_allocation()
    assert slurm_ids() == {"slurm_job_id": "17", "slurm_array_job_id": "15",
                                 "slurm_array_task_id": "2", "slurm_nodelist": "n[1-2]"}


# -- hostfiles/ ----------------------------------------------------------------------------

HOSTFILES = Path(__file__).resolve().parents[2] / "hostfiles"


def test_example_hostfiles_syntax():
    patterns = {"hydra": r"[A-Za-z0-9._-]+:[1-9][0-9]*",
                "openmpi": r"[A-Za-z0-9._-]+ slots=[1-9][0-9]*( max_slots=[1-9][0-9]*)?"}
    files = sorted(HOSTFILES.glob("*.hosts"))
    assert {f.name.split("-")[0] for f in files} == set(patterns)
    for f in files:
        lines = [ln for ln in f.read_text().splitlines() if ln.strip()]
        assert lines[0].startswith("#")                    # every example explains itself
        hosts = [ln for ln in lines if not ln.startswith("#")]
        assert hosts and all(re.fullmatch(patterns[f.name.split("-")[0]], h) for h in hosts), f


def test_localhost_hydra_hostfile_runs_with_the_bundled_mpiexec(tmp_path):
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec next to this Python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PMI_"))}
    proc = subprocess.run([str(mpiexec), "-f", str(HOSTFILES / "hydra-localhost.hosts"), "-n", "2",
                           sys.executable, "-c",
                           "from mpi4py import MPI; print(f'size={MPI.COMM_WORLD.Get_size()}')"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.findall(r"size=(\d+)", proc.stdout) == ["2", "2"]    # lines may interleave


# -- the launcher: srun, the bundled MPICH, or the site's mpirun (issue 15.9) ---------------

def launch_line(script: str) -> str:
    """The LAUNCH=(...) array of a rendered script, as one line."""
    m = re.search(r"^LAUNCH=\((.*?)\)$", script, re.M | re.S)
    assert m, script
    return " ".join(m.group(1).split())


def run_line(script: str) -> str:
    """The line that runs hpcopt (continuation lines joined)."""
    text = script.replace("\\\n", " ")
    return next(" ".join(ln.split()) for ln in text.splitlines()
                if ln.startswith('_hpcopt_run_step "'))


def header(script: str) -> str:
    """The comment block at the top of a rendered script (before the first #SBATCH)."""
    return script.split("#SBATCH", 1)[0]


@pytest.mark.parametrize("template", ["single", "array"])
def test_srun_is_the_default_launcher_of_single_and_array(tmp_path, write_config, template):
    script = render(write_config, tmp_path, template, {"array": 2})
    assert launch_line(script).startswith("srun --mpi=pmi2 --kill-on-bad-exit=1")
    assert "MPIRUN=" not in script
    assert "srun --mpi=pmi2 --kill-on-bad-exit=1: SLURM starts the ranks" in header(script)


@pytest.mark.parametrize("mpi", ["pmix", ""])
def test_the_header_names_the_srun_that_is_rendered(tmp_path, write_config, mpi):
    script = render(write_config, tmp_path, "single", {"mpi": mpi})
    head = header(script)
    assert "pmi2" not in head and "pmi2" not in launch_line(script)
    if mpi:
        assert "srun --mpi=pmix --kill-on-bad-exit=1" in head
        assert launch_line(script).startswith("srun --mpi=pmix ")
    else:
        assert "srun --kill-on-bad-exit=1" in head and "MpiDefault" in head
        assert launch_line(script).startswith("srun --kill-on-bad-exit=1")


def test_bundled_launcher_is_the_mpirun_next_to_this_python(tmp_path, write_config):
    bundled = str(Path(os.path.abspath(sys.executable)).parent / "mpirun")
    for template, table in (("single", {"launcher": "bundled"}), ("mpirun", {})):
        script = render(write_config, tmp_path, template, table)
        assert f"MPIRUN=({bundled})" in script
        assert launch_line(script) == ('"${MPIRUN[@]}" "$HOSTFILE_OPTION" "$HOSTFILE" -n '
                                       '"${SLURM_NTASKS:-1}"')
        assert f"{bundled} -f/--hostfile HOSTFILE" in header(script)
        assert "srun --mpi" not in script


def test_module_launcher_is_the_mpirun_on_path_after_env_setup(tmp_path, write_config):
    script = render(write_config, tmp_path, "single", {"launcher": "module",
                                                       "env_setup": ["module load openmpi"]})
    assert "MPIRUN=(mpirun)" in script
    assert script.index("module load openmpi") < script.index("MPIRUN=(mpirun)")
    assert "the site's MPI, as env_setup put it on PATH" in header(script)
    own = render(write_config, tmp_path, "mpirun", {"mpirun": "/opt/intel/bin/mpiexec.hydra"})
    assert "MPIRUN=(/opt/intel/bin/mpiexec.hydra)" in own      # an mpirun command: module
    assert "launcher \"module\"" in own


@pytest.mark.parametrize("table,key", [({"launcher": "srun"}, "slurm.launcher"),
                                       ({"launcher": "bundled", "mpirun": "mpirun"},
                                        "slurm.mpirun"),
                                       ({"launcher": "ssh"}, "slurm.launcher")])
def test_contradictory_launchers_are_refused(tmp_path, write_config, table, key):
    with pytest.raises(ConfigError) as info:
        slurm.prepare_job(write_config(tmp_path, table), "mpirun")
    assert info.value.key == key


def test_module_launcher_runs_the_sites_mpirun_not_the_venvs(tmp_path, fake_bin, standin,
                                                               write_config):
    """env_setup puts the site's MPI first on PATH (what `module load` does); the job runs
    that mpirun with a hostfile of the allocation."""
    site = tmp_path / "site mpi" / "bin"
    site.mkdir(parents=True)
    (fake_bin / "mpirun").rename(site / "mpirun")
    config = write_config(tmp_path, {"hpcopt": [str(standin)], "launcher": "module",
                                     "env_setup": [f"export PATH='{site}':$PATH"]})
    rc, err = finish(start_script(tmp_path, fake_bin, standin,
                                  slurm.prepare_job(config, "single").text, "exit"))
    assert rc == 0, err
    assert (tmp_path / "fakelog" / "mpirun.args").read_text().split("\n")[2:4] == ["-n", "3"]
    assert (tmp_path / "fakelog" / "hostfile").read_text().split() == ["node1:2", "node2:1"]
    assert not (tmp_path / "fakelog" / "srun.args").exists()
    assert record(standin)["argv"][:2] == ["hpo", str(config)]


def test_module_launcher_without_an_mpirun_stops_before_the_step(tmp_path, fake_bin, standin,
                                                                   write_config):
    (fake_bin / "mpirun").unlink()
    config = write_config(tmp_path, {"hpcopt": [str(standin)], "launcher": "module"})
    tools = tmp_path / "tools"                          # what the script needs, no mpirun
    tools.mkdir()
    for name in ("bash", "env", "mktemp", "grep", "tr", "cat", "rm", "date", "hostname"):
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    env = {"PATH": f"{fake_bin}:{tools}"}
    rc, err = finish(start_script(tmp_path, fake_bin, standin,
                                  slurm.prepare_job(config, "single").text, "exit", **env))
    assert rc == 2 and "mpirun not found on PATH after env_setup" in err
    assert not list((tmp_path / "records").glob("*.json"))


def test_pmix_with_the_bundled_mpich_warns(tmp_path, write_config):
    assert slurm.bundled_mpich(), "this test needs the MPICH wheel (make install)"
    warned = slurm.prepare_job(write_config(tmp_path, {"mpi": "pmix"}), "single").warnings
    assert len(warned) == 1 and "PMI-1" in warned[0] and "mpi = 'pmi2'" in warned[0]
    assert not slurm.prepare_job(write_config(tmp_path, {}), "single").warnings
    other = write_config(tmp_path, {"mpi": "pmix", "hpcopt": "/site/venv/bin/hpcopt"})
    assert not slurm.prepare_job(other, "single").warnings      # another Python, another MPI


def test_module_launcher_with_the_bundled_mpich_warns_unless_mpi4py_is_pointed(
        tmp_path, write_config):
    table = {"launcher": "module", "env_setup": ["module load mpich"]}
    [warned] = slurm.prepare_job(write_config(tmp_path, table), "single").warnings
    assert "MPI4PY_LIBMPI" in warned and "singletons" in warned
    table["env_setup"].append("export MPI4PY_LIBMPI=/opt/mpich/lib/libmpi.so")
    assert not slurm.prepare_job(write_config(tmp_path, table), "single").warnings


def test_submit_prints_the_warnings(tmp_path, capsys, write_config):
    assert slurm.submit(write_config(tmp_path, {"mpi": "pmix"}), "single", dry_run=True) == 0
    err = capsys.readouterr().err
    assert err.count("hpcopt: warning:") == 1 and "slurm.mpi = 'pmix'" in err


# -- threads and GPUs: [resources] (per rank) against [slurm] (per task, per node) ---------

def test_omp_threads_follow_resources_threads(tmp_path, fake_bin, standin, write_config):
    config = write_config(tmp_path, {"hpcopt": [str(standin)], "cpus_per_task": 3},
                          resources={"threads": 3})
    job = slurm.prepare_job(config, "single")
    assert not job.warnings
    assert "export OMP_NUM_THREADS=3\nexport NUMBA_NUM_THREADS=3" in job.text
    rc, err = finish(start_script(tmp_path, fake_bin, standin, job.text, "exit",
                                  OMP_NUM_THREADS="8"))
    assert rc == 0, err
    assert record(standin)["env"]["OMP_NUM_THREADS"] == "3"     # not the caller's 8
    default = slurm.prepare_job(write_config(tmp_path, {}), "single").text
    assert "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}" in default


@pytest.mark.parametrize("cpus", [None, 2])
def test_more_threads_than_cpus_per_task_warns(tmp_path, write_config, cpus):
    table = {} if cpus is None else {"cpus_per_task": cpus}
    [warned] = slurm.prepare_job(write_config(tmp_path, table, resources={"threads": 4}),
                                 "single").warnings
    assert "resources.threads = 4" in warned and "cpus_per_task" in warned
    assert f"share {cpus or 1} CPU(s)" in warned


def test_gpus_per_node_is_the_gres_request(tmp_path, write_config):
    for key in ("gpus_per_node", "gpus"):
        script = render(write_config, tmp_path, "single", {key: 2, "ntasks": 3},
                        resources={"gpus": 1})
        assert "--gres=gpu:2" in directives(script)
    with pytest.raises(ConfigError, match="not both"):
        slurm.prepare_job(write_config(tmp_path, {"gpus": 2, "gpus_per_node": 2}), "single")


@pytest.mark.parametrize("table,kind,ok", [
    ({"ntasks": 3, "gpus_per_node": 2}, "hpo", True),      # coordinator + 2 workers
    ({"ntasks": 4, "gpus_per_node": 2}, "hpo", False),     # 3 workers on one node
    ({"ntasks": 4, "nodes": 2, "gpus_per_node": 2}, "hpo", True),
    ({"ntasks": 5, "nodes": 2, "gpus_per_node": 2}, "hpo", False),   # 3 on the fuller node
    ({"ntasks": 3, "gpus_per_node": 2}, "temper", False),  # every temper rank works
    ({"ntasks": 2, "gpus_per_node": 2}, "temper", True),
])
def test_gpus_per_rank_must_fit_the_gpus_per_node(tmp_path, write_config, table, kind, ok):
    config = write_config(tmp_path, table, kind, resources={"gpus": 1})
    if ok:
        assert slurm.prepare_job(config, "single").text
    else:
        with pytest.raises(ConfigError) as info:
            slurm.prepare_job(config, "single")
        assert info.value.key == "slurm.gpus_per_node" and "resources.gpus = 1" in str(info.value)
    shared = write_config(tmp_path, table, kind, resources={"gpus": 1, "share_gpus": True})
    assert slurm.prepare_job(shared, "single").text             # sharing is allowed


def test_gpus_per_rank_need_gpus_for_the_job(tmp_path, write_config):
    with pytest.raises(ConfigError, match="asks for no GPUs") as info:
        slurm.prepare_job(write_config(tmp_path, {"ntasks": 2}, resources={"gpus": 1}), "single")
    assert info.value.key == "slurm.gpus_per_node"
    site = write_config(tmp_path, {"ntasks": 2, "extra_sbatch": ["--gres=gpu:a100:1"]},
                        resources={"gpus": 1})
    assert slurm.prepare_job(site, "single").text             # the site's own GPU request
    [warned] = slurm.prepare_job(write_config(tmp_path, {"gpus_per_node": 2}), "single").warnings
    assert "every rank sees all of its node's GPUs" in warned


# -- array jobs: what the docs promise ------------------------------------------------------

def test_array_without_storage_or_study_name_names_the_defaults(tmp_path, write_config):
    config = write_config(tmp_path, {"array": 2}, body="""
[hpo]
n_trials = 4
[objective]
function = "m:f"
[space]
x = { type = "uniform", low = 0.0, high = 1.0 }
""")
    script = slurm.prepare_job(config, "array").text
    journal = str(tmp_path / "study.h5.journal")
    assert f"study 'study' in {journal!r}" in header(script)
    # every task writes NAME.taskI.h5, and the study follows the result file: the tasks are
    # told the base result file's study
    assert f"--storage {journal} --study-name study" in run_line(script)
    named = write_config(tmp_path, {"array": 2})                # storage and study_name given
    script = slurm.prepare_job(named, "array").text
    assert "study 's' in 'study.journal'" in header(script)
    assert "--storage" not in run_line(script) and "--study-name" not in run_line(script)


def test_array_with_an_in_memory_study_is_refused(tmp_path, write_config):
    config = write_config(tmp_path, {"array": 2})
    config.write_text(config.read_text().replace('"study.journal"', '"memory"'))
    with pytest.raises(ConfigError) as info:
        slurm.prepare_job(config, "array")
    assert info.value.key == "hpo.storage"
    assert slurm.prepare_job(config, "single").text              # one job: fine


def test_study_names_cannot_break_out_of_the_header(tmp_path, write_config):
    config = write_config(tmp_path, {"array": 2})
    config.write_text(config.read_text().replace('"study.journal"', '"x\\ntouch pwned"'))
    script = slurm.prepare_job(config, "array").text
    assert "touch pwned" not in script
    path = tmp_path / "a.sbatch"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
