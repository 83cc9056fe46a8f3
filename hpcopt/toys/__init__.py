"""Demo objectives and toys: `hpcopt demo`, built-in test objectives (objectives), the PBT
annealing toy (pbt_toy) and its virtual-time simulator (pbt_sim). Nothing here is part of
the campaign machinery; examples and benchmarks use these by name."""
