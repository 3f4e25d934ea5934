"""Form-finding study driver: chords/lstm on fresh seeds with Config overrides.

Usage (from the repository root; see PROTOCOL.md in this folder for what is run):
    python blues-improvisation/side_runs/form_finding/study.py NAME SEEDS key=value ...
e.g. `... study.py bar8 200-219 bar_weight=8.0`. Trains the seeds stacked in one process
with the folder's own `train_seeds` (so restarts, validation and stopping are exactly the
CLI's), free-runs 100 choruses each, prints one JSON line and appends it to results.jsonl
next to this file. `updates_total` counts every update of every attempt of a seed.
"""

import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
import blues_improvisation as B  # noqa: E402


def main() -> None:
    name, seeds = sys.argv[1], B.parse_seeds(sys.argv[2])
    over = {"experiment": "chords", "model": "lstm"}
    types = {f.name: type(f.default) for f in fields(B.Config)}
    for arg in sys.argv[3:]:
        k, v = arg.split("=")
        over[k] = (v == "True") if types[k] is bool else types[k](v)
    cfg = replace(B.PRESETS["paper"], **over)
    t0 = time.time()
    recs = B.train_seeds(cfg, seeds)
    m = [r["metrics"] for r in recs]
    out = {"name": name, "seeds": sys.argv[2], "over": over,
           "solved": sum(x["solved"] for x in m), "n": len(seeds),
           "correct": [x["correct_choruses"] for x in m],
           "first10": [x["correct_first10"] for x in m],
           "last10": [x["correct_last10"] for x in m],
           "stop": [x["updates_to_stop"] for x in m],
           "updates_total": [r["updates"] for r in recs],
           "attempts_used": [r["attempts_used"] for r in recs],
           "kept_attempt": [r["kept_attempt"] for r in recs],
           "ho": [round(x["heldout_loss"], 4) for x in m], "wall": round(time.time() - t0, 1),
           "command": " ".join(["python", "blues-improvisation/side_runs/form_finding/study.py",
                                *sys.argv[1:]])}
    print(json.dumps(out), flush=True)
    with open(HERE / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
