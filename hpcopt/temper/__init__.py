"""Parallel tempering (replica exchange): the policy, with no MPI inside.

The command driver builds one :class:`TemperCampaign` per rank for the replicas
that rank owns, with a collective offering ``allgather`` and ``to_root`` (see
collective.py); everything else (moves, exchanges, ladder, statistics, log Z,
checkpoints, extending a campaign) lives here.
"""

from .campaign import RoundOutcome, TemperCampaign, TemperSummary
from .collective import Collective, SequentialCollective, ThreadedWorld, replicas_of_rank
from .config import TemperConfig, parse_temper_config
from .exchange import exchange_rng, exchange_round
from .ladder import Ladder, geometric_ladder
from .problems import ContinuousProblem, IsingProblem, make_problem
from .stats import (PAIR_DTYPE, REPLICA_DTYPE, SLOT_DTYPE, round_dtype, sample_dtype,
                    thermodynamic_integration)

__all__ = ["TemperCampaign", "TemperSummary", "RoundOutcome", "Collective", "SequentialCollective",
           "ThreadedWorld", "replicas_of_rank", "TemperConfig", "parse_temper_config",
           "exchange_round", "exchange_rng", "Ladder", "geometric_ladder", "ContinuousProblem",
           "IsingProblem", "make_problem", "round_dtype", "sample_dtype", "PAIR_DTYPE",
           "REPLICA_DTYPE", "SLOT_DTYPE", "thermodynamic_integration"]
