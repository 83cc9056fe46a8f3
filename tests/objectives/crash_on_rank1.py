"""Importing this module fails on MPI rank 1 only: an error outside any objective call."""

from mpi4py import MPI

if MPI.COMM_WORLD.Get_rank() == 1:
    raise RuntimeError("simulated bug while setting up rank 1")


def f(p):
    return p["x"] ** 2
