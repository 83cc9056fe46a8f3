# ---- time-limit signal and clean stop (jobs/signals.bash, the same in every template) ----
# SLURM sends USR1 to this batch shell {{signal_lead}} s before the time limit
# (--signal=B:USR1@{{signal_lead}}; it may come up to a minute earlier) and TERM on scancel.
# The job step runs in the background so that the trap runs at once and passes the stop
# request on as USR1: srun and mpiexec hand USR1 to every rank, while a TERM to srun makes
# it kill the step at once ("forcing job termination"). hpcopt then checkpoints, marks its
# result file interrupted and exits with status 3. (On scancel the ranks also get TERM from
# SLURM directly, and KillWait seconds before SIGKILL.)
_hpcopt_step_pid=
_hpcopt_signal=
_hpcopt_pending=
_hpcopt_trapped=
_hpcopt_forward() {
    _hpcopt_signal=$1
    _hpcopt_trapped=1
    echo "hpcopt job: SIG$1 at $(date '+%F %T'), asking the job step to stop (USR1)" >&2
    if [ -n "$_hpcopt_step_pid" ]; then
        kill -s USR1 "$_hpcopt_step_pid" 2>/dev/null || true
    else
        _hpcopt_pending=$1
    fi
}
trap '_hpcopt_forward USR1' USR1
trap '_hpcopt_forward TERM' TERM

# Run one job step (srun or mpirun) in the background and wait for it; return its status.
_hpcopt_run_step() {
    # A signal before the step started (e.g. during env_setup): time is up or the job was
    # cancelled, so do not start it (status 3: nothing lost, submit again to continue).
    if [ -n "$_hpcopt_pending" ]; then
        echo "hpcopt job: SIG$_hpcopt_pending came before the job step started; not starting it" >&2
        return 3
    fi
    printf 'hpcopt job: running' >&2; printf ' %q' "$@" >&2; echo >&2
    "$@" &
    _hpcopt_step_pid=$!
    # ... or in the instant between that check and knowing the step's pid.
    if [ -n "$_hpcopt_pending" ]; then kill -s USR1 "$_hpcopt_step_pid" 2>/dev/null; fi
    local rc prev=
    while :; do
        _hpcopt_trapped=
        wait "$_hpcopt_step_pid"; rc=$?
        # A trapped signal makes `wait` return early (status > 128): wait again for the
        # step's own status. 127 on a re-wait: the status was already collected.
        if [ "$rc" -eq 127 ] && [ -n "$prev" ]; then rc=$prev; break; fi
        if [ "$rc" -gt 128 ] && [ -n "$_hpcopt_trapped" ]; then prev=$rc; continue; fi
        break
    done
    _hpcopt_step_pid=
    return "$rc"
}

# Exit with the step's status; after a time-limit stop (status 3 on USR1) requeue the job
# when [slurm] max_requeue allows it: the requeued job resumes from the result file.
_hpcopt_finish() {
    local rc=$1 restarts=${SLURM_RESTART_COUNT:-0}
    if [ "$rc" -eq 3 ]; then
        echo "hpcopt job: campaign stopped by SIG${_hpcopt_signal:-?} and checkpointed;" \
             "submit the job again to continue (--resume is automatic)" >&2
        if [ "$_hpcopt_signal" = USR1 ] && [ "$restarts" -lt {{max_requeue}} ]; then
            echo "hpcopt job: requeueing $SLURM_JOB_ID" \
                 "(restart $((restarts + 1)) of {{max_requeue}})" >&2
            scontrol requeue "$SLURM_JOB_ID"
        fi
    elif [ "$rc" -ne 0 ]; then
        echo "hpcopt job: the job step failed with status $rc" >&2
    fi
    exit "$rc"
}
# ---- end of signals.bash ----
