"""[resources]: threads and GPU ids per worker rank, checked from what each trial sees;
`hpcopt -n N` re-launch and its refusal inside SLURM."""

import json

import pytest

from hpcopt.errors import ConfigError
from hpcopt.resources import Resources, apply, gpu_ids_for
from hpctest import read_table, run, write_config

STUDY = """
[hpo]
sampler = "random"
n_trials = 12
[objective]
function = "hpoobj:env_probe"
[space]
x = {{ type = "uniform", low = -1.0, high = 1.0 }}
[resources]
{resources}
[output]
path = "s.h5"
"""


def infos(path):
    rows = read_table(path, "trials")
    rows = rows[rows["status"] != 0]
    return [json.loads(r["info_json"]) for r in rows]


@pytest.mark.mpi
def test_each_worker_rank_gets_its_threads_and_own_gpus(tmp_path):
    cfg = write_config(tmp_path / "s.toml", STUDY.format(
        resources="threads = 2\ngpus = 1\ngpus_per_node = 4"))
    run(["hpo", cfg], n=3, check=True)
    seen = infos(tmp_path / "s.h5")
    assert len(seen) == 12
    assert {i["omp"] for i in seen} == {"2"} and {i["openblas"] for i in seen} == {"2"}
    assert {i["numba"] for i in seen} <= {1, 2}
    gpus = {i["rank"]: i["cuda"] for i in seen}
    assert set(gpus) <= {1, 2} and len(set(gpus.values())) == len(gpus)   # never shared
    assert set(gpus.values()) <= {"0", "1"}


@pytest.mark.mpi
def test_gpus_from_the_job_environment_and_oversubscription_refused(tmp_path):
    cfg = write_config(tmp_path / "s.toml", STUDY.format(resources="gpus = 1"))
    run(["hpo", cfg], n=3, check=True, CUDA_VISIBLE_DEVICES="4,6")
    assert {i["cuda"] for i in infos(tmp_path / "s.h5")} <= {"4", "6"}
    proc = run(["hpo", cfg, "--force"], n=3, CUDA_VISIBLE_DEVICES="4", timeout=60)
    assert proc.returncode == 1 and "resources.gpus" in proc.stderr and "share_gpus" in proc.stderr


def test_gpu_assignment_rules():
    env = {"CUDA_VISIBLE_DEVICES": "3,5,7,9"}
    assert gpu_ids_for(Resources(gpus=2), 0, env) == ["3", "5"]
    assert gpu_ids_for(Resources(gpus=2), 1, env) == ["7", "9"]
    with pytest.raises(ConfigError, match="share_gpus"):
        gpu_ids_for(Resources(gpus=2), 2, env)
    assert gpu_ids_for(Resources(gpus=2, share_gpus=True), 2, env) == ["3", "5"]
    assert gpu_ids_for(Resources(gpus=1, gpus_per_node=2), 1, {}) == ["1"]
    with pytest.raises(ConfigError, match="no GPUs"):
        gpu_ids_for(Resources(gpus=1), 0, {})
    out: dict = {}
    assert apply(Resources(threads=3), local_worker=0, env=out)["OMP_NUM_THREADS"] == "3"
    assert out["MKL_NUM_THREADS"] == "3"


SWEEP = """
[objective]
function = "testobj:quadratic"
[parameters]
x = { min = -1.0, max = 1.0, points = 3 }
y = { min = -1.0, max = 1.0, points = 3 }
[local]
method = "none"
[output]
path = "o.h5"
"""


@pytest.mark.mpi
def test_dash_n_relaunches_under_the_bundled_mpiexec(tmp_path):
    cfg = write_config(tmp_path / "c.toml", SWEEP)
    run(["-n", "3", "sweep", cfg], check=True)
    import h5py
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f.attrs["world_size"] == 3
    run(["-n", "auto", "sweep", cfg, "--force"], check=True)


def test_dash_n_is_refused_inside_slurm(tmp_path):
    cfg = write_config(tmp_path / "c.toml", SWEEP)
    proc = run(["-n", "2", "sweep", cfg], SLURM_JOB_ID="123")
    assert proc.returncode == 2 and "srun" in proc.stderr


def test_info_suggests_ranks_and_json(tmp_path):
    out = json.loads(run(["info", "--json"], check=True).stdout)
    assert out["suggestion"]["ranks"] >= 1 and out["mpi"]["world_size"] == 1
    assert out["hdf5"]["mpi"] in (True, False) and out["cpus"]["usable"] >= 1
    slurm = json.loads(run(["info", "--json"], check=True, SLURM_NTASKS="5",
                           SLURM_CPUS_PER_TASK="2").stdout)["suggestion"]
    assert slurm["ranks"] == 5 and slurm["threads_per_rank"] == 2
