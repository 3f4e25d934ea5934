"""Side study: remedies for the long-period settings (GTS F = 50, rectangle F = 25, ...).

Trains one arm (a set of Config overrides on top of the modern preset, counter-prior rows
only) on the given task settings and seeds, every variant, and writes `<arm>_<tasks>.json`
(default: under runs/ at the repo root, git-ignored): per task x variant the solved count
and per-seed test errors, plus the wall time. See PROTOCOL.md. The committed json files
were measured before the selection stream got its own initial state and delays (which
changes which restart is chosen); a rerun now gives close but not identical numbers.

    python timing-counting-spikes/side_runs/period_scaling/study.py \
        --arm B --tasks gts_F50,pfg_rect_F25 --seeds 100-109
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
import timing_counting_spikes as T  # noqa: E402

# the arms declared in PROTOCOL.md (overrides of PRESETS["modern"]; then named "paper")
ARMS = {
    "A": {"state_ref": 0.0, "steps_per_F": 0},          # the committed preset
    "B": {"state_ref": 10.0, "steps_per_F": 0},         # state-scaled random init
    "C": {"state_ref": 10.0, "steps_per_F": 50_000},    # B + training steps >= 50k x F
    "D": {"state_ref": 0.0, "steps_per_F": 50_000},     # step 2: the budget alone
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arm", choices=sorted(ARMS), required=True)
    p.add_argument("--tasks", required=True)
    p.add_argument("--seeds", default="100-109")
    p.add_argument("--out", default=None, help="output json (default: <arm>_<tasks>.json in "
                   "runs/timing-counting-spikes/side_runs/period_scaling/ at the repo root)")
    a = p.parse_args()
    cfg = dataclasses.replace(T.PRESETS["modern"], inits=("counter",), **ARMS[a.arm])
    seeds = T.parse_seeds(a.seeds)
    tasks = [t for t in a.tasks.split(",") if t]
    out = Path(a.out) if a.out else (T.DEFAULT_OUTDIR / "side_runs" / HERE.name /
                                     f"{a.arm}_{'+'.join(tasks)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    res = dict(arm=a.arm, overrides=ARMS[a.arm], seeds=seeds, command=sys.argv, settings={})
    for task in tasks:
        t0 = time.perf_counter()
        recs = T.train_setting(cfg, task, seeds)
        wall = time.perf_counter() - t0
        for v in T.task_variants(cfg, T.parse_task(task)):
            rs = sorted((r for r in recs if r["variant"] == v), key=lambda r: r["seed"])
            res["settings"][f"{task}/{v}"] = dict(
                solved=sum(r["solved"] for r in rs), n=len(rs),
                test_max_abs_error=[round(r["test_max_abs_error"], 4) for r in rs],
                first_error_step=[r["test_first_error_step"] for r in rs],
                wall_s=round(wall, 1), training_updates=rs[0]["training_updates"])
            print(f"{a.arm} {task}/{v}: {res['settings'][f'{task}/{v}']['solved']}/{len(rs)} "
                  f"({wall:.0f} s)", flush=True)
        out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
