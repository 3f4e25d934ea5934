"""The tanh RNN baseline's own learning rate, chosen on tuning seeds 100-104.

    python blues-improvisation/side_runs/rnn_lr/sweep.py {chords,melody}

Each run: the modern preset's RNN row (one attempt at the budget the headline gives it:
1,500 updates in Exp. 1, 2,250 in Exp. 2), seeds 100-104 stacked, one learning rate from
LRS. Rule, fixed before the runs: the learning rate with the lowest sum over the two
experiments of the median final training loss (the mean weighted cross-entropy of the
last 250 updates; per output unit, so the two experiments are on one scale) becomes the
preset's `rnn_lr`; ties go to the smaller rate. Every line goes to results.jsonl here.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
import blues_improvisation as m  # noqa: E402

LRS = (3e-3, 1e-2, 3e-2, 1e-1)
SEEDS = list(range(100, 105))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    exp = argv[0]
    out = HERE / "results.jsonl"
    for lr in LRS:
        cfg = m.row_config(replace(m.PRESETS["modern"], rnn_lr=lr), exp, "rnn")
        t0 = time.perf_counter()
        recs = m.train_seeds(cfg, SEEDS)
        final = [r["curves"]["train_loss"][-1] for r in recs]
        line = {"experiment": exp, "lr": lr, "seeds": SEEDS, "updates": cfg.updates,
                "final_train_loss": final,
                "median_final_train_loss": float(sorted(final)[len(final) // 2]),
                "heldout_loss": [r["metrics"]["heldout_loss"] for r in recs],
                "bar_accuracy": [r["metrics"]["bar_accuracy"] for r in recs],
                "solved": [r["metrics"]["solved"] for r in recs],
                "wall_s": time.perf_counter() - t0}
        with open(out, "a") as f:
            f.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
