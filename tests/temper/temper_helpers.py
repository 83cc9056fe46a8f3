"""Shared helpers of the tempering tests: configs from TOML text, runs at W simulated ranks."""

from __future__ import annotations

import tomllib

import numpy as np

from hpcopt.temper import (SequentialCollective, TemperCampaign, ThreadedWorld, make_problem,
                           parse_temper_config)
from hpcopt.tomlread import Table


def config_from_toml(text: str, source: str = "pt.toml", base_dir=None):
    root = Table(tomllib.loads(text), "", source)
    return parse_temper_config(root, source, base_dir)


def run_world(config, seed: int, world_size: int, *, checkpoint=None, rounds=None,
              stop_at=None, problem=None):
    """Run a campaign on `world_size` simulated ranks (0: SequentialCollective).

    Returns (records, samples, summary, checkpoint) from rank 0, after asserting
    that every rank produced the same records.  `rounds` limits the rounds run;
    `stop_at` = (rank, round): that rank asks to stop before that round's end.
    """
    problem = problem or make_problem(config.problem, config.source)

    def body(rank, owned, collective):
        camp = TemperCampaign(config, problem, seed=seed, owned=owned, collective=collective,
                              checkpoint=checkpoint)
        records, samples = [], []
        target = config.rounds if rounds is None else camp.round + rounds
        status = "complete"
        while camp.round < target:
            ask = stop_at is not None and rank == stop_at[0] and camp.round == stop_at[1]
            out = camp.run_round(stop_requested=ask)
            records.append(out.record)
            if out.sample is not None:
                samples.append(out.sample)
            if out.stop:
                status = "interrupted"
                break
        ck = camp.checkpoint()
        summary = camp.summary()
        cat = (lambda rows, dt: np.concatenate(rows) if rows else np.zeros(0, dt))
        return (cat(records, camp.record_dtype), cat(samples, camp.sample_dtype), summary, ck,
                status)

    if world_size == 0:
        results = [body(0, range(config.n_replicas), SequentialCollective())]
    else:
        results = ThreadedWorld(config.n_replicas, world_size).run(body)
    first = results[0]
    for other in results[1:]:
        assert other[0].tobytes() == first[0].tobytes()
        assert other[4] == first[4]
    return first
