"""Single-factor study (protocol: README.md): which ingredient of the modern scheme lets
forget-less nets solve CERG. Phases, each a run of the main script into its own folder:

    python continual-embedded-reber/side_runs/single_factor/run_study.py lr-pick
    python continual-embedded-reber/side_runs/single_factor/run_study.py control
    python continual-embedded-reber/side_runs/single_factor/run_study.py batch1
    python continual-embedded-reber/side_runs/single_factor/run_study.py sgd
    python continual-embedded-reber/side_runs/single_factor/run_study.py table

`sgd` reads the learning rate picked by `lr-pick` (lr_pick.json). A phase whose folder
already holds results.json is skipped. `table` prints the counts of every finished phase
and writes summary.json.
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parents[1] / "continual_embedded_reber.py"
REL = "continual-embedded-reber/side_runs/single_factor"
BASE = ["--variants", "no_forget,forget", "--seeds", "100-109", "--jobs", "2", "--quiet"]
LR_GRID = (1.0, 10.0, 100.0)
PICK = ["--variants", "forget", "--seeds", "100-101", "--jobs", "2", "--quiet",
        "--optimizer", "sgd", "--max-symbols", "5000000"]
PHASES = ("control", "batch1", "sgd")


def run(args, outdir: str) -> None:
    if (HERE.parents[2] / outdir / "results.json").exists():
        print(f"{outdir}: done already, skipped")
        return
    cmd = [sys.executable, str(SCRIPT), *args, "--outdir", outdir]
    print("$ python " + " ".join(str(c) for c in cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=HERE.parents[2])


def final_error(rundir: Path) -> float:
    """Mean over seeds of the last training-curve point's error rate (the final 1M symbols)."""
    seeds = json.loads((rundir / "results.json").read_text())["seeds"]
    return sum(s["curves"]["error_rate"][-1] for s in seeds) / len(seeds)


def lr_pick() -> float:
    errs = {}
    for lr in LR_GRID:
        out = f"{REL}/lr_pick/lr_{lr:g}"
        run(PICK + ["--lr", f"{lr:g}", "--lr-final", f"{lr:g}"], out)
        errs[lr] = final_error(HERE.parents[2] / out)
    best = min(LR_GRID, key=lambda lr: errs[lr])
    pick = dict(rule="lowest mean forget training error rate over the last 1M of 5M symbols, "
                     "seeds 100-101", error_rate={f"{k:g}": v for k, v in errs.items()},
                lr=best)
    (HERE / "lr_pick.json").write_text(json.dumps(pick, indent=1) + "\n")
    print(json.dumps(pick))
    return best


def phase_args(phase: str) -> list:
    if phase == "control":
        return []
    if phase == "batch1":
        return ["--batch", "1"]
    lr = json.loads((HERE / "lr_pick.json").read_text())["lr"]
    return ["--optimizer", "sgd", "--lr", f"{lr:g}", "--lr-final", f"{lr:g}"]


def table() -> dict:
    out = {}
    for phase in PHASES:
        path = HERE / phase / "results.json"
        if not path.exists():
            continue
        res = json.loads(path.read_text())
        row = {}
        for v in ("no_forget", "forget"):
            recs = [s for s in res["seeds"] if s["variant"] == v]
            solved = [s for s in recs if s["solved"]]
            row[v] = dict(n_runs=len(recs), runs_solved=len(solved),
                          runs_confirmed=sum(bool(s["confirm"]["perfect"]) for s in solved),
                          symbols_to_solve=sorted(s["symbols_to_solve"] for s in solved),
                          training_symbols_all_runs=sum(s["training_symbols"] for s in recs))
        out[phase] = dict(command=res["command"], wallclock_s=res["wallclock_s"], **row)
        print(phase, {v: f"{row[v]['runs_solved']}/{row[v]['n_runs']} "
                         f"({row[v]['runs_confirmed']} confirmed)" for v in row},
              f"{res['wallclock_s']:.0f} s")
    (HERE / "summary.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


def main(argv) -> int:
    if len(argv) != 1 or argv[0] not in ("lr-pick", "table", *PHASES):
        print("usage: run_study.py lr-pick|control|batch1|sgd|table", file=sys.stderr)
        return 2
    what = argv[0]
    if what == "lr-pick":
        lr_pick()
    elif what == "table":
        table()
    else:
        if what == "sgd" and not (HERE / "lr_pick.json").exists():
            print("run the lr-pick phase first", file=sys.stderr)
            return 2
        run(BASE + phase_args(what), f"{REL}/{what}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
