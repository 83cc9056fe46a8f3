"""Population-based training as an HPO scheduler (``[hpo] scheduler = "pbt"``, docs/pbt.md).

policy (exploit/explore per member, no MPI), config ([hpo.pbt]), explore (perturbation and
resampling), lineage (segment records and the lineage table), runner (one segment on a
worker, checkpoints through ctx.save/ctx.load), campaign (the farm's source and evaluator),
plot (the lineage figure).
"""
