# ---- launcher "srun" (jobs/launch-srun.bash): SLURM starts every rank of the step ----
# {{srun_options}} is the process-management interface the MPI library speaks (MPICH:
# pmi2); --kill-on-bad-exit: a rank that dies ends the step, the others do not wait for it.
LAUNCH=(srun {{srun_options}} --kill-on-bad-exit=1
        ${SLURM_CPUS_PER_TASK:+--cpus-per-task=$SLURM_CPUS_PER_TASK})
# ---- end of launcher ----
