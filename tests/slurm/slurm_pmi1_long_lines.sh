#!/bin/bash
# Reproduce the second way MPI_Init failed on the 2-node rig (issue 16.5), which is not the
# rig's doing: SLURM's mpi/pmi2 plugin (22.05, and still in SLURM's master: "TODO: read
# until newline") serves PMI-1 clients by handling each read() of at most 1024 bytes as
# one request, while it advertises vallen_max=1024. The MPICH wheel speaks PMI-1 only, and
# its UCX netmod sends the node leaders' 4 KiB business cards, hex-encoded, in segments of
# up to 1022 characters: PMI-1 lines of up to ~1080 bytes. A line longer than 1024 is cut
# in two, the tail is "not a request", and MPI_Init fails (UCX "failed to unpack address,
# invalid bandwidth 0.00", "Destination is unreachable") or hangs. OFI's addresses are
# short; hpcopt switches the MPICH wheel to OFI for multi-node SLURM steps.
#
# Usage: slurm_pmi1_long_lines.sh BASE_DIR   (a running start-cluster cluster, >= 2 nodes;
# needs strace; PY: a python with mpi4py, default the repository's .venv)
set -u
BASE=$(realpath "${1:?usage: slurm_pmi1_long_lines.sh BASE_DIR}")
export SLURM_CONF=$BASE/slurm.conf
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-$HERE/../../.venv/bin/python}
D=$BASE/pmi1-repro; rm -rf "$D"; mkdir -p "$D"; chmod 755 "$D"
fails=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

echo "### 1. SLURM's PMI-1 server and one put line of 942, 1002 and 1043 bytes (no MPI)"
cat > "$D/pmi1.py" <<'EOF'
import os, socket, sys
s = socket.socket(fileno=int(os.environ["PMI_FD"]))
f = s.makefile("rb", buffering=0)
def ask(line):
    s.sendall(line.encode())
    return f.readline().decode().strip()
ask("cmd=init pmi_version=1 pmi_subversion=1\n")
print(ask("cmd=get_maxes\n"))
kvs = ask("cmd=get_my_kvsname\n").split("kvsname=")[1].split()[0]
for n in map(int, sys.argv[1:]):
    print(len(f"cmd=put kvsname={kvs} key=k{n} value={'A' * n}\n"), ask(f"cmd=put kvsname={kvs} key=k{n} value={'A' * n}\n"))
EOF
out=$(timeout 30 srun -N 1 -n 1 --mpi=pmi2 "$PY" "$D/pmi1.py" 900 960 1000 2>&1)
echo "$out"
grep -q "vallen_max=1024" <<<"$out" && grep -q "full request is: AAAA" <<<"$out" \
    && ! grep -q "full request is" <<<"$(grep -v '^1043' <<<"$out" | head -3)" \
    && ok "a 1043-byte PMI-1 line (value 1000 < vallen_max 1024) is cut after 1024 bytes" \
    || bad "the PMI-1 server took lines over 1024 bytes"

echo "### 2. MPICH's own PMI-1 lines on 2 nodes, per netmod (strace of each rank's writes)"
# UCX's lines vary from run to run (707 to 1063 bytes seen here): the 4 KiB card is UCX's
# address plus whatever memory follows it, and the hex encoding compresses repeats.
cat > "$D/hello.py" <<'EOF'
from mpi4py import MPI
print(MPI.COMM_WORLD.allreduce(1), flush=True)
EOF
for run in ucx1 ucx2 ucx3 ucx4 ucx5 ofi; do
    netmod=${run%%[0-9]*}
    cat > "$D/st-$run.sh" <<EOF
#!/bin/bash
exec strace -f -e trace=write -e signal=none -s 4000 -o "$D/st-$run.\$SLURM_PROCID" "$PY" "$D/hello.py"
EOF
    chmod 755 "$D/st-$run.sh"
    MPICH_CH4_NETMOD=$netmod timeout 40 srun -N 2 -n 2 "$D/st-$run.sh" > "$D/$run.out" 2>&1
    rc=$?
    longest=$(cat "$D"/st-$run.* | grep -E 'write\([0-9]+, "cmd=' | awk '{print $NF}' | sort -n | tail -1)
    cut=$(grep -c "not properly terminated" "$D/$run.out")
    echo "$run: exit $rc, longest PMI-1 line $longest bytes, $cut cut request(s)"
    grep -m 2 -E "UCX  ERROR|Fatal error" "$D/$run.out"
    if [ "$netmod" = ucx ]; then     # a line over 1024 bytes must have been cut, and MPI_Init failed
        [ "$longest" -le 1024 ] || { [ "$cut" -gt 0 ] && [ "$rc" != 0 ]; } \
            || bad "UCX: a line over 1024 bytes went through"
    else
        [ "$longest" -le 1024 ] && [ "$cut" -eq 0 ] && [ "$rc" = 0 ] \
            && ok "OFI: short lines, MPI_Init fine" || bad "OFI netmod"
    fi
done

echo
[ "$fails" -eq 0 ] && { echo "slurm_pmi1_long_lines: all claims reproduced"; exit 0; }
echo "slurm_pmi1_long_lines: $fails claim(s) not reproduced"; exit 1
