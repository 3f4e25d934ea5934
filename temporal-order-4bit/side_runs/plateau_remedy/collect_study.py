"""Collect the plateau-remedy study's runs (/tmp/to_plateau/*/results.json, see PROTOCOL.md
and run_study.sh) into study.json next to this file, and print the README's tables.

    python temporal-order-4bit/side_runs/plateau_remedy/collect_study.py [--src /tmp/to_plateau]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RUNS = {"P": "preset (restarts 0)", "R": "restart after 150,000 (restarts 1)",
        "D": "lr x0.1 after 150,000"}
KEEP = ("seed", "solved", "stopped_by", "sequences_to_solve", "sequences_seen", "restarts",
        "restart_at", "lr_drop_at", "final_train_mean_error", "test_wrong", "test_accuracy",
        "train_wall_s", "seq_steps_per_s")
# The preset's known results on the diagnostic seeds (headline results.json,
# side_runs/lr_study/lr_study.json).
KNOWN_PRESET = {8: None, 131: 59648, 132: None, 135: 45824}


def _load(path: Path) -> dict:
    res = json.loads(path.read_text())
    return {"command": " ".join(res["command"]), "wallclock_s": res["wallclock_s"],
            "seeds": [{k: r.get(k) for k in KEEP} for r in res["seeds"]]}


def _stat(vals, fmt=",.0f"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    return f"{np.median(vals):{fmt}} [{min(vals):{fmt}}, {max(vals):{fmt}}]"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="/tmp/to_plateau")
    src = Path(ap.parse_args().src)
    study = {"what": "plateau-remedy study (PROTOCOL.md): preset vs R (restart) vs D (lr drop)",
             "protocol": "PROTOCOL.md", "runs": {}}
    for p in sorted(src.glob("*/results.json")):
        study["runs"][p.parent.name] = _load(p)
    (HERE / "study.json").write_text(json.dumps(study, indent=1) + "\n")
    runs = study["runs"]
    print("| setting | fresh seeds 200-229 solved | unsolved | sequences to solve, median "
          "[min, max] | restarted / lr-dropped seeds | per-seed time, median [min, max] | "
          "run wall |")
    print("|---|---|---|---|---|---|---|")
    for key, name in RUNS.items():
        run = runs.get(f"{key}_200-229")
        if run is None:
            continue
        recs = run["seeds"]
        uns = [r["seed"] for r in recs if not r["solved"]]
        acted = [r["seed"] for r in recs if r["restarts"] or r["lr_drop_at"]]
        print(f"| {key}: {name} | {sum(r['solved'] for r in recs)}/{len(recs)} | "
              f"{', '.join(map(str, uns)) or '–'} | "
              f"{_stat([r['sequences_to_solve'] for r in recs])} | "
              f"{', '.join(map(str, acted)) or '–'} | "
              f"{_stat([r['train_wall_s'] for r in recs], '.1f')} s | "
              f"{run['wallclock_s']:.0f} s |")
    print()
    print("| seed | preset (known) | R: sequences to solve (restarts) | D: sequences to solve |")
    print("|---|---|---|---|")
    diag = {k: {r["seed"]: r for r in runs[f"{k}_diag"]["seeds"]}
            for k in ("R", "D") if f"{k}_diag" in runs}
    for seed, known in KNOWN_PRESET.items():
        cells = [f"{known:,}" if known else "unsolved"]
        for k in ("R", "D"):
            r = diag.get(k, {}).get(seed)
            if r is None:
                cells.append("–")
                continue
            txt = f"{r['sequences_to_solve']:,}" if r["solved"] else "unsolved"
            if k == "R":
                txt += f" ({r['restarts']})"
            cells.append(txt)
        print(f"| {seed} | " + " | ".join(cells) + " |")
    if "P_200-229" in runs:
        base = {r["seed"]: r for r in runs["P_200-229"]["seeds"]}
        for key in ("R", "D"):
            run = runs.get(f"{key}_200-229")
            if run is None:
                continue
            diff = [r["seed"] for r in run["seeds"]
                    if base[r["seed"]]["solved"] and base[r["seed"]]["sequences_to_solve"]
                    <= 150016 and r["sequences_to_solve"] != base[r["seed"]]["sequences_to_solve"]]
            print(f"{key}: seeds solved by the preset before the trigger but different: "
                  f"{diff or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
