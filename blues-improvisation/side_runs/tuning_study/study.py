"""Tuning-study driver: chords/lstm on 10 tuning seeds with Config overrides.

Usage (from the repository root):
    S0=100 python blues-improvisation/side_runs/tuning_study/study.py NAME chunk=96 lr=0.015
Trains seeds S0..S0+9 (default 100..109; never the headline seeds 0-9) stacked in one
process, free-runs 100 choruses each, prints one JSON line and appends it to
results.jsonl next to this file.
"""

import json
import os
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
import blues_improvisation as B  # noqa: E402


def main() -> None:
    name = sys.argv[1]
    # the preset this study tuned (before the form-finding study changed the paper preset)
    over = {"experiment": "chords", "model": "lstm", "bar_weight": 1.0, "attempts": 1,
            "updates": 6000}
    types = {f.name: type(f.default) for f in fields(B.Config)}
    for arg in sys.argv[2:]:
        k, v = arg.split("=")
        over[k] = (v == "True") if types[k] is bool else types[k](v)
    cfg = replace(B.PRESETS["paper"], **over)
    s0 = int(os.environ.get("S0", 100))
    t0 = time.time()
    recs = B.train_seeds(cfg, list(range(s0, s0 + 10)))
    m = [r["metrics"] for r in recs]
    out = {"name": name, "s0": s0, "over": over, "solved": sum(x["solved"] for x in m),
           "correct": [x["correct_choruses"] for x in m],
           "stop": [x["updates_to_stop"] for x in m],
           "ho": [round(x["heldout_loss"], 4) for x in m], "wall": round(time.time() - t0, 1)}
    print(json.dumps(out))
    with open(HERE / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
