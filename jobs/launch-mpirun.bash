# ---- launcher "{{launcher}}" (jobs/launch-mpirun.bash): an mpirun with a hostfile ----
# made from `scontrol show hostnames` and SLURM_TASKS_PER_NODE, in MPICH/Intel hydra
# (`host:n`, -f) or Open MPI (`host slots=n`, --hostfile) syntax, whichever it is.
MPIRUN=({{mpirun}})
if ! command -v "${MPIRUN[0]}" > /dev/null 2>&1; then
    echo "hpcopt job: ${MPIRUN[0]} not found{{mpirun_missing_hint}}" >&2
    exit 2
fi
# One hostfile line per node of the allocation, with its task count
# (SLURM_TASKS_PER_NODE is compressed: "2(x3),1" = 2,2,2,1).
_hpcopt_hostfile() {
    local flavor=$1 item host r i=0 counts=() items
    IFS=, read -ra items <<< "${SLURM_TASKS_PER_NODE:-${SLURM_NTASKS:-1}}"
    for item in "${items[@]}"; do
        if [[ $item =~ ^([0-9]+)\(x([0-9]+)\)$ ]]; then
            for ((r = 0; r < BASH_REMATCH[2]; r++)); do counts+=("${BASH_REMATCH[1]}"); done
        else
            counts+=("$item")
        fi
    done
    while read -r host; do
        [ -n "$host" ] || continue
        local n=${counts[i]:-${counts[${#counts[@]}-1]}}
        i=$((i + 1))
        if [ "$flavor" = openmpi ]; then echo "$host slots=$n"; else echo "$host:$n"; fi
    done < <(scontrol show hostnames "${SLURM_JOB_NODELIST:-$(hostname -s)}")
}
if "${MPIRUN[@]}" --version 2>&1 | grep -qi "open mpi"; then
    MPI_FLAVOR=openmpi; HOSTFILE_OPTION=--hostfile
else
    MPI_FLAVOR=hydra; HOSTFILE_OPTION=-f
fi
HOSTFILE=$(mktemp "${TMPDIR:-/tmp}/hpcopt-hosts.${SLURM_JOB_ID:-0}.XXXXXX")
trap 'rm -f "$HOSTFILE"' EXIT
_hpcopt_hostfile "$MPI_FLAVOR" > "$HOSTFILE"
echo "hpcopt job: $MPI_FLAVOR hostfile: $(tr '\n' ' ' < "$HOSTFILE")" >&2
LAUNCH=("${MPIRUN[@]}" "$HOSTFILE_OPTION" "$HOSTFILE" -n "${SLURM_NTASKS:-1}")
# ---- end of launcher ----
