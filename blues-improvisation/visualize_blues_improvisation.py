"""Figures of a saved blues-improvisation run (never trains).

    python blues-improvisation/visualize_blues_improvisation.py [--rundir DIR]

Reads DIR/results.json and DIR/run.npz, writes DIR/viz/*.png:
  corpus_piano_roll.png      two training choruses: chord voicings and melody
  generated_piano_roll.png   the free run of the first LSTM seed: choruses 1-2 and 99-100
  chorus_correctness.png     per-chorus share of right bars over the free run, LSTM vs RNN
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rundir", type=Path, default=HERE, help="run folder (default: folder)")
    args = ap.parse_args(argv)
    res = json.loads((args.rundir / "results.json").read_text())
    arrays = np.load(args.rundir / "run.npz")
    out = args.rundir / "viz"
    out.mkdir(exist_ok=True)

    # 1. corpus
    corpus = arrays["corpus_train"]
    fig, ax = plt.subplots(figsize=(12, 3.2))
    draw_roll(ax, corpus[:2].reshape(-1, corpus.shape[-1]), 0,
              "training corpus: choruses 1-2 (12-bar blues in C, blues-scale melodies)")
    fig.tight_layout()
    fig.savefig(out / "corpus_piano_roll.png", dpi=110)
    plt.close(fig)

    # 2. generated piano roll, first and last two choruses
    key = next((k for k in ("melody_lstm", "chords_lstm", "melody_rnn", "chords_rnn")
                if f"{k}__frames" in arrays), None)
    if key is not None:
        frames = arrays[f"{key}__frames"]
        n_ch = len(frames) // STEPS - 1
        seed = res["first_seed_in_run_npz"][key.replace("_", "/", 1)]
        fig, axes = plt.subplots(2, 1, figsize=(12, 6))
        draw_roll(axes[0], frames[STEPS:3 * STEPS], STEPS,
                  f"{key.replace('_', '/', 1)} seed {seed}, free run: choruses 1-2")
        lo = max(1, n_ch - 1)
        draw_roll(axes[1], frames[lo * STEPS:], lo * STEPS,
                  f"choruses {lo}-{n_ch} (after {lo - 1} choruses of its own output)")
        fig.tight_layout()
        fig.savefig(out / "generated_piano_roll.png", dpi=110)
        plt.close(fig)

    # 3. per-chorus correctness over the free run, LSTM vs RNN, every seed
    exps = sorted({r["variant"].split("/")[0] for r in res["seeds"]})
    fig, axes = plt.subplots(1, len(exps), figsize=(6 * len(exps), 3.6), squeeze=False)
    for ax, exp in zip(axes[0], exps, strict=True):
        for model, color in (("lstm", "tab:blue"), ("rnn", "tab:red")):
            recs = [r for r in res["seeds"] if r["variant"] == f"{exp}/{model}"]
            for i, r in enumerate(recs):
                y = np.asarray(r["curves"]["chorus_bar_fraction"])
                ax.plot(np.arange(1, len(y) + 1), y + 0.004 * i, color=color, lw=0.8,
                        alpha=0.6, label=f"{model} ({len(recs)} seeds)" if i == 0 else None)
        ax.set_ylim(-0.05, 1.1)
        ax.set_xlabel("chorus of the free run")
        ax.set_ylabel("share of the 12 bars with the right chord")
        ax.set_title(f"{exp}: does the form drift?", fontsize=10)
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "chorus_correctness.png", dpi=110)
    plt.close(fig)

    # 4. training curves
    variants = sorted({r["variant"] for r in res["seeds"]})
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    colors = dict(zip(variants, plt.cm.tab10.colors, strict=False))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
