"""Parallel tempering (replica exchange): the policy, with no MPI inside.

The command driver builds one :class:`TemperCampaign` per rank for the replicas
that rank owns, with a collective offering ``allgather`` and ``to_root`` (see
collective.py); everything else (moves, exchanges, ladder, statistics, log Z,
checkpoints, extending a campaign) lives here.
"""

from ..lazy import lazy_names

# the names of the package, imported from their modules on first use (PEP 562): importing
# the package alone loads none of its modules
_NAMES = {
    "RoundOutcome": ".campaign",
    "TemperCampaign": ".campaign",
    "TemperSummary": ".campaign",
    "Collective": ".collective",
    "SequentialCollective": ".collective",
    "ThreadedWorld": ".collective",
    "replicas_of_rank": ".collective",
    "TemperConfig": ".config",
    "parse_temper_config": ".config",
    "exchange_rng": ".exchange",
    "exchange_round": ".exchange",
    "Ladder": ".ladder",
    "geometric_ladder": ".ladder",
    "ContinuousProblem": ".problems",
    "IsingProblem": ".problems",
    "make_problem": ".problems",
    "PAIR_DTYPE": "..store.dtypes",
    "REPLICA_DTYPE": "..store.dtypes",
    "SLOT_DTYPE": "..store.dtypes",
    "round_dtype": "..store.dtypes",
    "sample_dtype": "..store.dtypes",
    "thermodynamic_integration": ".stats",
}
__all__ = list(_NAMES)

__getattr__ = lazy_names(__name__, _NAMES)
