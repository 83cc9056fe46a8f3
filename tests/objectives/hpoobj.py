"""HPO objectives for the tests (importable as `hpoobj:NAME`)."""

import os
import time


def quad(params):
    return (params["x"] - 1.0) ** 2 + (params["y"] + 2.0) ** 2


def curve(params, report):
    """A learning curve: loss decays towards (x - 1)^2; bad x are visibly bad early."""
    final = (params["x"] - 1.0) ** 2
    value = final + 10.0
    for step in range(1, 21):
        value = final + 10.0 / step
        if report(step, value):
            return value            # pruned: hpcopt records the trial as pruned
        time.sleep(float(os.environ.get("HPOOBJ_SLEEP", "0.005")))
    return value


def sometimes_fails(params):
    if params["x"] > 2.0:
        raise RuntimeError(f"diverged at x = {params['x']:.3f}")
    return quad(params)


_calls = {"n": 0}


def one_slow(params):
    """The first trial on MPI rank 1 takes 3 s, every other 0.05 s (no generation barrier)."""
    from mpi4py import MPI
    _calls["n"] += 1
    first_on_rank_1 = MPI.COMM_WORLD.Get_rank() == 1 and _calls["n"] == 1
    time.sleep(3.0 if first_on_rank_1 else 0.05)
    return quad(params)


def slow_quad(params):
    time.sleep(float(os.environ.get("HPOOBJ_SLEEP", "0.05")))
    return quad(params)


def env_probe(params):
    """Reports the environment a trial sees (threads, GPUs) as extra info."""
    import numba
    from mpi4py import MPI
    return {"value": float(params["x"]) ** 2, "omp": os.environ.get("OMP_NUM_THREADS"),
            "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "numba": numba.get_num_threads(),
            "rank": MPI.COMM_WORLD.Get_rank()}
