"""Side run: the paper's Fig. 4 -- training streams needed to solve NMSD against F.

NMSD (`nmsd_F<F>_I01`): one interval per sequence -- a spike, a second spike F + I steps
later with I in {0, 1} (target I at the second spike), then the next sequence from the zero
state. One training stream = one sequence. A run stops training after 100 correct
sequences in a row (on one of its 4 parallel stream slots); it is *solved* when it then
gets all of 1000 fresh test sequences right (|error| < 0.49). Peephole vs forget-gate-only
(no peepholes), the modern procedure otherwise (Adam, counter prior, 25 000 updates at
most), but one run per seed (no restarts, no population step) so that a run's stream count
is its own.

    python timing-counting-spikes/side_runs/nmsd_fig4/fig4.py --seeds 0-9 --jobs 2 \
        --outdir timing-counting-spikes/side_runs/nmsd_fig4

Writes OUTDIR/fig4.json (one entry per F, written as each F finishes: a rerun skips the F
values already there) and OUTDIR/fig4.png. The default OUTDIR is
runs/timing-counting-spikes/side_runs/nmsd_fig4/ at the repo root (git-ignored).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
import timing_counting_spikes as T  # noqa: E402

F_VALUES = (10, 20, 30, 40, 50)
VARIANTS = ("peephole", "no_peephole")


def config(F: int):
    return dataclasses.replace(T.PRESETS["modern"], tasks=(f"nmsd_F{F}_I01",),
                               variants=VARIANTS, inits=("counter",), restarts=1,
                               pbt_every=0, stop_all_frozen=True, snapshots=1)


def run_F(F: int, seeds: list) -> dict:
    cfg = config(F)
    t0, c0 = time.perf_counter(), time.process_time()
    recs = T.train_setting(cfg, cfg.tasks[0], seeds)
    out = dict(F=F, wall_s=time.perf_counter() - t0, cpu_time_s=time.process_time() - c0,
               variants={})
    for v in VARIANTS:
        rs = sorted((r for r in recs if r["variant"] == v), key=lambda r: r["seed"])
        out["variants"][v] = dict(
            seeds=[r["seed"] for r in rs], solved=[r["solved"] for r in rs],
            stopped=[r["updates_to_solve"] is not None for r in rs],
            training_streams=[r["training_streams"] for r in rs],
            test_max_abs_error=[r["test_max_abs_error"] for r in rs],
            updates_run=[r["updates_run"] for r in rs])
    return out


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def plot(res: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    Fs = sorted(int(f) for f in res["F"])
    top = max([max(e["variants"][v]["training_streams"]) for e in res["F"].values()
               for v in VARIANTS] + [10])
    y_unsolved = top * 3
    for k, (v, col) in enumerate((("peephole", "C0"), ("no_peephole", "C1"))):
        xs, med, lo, hi = [], [], [], []
        for F in Fs:
            e = res["F"][str(F)]["variants"][v]
            sv = [n for n, ok in zip(e["training_streams"], e["solved"], strict=True) if ok]
            dx = (k - 0.5) * 0.8
            ax.scatter([F + dx] * len(sv), sv, s=10, color=col, alpha=0.4)
            n_un = len(e["solved"]) - len(sv)
            if n_un:
                ax.scatter([F + dx], [y_unsolved], marker="x", color=col)
                ax.annotate(f"{n_un}", (F + dx, y_unsolved), textcoords="offset points",
                            xytext=(3, 3), fontsize=7, color=col)
            xs.append(F + dx)                     # no solved run: a gap in the line
            med.append(np.median(sv) if sv else np.nan)
            lo.append(min(sv) if sv else np.nan)
            hi.append(max(sv) if sv else np.nan)
        label = "peephole" if v == "peephole" else "forget gate only (no peepholes)"
        med, lo, hi = np.array(med), np.array(lo), np.array(hi)
        ax.errorbar(xs, med, yerr=[med - lo, hi - med], color=col, marker="o", capsize=3,
                    label=f"{label}: median, min-max of solved runs")
    ax.scatter([], [], marker="x", color="0.3",
               label="unsolved runs at the budget (number beside)")
    ax.axhline(y_unsolved, color="0.6", lw=0.5, ls=":")
    ax.set_yscale("log")
    ax.set_ylim(top=y_unsolved * 4)
    ax.set_xticks(Fs)
    ax.set_xlabel("minimum spike interval F (I in {0, 1})")
    ax.set_ylabel("training streams (sequences) until solved")
    n = len(next(iter(res["F"].values()))["variants"]["peephole"]["seeds"])
    ax.set_title(f"NMSD: training streams to solve, {n} runs per F and variant "
                 "(modern procedure, counter prior)", fontsize=8)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0-9", help="seeds (default: 0-9)")
    ap.add_argument("--jobs", type=int, default=2, help="processes, one F each (default: 2)")
    ap.add_argument("--outdir", default=str(T.DEFAULT_OUTDIR / "side_runs" / HERE.name),
                    help="output folder (default: runs/timing-counting-spikes/side_runs/"
                         "nmsd_fig4/ at the repo root)")
    args = ap.parse_args(argv)
    try:
        seeds = T.parse_seeds(args.seeds)
    except ValueError as exc:
        ap.error(str(exc))
    if not args.outdir or args.jobs < 1:
        ap.error("--outdir must not be empty and --jobs >= 1")
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "fig4.json"
    res = json.loads(path.read_text()) if path.exists() else dict(
        command=["python", "timing-counting-spikes/side_runs/nmsd_fig4/fig4.py",
                 *(sys.argv[1:] if argv is None else argv)],
        git=list(T.git_state()), seeds=seeds, config=dataclasses.asdict(config(10)), F={})
    if res["seeds"] != seeds:
        ap.error(f"{path} holds seeds {res['seeds']}; use another --outdir")
    todo = [F for F in F_VALUES if str(F) not in res["F"]][::-1]     # longest first
    pool = multiprocessing.get_context("fork").Pool(min(args.jobs, max(1, len(todo))),
                                                    initializer=_ignore_sigint)
    try:
        for e in pool.imap_unordered(lambda_F, [(F, seeds) for F in todo]):
            res["F"][str(e["F"])] = e
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(res, indent=1) + "\n")
            os.replace(tmp, path)
            print(f"F={e['F']}: " + ", ".join(
                f"{v} {sum(e['variants'][v]['solved'])}/{len(seeds)}" for v in VARIANTS)
                + f" ({e['cpu_time_s']:.0f} s CPU)", flush=True)
        pool.close()
    except KeyboardInterrupt:
        print("interrupted (finished F values are kept)", file=sys.stderr)
        return 130
    finally:
        pool.terminate()
        pool.join()
    plot(res, out / "fig4.png")
    print(f"wrote {path}")
    print(f"wrote {out / 'fig4.png'}")
    return 0


def lambda_F(arg):
    return run_F(*arg)


if __name__ == "__main__":
    sys.exit(main())
