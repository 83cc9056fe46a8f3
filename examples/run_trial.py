"""An external trial program (like the SLURM HPO seed's run_trial.py).

hpcopt runs it once per trial, never through a shell, with the parameters as argv items,
and reads the result from the JSON file named by --result:
    {"value": <float>, ...extra info...}   or   {"error": "<message>"}
Intermediate values go to --progress as JSON lines {"step": s, "value": v}.
"""

import argparse
import json
import math
import time

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--hidden", required=True, help="layer sizes as JSON, e.g. [64, 32]")
parser.add_argument("--result", required=True)
parser.add_argument("--progress", required=True)
args = parser.parse_args()

hidden = json.loads(args.hidden)
t0 = time.time()
loss = 1.0
with open(args.progress, "a") as progress:
    for epoch in range(1, 6):
        loss = abs(math.log10(args.lr) + 2.5) / 3 + 10.0 / sum(hidden) + 1.0 / epoch
        progress.write(json.dumps({"step": epoch, "value": loss}) + "\n")
        progress.flush()
with open(args.result, "w") as f:
    json.dump({"value": loss, "training_time": time.time() - t0}, f)
