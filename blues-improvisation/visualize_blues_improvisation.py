"""Figures of a saved blues-improvisation run (never trains).

    python blues-improvisation/visualize_blues_improvisation.py [--rundir DIR]

Reads DIR/results.json and DIR/run.npz, writes DIR/viz/*.png:
  corpus_piano_roll.png      two training choruses: chord voicings and melody
  generated_piano_roll.png   the free run of the first LSTM seed: choruses 1-2 and 99-100
  chorus_correctness.png     per seed and chorus, the share of right bars (one panel per row)
  training_curves.png        training / held-out loss and the validation free run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_RUNDIR = HERE.parent / "runs" / HERE.name
STEPS, N_CHORD = 96, 12
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
PROGRESSION = ("C7", "C7", "C7", "C7", "F7", "F7", "C7", "C7", "G7", "F7", "C7", "G7")


def draw_roll(ax, frames: np.ndarray, first_step: int, title: str) -> None:
    """Piano roll: chord units (rows 0-11) below, melody units (rows 13-25) above."""
    n_units = frames.shape[1]
    img = np.zeros((n_units + 1, len(frames)))
    img[:N_CHORD] = frames[:, :N_CHORD].T
    if n_units > N_CHORD:
        img[N_CHORD + 1:] = 2 * frames[:, N_CHORD:].T
    ax.imshow(img, aspect="auto", origin="lower", cmap="Blues", vmin=0, vmax=2,
              interpolation="nearest",
              extent=(first_step - 0.5, first_step + len(frames) - 0.5, -0.5, n_units + 0.5))
    for b in range(first_step, first_step + len(frames) + 1, 8):
        ax.axvline(b - 0.5, color="k", lw=0.8 if b % STEPS == 0 else 0.2)
    for k in range(first_step // 8, (first_step + len(frames)) // 8):
        ax.text(k * 8 + 3.5, -1.6, PROGRESSION[k % 12], ha="center", va="top", fontsize=6)
    ax.axhspan(-0.5, N_CHORD - 0.5, color="orange", alpha=0.06)
    ax.axhline(N_CHORD + 0.0, color="0.4", lw=0.6)
    ticks = [0, 4, 7, 10] + ([13, 16, 18, 19, 20, 23, 25] if n_units > N_CHORD else [])
    labels = [f"{NAMES[t]}3" for t in (0, 4, 7, 10)]
    if n_units > N_CHORD:
        labels += ["C4", "Eb4", "F4", "F#4", "G4", "Bb4", "C5"]
    ax.set_yticks(ticks, labels, fontsize=6)
    ax.set_ylim(-3, n_units + 0.5)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step (eighth notes); chord row at the bottom, melody above", fontsize=7)


def load_run(rundir: Path, prog: str):
    """results.json + run.npz of a blues-improvisation run, or a one-line error (exit 2)."""
    res_path, npz_path = rundir / "results.json", rundir / "run.npz"
    try:
        if not res_path.is_file() or not npz_path.is_file():
            raise ValueError(f"no results.json and run.npz in {rundir}")
        res = json.loads(res_path.read_text())
        if res.get("experiment") != HERE.name:
            raise ValueError(f"{rundir} holds a {res.get('experiment')!r} run, "
                             f"not {HERE.name!r}")
        arrays = np.load(npz_path)
    except (OSError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return res, arrays


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rundir", type=Path, default=DEFAULT_RUNDIR,
                    help="run folder holding results.json and run.npz "
                         "(default: runs/blues-improvisation/ at the repo root)")
    args = ap.parse_args(argv)
    res, arrays = load_run(args.rundir, ap.prog)
    out = args.rundir / "viz"
    out.mkdir(exist_ok=True)
    written = []

    # 1. corpus
    corpus = arrays["corpus_train"]
    fig, ax = plt.subplots(figsize=(12, 3.2))
    draw_roll(ax, corpus[:2].reshape(-1, corpus.shape[-1]), 0,
              "training corpus: choruses 1-2 (12-bar blues in C, blues-scale melodies)")
    fig.tight_layout()
    fig.savefig(out / "corpus_piano_roll.png", dpi=110)
    plt.close(fig)
    written.append(out / "corpus_piano_roll.png")

    # 2. generated piano roll, first and last two choruses
    first = res["first_seed_in_run_npz"]
    key = next((k for k in ("melody/lstm", "chords/lstm", "melody/lstm_paper_size",
                            "chords/lstm_paper_size", "melody/rnn", "chords/rnn")
                if k in first and f"{k}/seed{first[k]}/frames" in arrays), None)
    if key is not None:
        seed = first[key]
        frames = arrays[f"{key}/seed{seed}/frames"]
        n_ch = len(frames) // STEPS - 1
        fig, axes = plt.subplots(2, 1, figsize=(12, 6))
        draw_roll(axes[0], frames[STEPS:3 * STEPS], STEPS,
                  f"{key} seed {seed}, free run: choruses 1-2")
        lo = max(1, n_ch - 1)
        draw_roll(axes[1], frames[lo * STEPS:], lo * STEPS,
                  f"choruses {lo}-{n_ch} (after {lo - 1} choruses of its own output)")
        fig.tight_layout()
        fig.savefig(out / "generated_piano_roll.png", dpi=110)
        plt.close(fig)
        written.append(out / "generated_piano_roll.png")

    # 3. per-chorus correctness over the free run: one heat map per row, seeds x choruses
    variants = list(dict.fromkeys(r["variant"] for r in res["seeds"]))
    ncol = 3 if len(variants) > 2 else len(variants)
    nrow = -(-len(variants) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 2.6 * nrow + 0.6),
                             squeeze=False)
    im = None
    for ax, v in zip(axes.flat, variants, strict=False):
        recs = [r for r in res["seeds"] if r["variant"] == v]
        grid = np.array([r["curves"]["chorus_bar_fraction"] for r in recs])
        im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=1,
                       interpolation="nearest",
                       extent=(0.5, grid.shape[1] + 0.5, len(recs) - 0.5, -0.5))
        ax.set_yticks(range(len(recs)), [str(r["seed"]) for r in recs], fontsize=6)
        ax.set_ylabel("seed", fontsize=8)
        ax.set_xlabel("chorus of the free run", fontsize=8)
        s = res["summary"][v]
        ax.set_title(f"{v}: {s['solved']}/{s['n_seeds']} seeds all right", fontsize=9)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    fig.suptitle("share of the 12 bars with the right chord, per seed and chorus (yellow = "
                 "all 12; 0.583 = C7 held forever)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.93, 0.95))
    cax = fig.add_axes((0.945, 0.15, 0.012, 0.7))
    fig.colorbar(im, cax=cax).set_label("share of bars right", fontsize=8)
    fig.savefig(out / "chorus_correctness.png", dpi=110)
    plt.close(fig)
    written.append(out / "chorus_correctness.png")

    # 4. training curves
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    palette = {"chords/lstm": "tab:blue", "chords/lstm_paper_size": "tab:cyan",
               "chords/rnn": "tab:red", "melody/lstm": "tab:green",
               "melody/lstm_paper_size": "tab:olive", "melody/rnn": "tab:purple"}
    colors = {v: palette.get(v, c) for v, c in zip(variants, plt.cm.Dark2.colors,
                                                    strict=False)}
    for r in res["seeds"]:
        c = r["curves"]
        first = r["seed"] == min(s["seed"] for s in res["seeds"] if s["variant"] == r["variant"])
        axes[0].plot(c["update"], c["heldout_loss"], color=colors[r["variant"]], lw=0.8,
                     alpha=0.7, label=r["variant"] if first else None)
        if c["val_correct"]:
            axes[1].plot(c["update"][:len(c["val_correct"])], c["val_correct"],
                         color=colors[r["variant"]], lw=0.8, alpha=0.7,
                         label=r["variant"] if first else None)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("update")
    axes[0].set_ylabel("held-out next-step cross-entropy")
    axes[1].set_xlabel("update")
    nval = res["config"]["val_choruses"]
    if res["config"].get("attempts", 1) > 1:
        axes[1].set_ylabel(f"validation free run: right choruses\nbefore the first wrong "
                           f"(of {nval})")
    else:
        axes[1].set_ylabel(f"validation free run:\ncorrect choruses of {nval}")
    axes[1].set_ylim(-0.5, nval + 0.5)
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "training_curves.png", dpi=110)
    plt.close(fig)
    written.append(out / "training_curves.png")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
