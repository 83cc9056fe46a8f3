"""hpcopt: one MPI program for scientific optimization campaigns.

Sweeps (multi-start chi-squared fitting), parallel tempering and asynchronous
hyperparameter optimization, with results in HDF5.  Importing this package does
not import MPI: the runtime in :mod:`hpcopt.mpi` initialises it on first use, so
the analysis API (:mod:`hpcopt.report`) works on a laptop without an MPI library.
"""

__version__ = "0.1.0"
