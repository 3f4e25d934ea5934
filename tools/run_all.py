"""Run every folder's headline for one preset, then its figure scripts, into runs/.

    python tools/run_all.py --preset quick            # seconds per folder
    python tools/run_all.py --preset modern --jobs 2  # the committed headlines (about 1 h)
    python tools/run_all.py --preset paper --jobs 2   # the papers' procedures (hours)

Each folder's `RUNS[preset]` names its runs and their flags; run `<subdir>` of folder F
goes to `runs/F/<subdir>/` (`.` is `runs/F/` itself). Flags that begin with a script name
run that second script of the folder (continual-embedded-reber's `cnto.py`, Table 3).
The committed results are never touched. One progress line per run, then a summary table:
the paper's number against ours, as each folder's (or second script's) `headline` puts it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.dont_write_bytecode = True

sys.path.insert(0, str(Path(__file__).resolve().parent))
from folders import (  # noqa: E402
    ROOT,
    discover_folders,
    load_json,
    load_module,
    load_script_module,
    module_name,
)

PRESETS = ("quick", "modern", "paper")


def run_step(cmd: list[str], log_path: Path) -> tuple[int, float]:
    """Run cmd with its output into log_path; return (exit code, seconds)."""
    t0 = time.perf_counter()
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))
    return rc, time.perf_counter() - t0


def folder_runs(folder: Path, preset: str) -> list[dict]:
    """The runs `RUNS[preset]` of a folder names: subdir, script, flags, figure scripts.
    Flags that start with a script name (`cnto.py ...`) run that second script of the
    folder; the others run its main script. A script `<s>.py` is drawn by those of
    `visualize_<s>.py` and `make_<s>_gif.py` that exist."""
    mod = load_module(folder)
    out = []
    for sub, extra in mod.RUNS.get(preset, {}).items():
        if extra and extra[0].endswith(".py"):
            script, flags = folder / extra[0], list(extra[1:])
        else:
            script, flags = folder / f"{module_name(folder)}.py", list(extra)
        s = script.stem
        figures = [folder / f for f in (f"visualize_{s}.py", f"make_{s}_gif.py")
                   if (folder / f).is_file()]
        out.append(dict(sub=sub, script=script, flags=flags, figures=figures))
    return out


def run_folder(folder: Path, preset: str, jobs: int, runs_root: Path) -> list[dict]:
    """Train every run of `preset` for one folder, then draw its figures."""
    out = []
    for run in folder_runs(folder, preset):
        sub = run["sub"]
        rundir = runs_root / folder.name / sub if sub != "." else runs_root / folder.name
        rundir.mkdir(parents=True, exist_ok=True)
        log_path = rundir / "run_all.log"
        log_path.write_text("")
        train = [sys.executable, str(run["script"]), *run["flags"],
                 "--outdir", str(rundir), "--jobs", str(jobs), "--quiet"]
        label = f"{folder.name}/{sub}" if sub != "." else folder.name
        print(f"{label} ({preset}): training ...", flush=True)
        rc, secs = run_step(train, log_path)
        status = "ok" if rc == 0 else f"training failed (exit {rc}; see {log_path})"
        if rc == 0:
            for fig in run["figures"]:
                frc, _ = run_step([sys.executable, str(fig), "--rundir", str(rundir)],
                                  log_path)
                if frc != 0:
                    status = f"{fig.name} failed (exit {frc}; see {log_path})"
                    rc = frc
                    break
        print(f"{label} ({preset}): {status}, {secs:.0f} s", flush=True)
        out.append(dict(folder=folder, sub=sub, rundir=rundir, rc=rc, secs=secs,
                        status=status, script=run["script"]))
    return out


def summary_cell(run: dict, preset: str) -> str:
    """The headline cell of the script that made this run, for what the run produced."""
    if run["rc"] != 0:
        return run["status"]
    folder = run["folder"]
    res = load_json(run["rundir"] / "results.json")
    if run["script"].stem != module_name(folder):  # a second script: its own headline
        return load_script_module(run["script"]).headline(res)
    mod = load_module(folder)
    if preset == "paper":
        committed = load_json(folder / "results.json")
        if committed is None:
            return "(no committed modern run to render beside it)"
        return mod.headline(committed, {run["sub"]: res})
    return mod.headline(res, None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Run every folder's headline and figure scripts for one preset into "
                    "runs/ (the committed results are never touched).")
    ap.add_argument("--preset", choices=PRESETS, default="quick",
                    help="which procedure to run in every folder (default: quick)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="parallel seed processes per run (default: number of cores)")
    ap.add_argument("--only", default="",
                    help="comma list of folders to run (default: every folder)")
    ap.add_argument("--runs-root", type=Path, default=ROOT / "runs",
                    help="where the runs go (default: runs/ at the repo root)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
    folders = discover_folders()
    if args.only:
        names = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(names) - {f.name for f in folders})
        if unknown or not names:
            ap.error(f"--only: unknown folder(s) {', '.join(unknown) or args.only!r}")
        folders = [f for f in folders if f.name in names]
    t0 = time.perf_counter()
    runs = []
    try:
        for i, folder in enumerate(folders, 1):
            print(f"[{i}/{len(folders)}] {folder.name}", flush=True)
            runs += run_folder(folder, args.preset, args.jobs, args.runs_root)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"\nSummary ({args.preset}, {time.perf_counter() - t0:.0f} s in all)\n")
    print("| run | result (vs paper) | wall |")
    print("|---|---|---|")
    for r in runs:
        label = r["folder"].name if r["sub"] == "." else f"{r['folder'].name}/{r['sub']}"
        print(f"| {label} | {summary_cell(r, args.preset)} | {r['secs']:.0f} s |")
    for r in runs:
        if r["rc"] == 0:
            print(f"wrote {r['rundir']}")
    return 0 if all(r["rc"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
