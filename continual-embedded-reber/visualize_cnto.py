"""Figures for the continual noisy temporal order runs of cnto.py (results.json; no training).

    python continual-embedded-reber/visualize_cnto.py [--rundir DIR]

DIR defaults to runs/continual-embedded-reber/cnto/ at the repo root. Writes
DIR/viz/training_curves.png: the fraction of misclassified training sequence ends per
window of training sequences, one line per seed, one panel per variant, a star where a
stop test was perfect.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

HERE = Path(__file__).resolve().parent
EXPERIMENT = "continual-embedded-reber/cnto"
DEFAULT_RUNDIR = HERE.parent / "runs" / "continual-embedded-reber" / "cnto"
VARIANT_TITLE = {"forget": "forget gates (forget)", "no_forget": "no reset (no_forget)",
                 "reset": "reset at every sequence start (reset)"}
SCHEME_TITLE = {"modern": "modern scheme", "paper": "the paper's scheme",
                "quick": "quick preset"}


def load_run(rundir: Path) -> dict:
    """The run's results, or ValueError with a one-line reason."""
    path = rundir / "results.json"
    if not path.is_file():
        raise ValueError(f"no results.json in {rundir}")
    try:
        res = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    if res.get("experiment") != EXPERIMENT or not res.get("seeds"):
        raise ValueError(f"{path} is not a run of cnto.py")
    return res


def figure_title(res: dict) -> str:
    """The figure's title names the scheme the run was trained by."""
    scheme = SCHEME_TITLE.get(res.get("preset"), f"preset {res.get('preset')}")
    return (f"Continual noisy temporal order, {scheme}: one line per seed, "
            "* = perfect stop test")


def fig_training_curves(res: dict, out: Path) -> Path:
    variants = [v for v in VARIANT_TITLE if any(r["variant"] == v for r in res["seeds"])]
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.4),
                             sharex=True, sharey=True, squeeze=False)
    for ax, v in zip(axes[0], variants, strict=True):
        recs = [r for r in res["seeds"] if r["variant"] == v]
        for r in recs:
            cv = r["curves"]
            (line,) = ax.plot(cv["sequences"], cv["wrong_fraction"], lw=0.9, alpha=0.8)
            if r["solved"]:
                ax.plot([r["sequences_to_solve"]], [0.0], "*", ms=9, color=line.get_color())
        solved = sum(r["solved"] for r in recs)
        ax.set_title(f"{VARIANT_TITLE[v]}: {solved}/{len(recs)} perfect", fontsize=9)
        ax.set_xlabel("training sequences")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x / 1e3:.0f}k"))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("misclassified training ends")
    fig.suptitle(figure_title(res), fontsize=10)
    fig.tight_layout()
    path = out / "training_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--rundir", default=str(DEFAULT_RUNDIR),
                    help="folder holding results.json of a cnto.py run")
    args = ap.parse_args(argv)
    rundir = Path(args.rundir)
    try:
        res = load_run(rundir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = rundir / "viz"
    out.mkdir(parents=True, exist_ok=True)
    print(f"wrote {fig_training_curves(res, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
