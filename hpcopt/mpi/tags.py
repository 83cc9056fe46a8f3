"""Every message tag of the task farm, in one place (see hpcopt.farm for the protocol)."""

READY = 1      # worker -> coordinator: up, wants tasks (payload: its window, or None)
TASKS = 2      # coordinator -> worker: a batch of tasks (a TaskBatch)
RESULTS = 3    # worker -> coordinator: finished rows and "final" (implicitly: give me more)
REPORT = 4     # worker -> coordinator: an intermediate value of a running task (HPO pruning)
DECISION = 5   # coordinator -> worker: the answer to REPORT (stop the task or go on)
STOP = 6       # coordinator -> worker: no more tasks; send the final rows and leave
STOP_REQUEST = 7   # worker -> coordinator: this rank got SIGTERM/SIGUSR1 (payload: the signal)
