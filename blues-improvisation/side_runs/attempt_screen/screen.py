"""Per-attempt screen (development seeds 700-719 only; never reused for a decision run).

One training attempt (attempts=1) per seed with Config overrides, for the chords and the
melody LSTM, to estimate the per-attempt chance of finding the form and whether an early
held-out loss predicts it. Writes one JSON line per (name, experiment) to results.jsonl:
solved per seed, the update it validated at, and the held-out loss curve.

    python blues-improvisation/side_runs/attempt_screen/screen.py NAME EXPERIMENT SEEDS k=v ...
"""

import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
import blues_improvisation as B  # noqa: E402


def run(name: str, experiment: str, seeds_text: str, over: dict, out: Path,
        command: str) -> dict:
    """Train the seeds stacked (the CLI's own `train_seeds`), free-run 100 choruses each,
    append one JSON line to `out`, return it."""
    cfg = replace(B.PRESETS["paper"], **{"experiment": experiment, "model": "lstm", **over})
    t0 = time.time()
    recs = B.train_seeds(cfg, B.parse_seeds(seeds_text))
    m = [r["metrics"] for r in recs]
    row = {"name": name, "experiment": experiment, "seeds": seeds_text, "over": over,
           "solved": sum(x["solved"] for x in m), "n": len(recs),
           "solved_per_seed": [x["solved"] for x in m],
           "stop": [x["updates_to_stop"] for x in m],
           "updates_total": [r["updates"] for r in recs],
           "attempts_used": [r["attempts_used"] for r in recs],
           "heldout_curves": [[round(v, 5) for v in r["curves"]["heldout_loss"]]
                              for r in recs],
           "wall": round(time.time() - t0, 1), "command": command}
    print(json.dumps({k: v for k, v in row.items() if k != "heldout_curves"}), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def parse_overrides(args: list) -> dict:
    types = {f.name: type(f.default) for f in fields(B.Config)}
    over = {}
    for arg in args:
        k, v = arg.split("=")
        over[k] = (v == "True") if types[k] is bool else types[k](v)
    return over


def main() -> None:
    name, experiment, seeds = sys.argv[1:4]
    over = {"attempts": 1, "updates": 3000, **parse_overrides(sys.argv[4:])}
    run(name, experiment, seeds, over, HERE / "results.jsonl",
        " ".join(["python", "blues-improvisation/side_runs/attempt_screen/screen.py",
                  *sys.argv[1:]]))


if __name__ == "__main__":
    main()
