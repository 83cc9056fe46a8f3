"""Every MPI message tag of the task farm, in one place."""

READY = 1      # worker -> coordinator: a worker is up and wants tasks
TASKS = 2      # coordinator -> worker: a chunk of tasks
RESULTS = 3    # worker -> coordinator: finished result rows (and implicitly: give me more)
REPORT = 4     # worker -> coordinator: an intermediate value of a running task (HPO pruning)
DECISION = 5   # coordinator -> worker: the answer to REPORT (stop the task or go on)
STOP = 6       # coordinator -> worker: no more tasks; leave the loop
