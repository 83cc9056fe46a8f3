#!/bin/bash
# Reproduce the MPI_Init failures seen on the start-cluster rig (issue 16.5), with plain
# mpi4py programs, no hpcopt involved.
#
# The cause: MPICH 5 (the PyPI wheel: CH4, POSIX shared memory) names each node's
# shared-memory slab /dev/shm/mpich_shm_<FNV-1a(PMI KVS name)>_<node index in the job> and
# opens it with O_CREAT|O_EXCL; when the name exists, the process attaches to it as a
# non-root and trusts what is in there. Under SLURM the KVS name is "<jobid>.<stepid>", so:
#   * a killed job (SIGKILL, MPI_Abort, a step cancelled after a hang) leaves its slab behind;
#   * a test cluster started fresh numbers its jobs from 1 again, and every SLURM cluster on
#     this machine (start-single-node, start-cluster) does, at the same time;
#   * the rig's nodes share the host's /dev/shm (README: /tmp and /dev/shm are shared).
# So job J of one cluster attaches to the slab of job J of an earlier (or a concurrent)
# cluster: UCX "failed to unpack address, invalid bandwidth 0.00", MPICH "Message truncated",
# or ranks spinning in MPI_Init until killed. On a real cluster /dev/shm is per node and job
# ids do not repeat, which is why this is the rig and not MPICH-on-a-cluster.
#
# Usage: mpich_shm_collision.sh BASE_DIR   (a running start-cluster cluster of >= 2 nodes;
# PY: a python with mpi4py, default the repository's .venv). Prints PASS/FAIL per claim.
set -u
BASE=$(realpath "${1:?usage: mpich_shm_collision.sh BASE_DIR}")
export SLURM_CONF=$BASE/slurm.conf
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-$HERE/../../.venv/bin/python}
D=$BASE/shm-repro; rm -rf "$D"; mkdir -p "$D"; chmod 755 "$D"
fails=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
slab() { "$PY" "$HERE/mpich_shm.py" "$1"; }   # MPICH's name for step $1 (e.g. 12.0), node 0
cat > "$D/prog.py" <<'EOF'
import os, sys, time
from mpi4py import MPI
c = MPI.COMM_WORLD
total = c.allreduce(c.Get_rank() + 1)
print(f"rank {c.Get_rank()}/{c.Get_size()} on {MPI.Get_processor_name()} sum={total}", flush=True)
deadline = time.time() + float(os.environ.get("HOLD", "0"))
while time.time() < deadline:          # HOLD: keep messages in flight through the slab
    c.bcast(b"x" * 4000 if c.Get_rank() == 0 else None)
    c.allgather(c.Get_rank())
EOF
# run a 2-rank step on n2 in job "next"; print its job id; status in $D/JOB.rc
step() {  # step TAG [env...]
    local tag=$1; shift
    env "$@" timeout 25 srun -N 1 -n 2 -w n2 bash -c 'echo "job $SLURM_JOB_ID" >&2; exec "$0" "$1"' \
        "$PY" "$D/prog.py" > "$D/$tag.out" 2> "$D/$tag.err"
    echo $? > "$D/$tag.rc"
}
next_job() {  # the id the next job will get (nothing else submits to this cluster)
    echo $(( $(srun -N 1 -n 1 -w n1 bash -c 'echo $SLURM_JOB_ID') + 1 ))
}

echo "### 1. control: a 2-rank job on n2 initialises and leaves no slab"
j=$(next_job); step control
grep -q "sum=3" "$D/control.out" && [ "$(cat "$D/control.rc")" = 0 ] && [ ! -e "$(slab "$j.0")" ] \
    && ok "job $j: MPI_Init fine, $(slab "$j.0") removed at MPI_Finalize" \
    || bad "control job $j: rc $(cat "$D/control.rc"); $(cat "$D/control.err")"

echo "### 2. a job killed with SIGKILL while its ranks talk leaves its slab in /dev/shm"
j=$(next_job)
HOLD=60 timeout 40 srun -N 1 -n 2 -w n2 "$PY" "$D/prog.py" > "$D/killed.out" 2>&1 &
for _ in $(seq 1 100); do grep -q sum= "$D/killed.out" 2>/dev/null && break; sleep 0.1; done
scancel -s KILL "$j"; wait
[ -e "$(slab "$j.0")" ] && ok "job $j killed: $(slab "$j.0") is still there" \
    || bad "job $j killed but no stale slab"
stale=$(slab "$j.0")

echo "### 3. the next job whose KVS name hashes to a stale slab fails in MPI_Init or hangs"
j=$(next_job); cp "$stale" "$(slab "$j.0")"
t0=$(date +%s); step stale; t1=$(date +%s)
rc=$(cat "$D/stale.rc")
echo "job $j: exit $rc after $((t1 - t0)) s"; grep -m 3 -E "UCX|Fatal|truncat|unpack" "$D/stale.out" "$D/stale.err"
[ "$rc" != 0 ] && ok "job $j with a stale slab under its name: exit $rc (124 = hung until timeout)" \
    || bad "job $j ran fine on a stale slab"
rm -f "$(slab "$j.0")"

echo "### 4. two live jobs under one slab name (two clusters with the same job id at once)"
j=$(next_job)
HOLD=8 timeout 40 srun -N 1 -n 2 -w n1 "$PY" "$D/prog.py" > "$D/live1.out" 2>&1 &
p=$!
for _ in $(seq 1 100); do [ -e "$(slab "$j.0")" ] && break; sleep 0.1; done
k=$((j + 1)); ln "$(slab "$j.0")" "$(slab "$k.0")"   # what a second cluster's job $j would open
step live2
wait $p; rc1=$?
echo "job $j exit $rc1, job $k exit $(cat "$D/live2.rc")"; grep -m 3 -E "UCX|Fatal|truncat|unpack" "$D/live2.out" "$D/live2.err"
[ "$(cat "$D/live2.rc")" != 0 ] && ok "job $k attached to the live slab of job $j and failed" \
    || bad "job $k shared job $j's slab and still worked"
rm -f "$(slab "$k.0")" "$(slab "$j.0")"

echo "### 5. control again: without a slab under its name the same program works"
step control2
[ "$(cat "$D/control2.rc")" = 0 ] && ok "fine again" || bad "control2: $(cat "$D/control2.err")"

echo
[ "$fails" -eq 0 ] && { echo "mpich_shm_collision: all claims reproduced"; exit 0; }
echo "mpich_shm_collision: $fails claim(s) not reproduced"; exit 1
