"""Figures for temporal-order-4bit from a saved run (reads results.json + run.npz, never trains).

    python temporal-order-4bit/visualize_temporal_order_4bit.py [--rundir DIR]

DIR defaults to runs/temporal-order-4bit/ (the default --outdir of the training script);
the committed runs are temporal-order-4bit (modern), temporal-order-4bit/paper and
temporal-order-4bit/paper_6a (the paper's procedure).  Writes DIR/viz/: training_curves.png,
confusion.png, cell_states.png, input_gates.png, sequences_to_solve.png, and
lstm_vs_rnn.png when the run has an RNN.  Cell states and gate activities come from a
forward pass of the saved final weights over the seed's own test sequences.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import temporal_order_4bit as tob  # noqa: E402

COLORS = plt.get_cmap("tab10").colors


class RunDirError(Exception):
    """The run directory is missing, empty or holds another experiment's run."""


def check_rundir(rundir: Path) -> None:
    res_path, npz = rundir / "results.json", rundir / "run.npz"
    if not res_path.is_file():
        raise RunDirError(f"--rundir {str(rundir)!r}: no results.json (run the training "
                          "script first, or name a committed run)")
    try:
        with open(res_path) as f:
            exp = json.load(f).get("experiment")
    except (OSError, ValueError, AttributeError) as e:
        raise RunDirError(f"--rundir {str(rundir)!r}: unreadable results.json ({e})") from None
    if exp != tob.HERE.name:
        raise RunDirError(f"--rundir {str(rundir)!r} holds a run of {exp!r}, not "
                          f"{tob.HERE.name!r}")
    if not npz.is_file():
        raise RunDirError(f"--rundir {str(rundir)!r}: no run.npz")


def load_run(rundir: Path):
    check_rundir(rundir)
    with open(rundir / "results.json") as f:
        res = json.load(f)
    arrays = dict(np.load(rundir / "run.npz"))
    fields = {f.name for f in dataclasses.fields(tob.Config)}
    conf = {k: (tuple(v) if isinstance(v, list) else v)
            for k, v in res["config"].items() if k in fields}
    return res, arrays, tob.Config(**conf)


def class_names(cfg) -> list:
    k = len(tob.TASKS[cfg.task])
    return ["".join("XY"[(c >> (k - 1 - i)) & 1] for i in range(k)) for c in range(2 ** k)]


def records(res, variant):
    return [r for r in res["seeds"] if r["variant"] == variant]


def final_params(arrays, variant, seed):
    return {k: arrays[f"{variant}/seed{seed}/{k}"] for k in ("W", "W_out")}


# ---------------------------------------------------------------------------------------
def procedure(res, cfg) -> str:
    """A short name of how the run trained."""
    if cfg.procedure == "online":
        return f"online SGD, lr {cfg.lr:g}, the paper's procedure"
    return f"{cfg.optimizer}, batch {cfg.batch}, lr {cfg.lr:g}"


def plot_curves(res, cfg, out):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    restart_labelled = [False]
    for variant, color in (("lstm", "C0"), ("rnn", "C3")):
        for i, r in enumerate(records(res, variant)):
            c = r["curve"]
            lab = variant if i == 0 else None
            axes[0].plot(c["sequences"], c["train_error"], color=color, alpha=0.6, lw=1,
                         label=lab)
            axes[1].plot(c["sequences"], c["train_correct_frac"], color=color, alpha=0.6,
                         lw=1, label=lab)
            for j, at in enumerate(r.get("restart_at", [])):          # re-initialised here
                k = c["sequences"].index(at)
                for ax, key in ((axes[0], "train_error"), (axes[1], "train_correct_frac")):
                    ax.plot(at, c[key][k], "o", mfc="none", mec=color, ms=8,
                            label="restart (weights re-initialised)"
                            if (j == 0 and ax is axes[0] and not restart_labelled[0])
                            else None)
                restart_labelled[0] = True
            if r["solved"]:
                for ax, key in ((axes[0], "train_error"), (axes[1], "train_correct_frac")):
                    ax.plot(c["sequences"][-1], c[key][-1], "k*", ms=8,
                            label="solved (paper's rule)" if (i == 0 and ax is axes[0]
                                                              and variant == "lstm") else None)
    axes[0].axhline(cfg.stop_error, color="gray", ls="--", lw=1)
    axes[0].set_ylabel("mean training error E = sum_k (t_k - y_k)^2" if cfg.error == "sum"
                       else "mean training error E = 1/2 sum_k (y_k - d_k)^2")
    axes[1].set_ylabel("fraction correct (every |y_k - d_k| < 0.3)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("training sequences")
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"Training curves, task {cfg.task}, {procedure(res, cfg)} "
                 f"({len(records(res, 'lstm'))} seeds); star = paper's stop rule met")
    fig.tight_layout()
    fig.savefig(out / "training_curves.png", dpi=90)
    plt.close(fig)
    return out / "training_curves.png"


def plot_confusion(res, cfg, out):
    variants = [v for v in ("lstm", "rnn") if records(res, v)]
    names = class_names(cfg)
    fig, axes = plt.subplots(1, len(variants), figsize=(5.5 * len(variants), 4.8),
                             squeeze=False)
    for ax, v in zip(axes[0], variants, strict=True):
        conf = np.sum([np.array(r["confusion"]) for r in records(res, v)], axis=0)
        ax.imshow(conf, cmap="Blues")
        for i in range(conf.shape[0]):
            for j in range(conf.shape[1]):
                if conf[i, j]:
                    ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if conf[i, j] > conf.max() / 2 else "black")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted (argmax output)")
        ax.set_ylabel("true class")
        n = len(records(res, v))
        ax.set_title(f"{v}: test confusion summed over {n} seeds ({n} x {cfg.n_test})",
                     fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=90)
    plt.close(fig)
    return out / "confusion.png"


def _example(res, arrays, cfg):
    rec = records(res, "lstm")[0]
    seqs = tob.first_of_each_class(tob.test_set(cfg, rec["seed"]), cfg.n_classes)
    params = final_params(arrays, "lstm", rec["seed"])
    return rec, seqs, tob.lstm_trace(params, seqs, cfg)


def _markers(ax, seqs, i):
    for t, bit in zip(seqs["markers"][i], seqs["bits"][i], strict=True):
        ax.axvline(t, color="k", lw=0.8, ls=":")
        ax.text(t, 1.0, "XY"[bit], transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=7)


def plot_cell_states(res, arrays, cfg, out):
    rec, seqs, tr = _example(res, arrays, cfg)
    names = class_names(cfg)
    k, nb = cfg.n_classes, cfg.blocks
    fig, axes = plt.subplots(k, nb, figsize=(3.6 * nb, 1.35 * k + 0.8), sharex=True,
                             squeeze=False)
    for i in range(k):
        n = seqs["lengths"][i]
        for b in range(nb):
            ax = axes[i, b]
            for j in range(cfg.cells):
                ax.plot(tr["s"][:n, i, b * cfg.cells + j], color=COLORS[j], lw=1,
                        label=f"cell {j + 1}")
            _markers(ax, seqs, i)
            ax.tick_params(labelsize=7)
            if b == 0:
                ax.set_ylabel(names[i], fontsize=8)
            if i == 0:
                ax.set_title(f"block {b + 1}: cell states s_c(t)", fontsize=9, pad=12)
    axes[0, 0].legend(fontsize=6, loc="lower left")
    for b in range(nb):
        axes[-1, b].set_xlabel("t")
    fig.suptitle(f"LSTM seed {rec['seed']}, final weights: one test sequence per class "
                 "(dotted = marker positions)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "cell_states.png", dpi=80)
    plt.close(fig)
    return out / "cell_states.png"


def plot_input_gates(res, arrays, cfg, out):
    rec, seqs, tr = _example(res, arrays, cfg)
    names = class_names(cfg)
    k = cfg.n_classes
    ncol = 4 if k > 4 else 2
    fig, axes = plt.subplots(int(np.ceil(k / ncol)), ncol, figsize=(3.4 * ncol, 2.2 * k / ncol
                                                                   + 0.8), sharey=True)
    for i, ax in enumerate(np.ravel(axes)):
        n = seqs["lengths"][i]
        for b in range(cfg.blocks):
            ax.plot(tr["y_in"][:n, i, b], color=COLORS[b], lw=1, label=f"block {b + 1}")
        _markers(ax, seqs, i)
        ax.set_title(names[i], fontsize=8, pad=10)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
    for ax in np.atleast_2d(axes)[-1]:
        ax.set_xlabel("time step t", fontsize=8)
    for ax in np.atleast_2d(axes)[:, 0]:
        ax.set_ylabel("input gate y^in(t)", fontsize=8)
    np.ravel(axes)[0].legend(fontsize=6)
    fig.suptitle(f"LSTM seed {rec['seed']}: input-gate activations y^in(t) per block "
                 "(which block opens at which marker)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "input_gates.png", dpi=85)
    plt.close(fig)
    return out / "input_gates.png"


def plot_sequences_to_solve(res, cfg, out):
    recs = records(res, "lstm")
    ref = res["paper_reference"]["sequences_to_solve_mean"]
    fig, ax = plt.subplots(figsize=(7, 5))
    seeds = [r["seed"] for r in recs]
    vals = [r["sequences_to_solve"] for r in recs]
    solved = [(s, v) for s, v in zip(seeds, vals, strict=True) if v is not None]
    unsolved = [s for s, v in zip(seeds, vals, strict=True) if v is None]
    if solved:
        ax.bar([s for s, _ in solved], [v for _, v in solved], color="C0",
               label=f"ours ({procedure(res, cfg)}): solved")
        redo = [(r["seed"], r["restart_at"][-1]) for r in recs
                if r["solved"] and r.get("restart_at")]
        if redo:                                  # the part spent on discarded attempts
            ax.bar([s for s, _ in redo], [v for _, v in redo], color="C0", alpha=0.4,
                   edgecolor="k", hatch="..", label="of which discarded attempts (restarts)")
        med = float(np.median([v for _, v in solved]))
        ax.axhline(med, color="C0", ls=":", label=f"our median {med:,.0f}")
    if unsolved:
        ax.bar(unsolved, [cfg.budget] * len(unsolved), color="none", edgecolor="C3",
               hatch="//", label="unsolved at the budget")
    ax.axhline(ref, color="k", ls="--", label=f"paper (online SGD): mean {ref:,}")
    if cfg.procedure == "online" and solved:
        mean = float(np.mean([v for _, v in solved]))
        ax.axhline(mean, color="C1", ls="-.", label=f"our mean {mean:,.0f}")
    ax.set_xlabel("seed")
    ax.set_ylabel("training sequences until the paper's stop rule")
    ax.set_xticks(seeds)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax.set_title(f"Sequences to solve, task {cfg.task}")
    fig.tight_layout()
    fig.savefig(out / "sequences_to_solve.png", dpi=90)
    plt.close(fig)
    return out / "sequences_to_solve.png"


def plot_lstm_vs_rnn(res, cfg, out):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    chance = 1.0 / cfg.n_classes
    for k, (v, color) in enumerate((("lstm", "C0"), ("rnn", "C3"))):
        recs = records(res, v)
        if not recs:
            continue
        acc = [r["test_accuracy"] for r in recs]
        axes[0].scatter(np.full(len(acc), k) + np.linspace(-0.15, 0.15, len(acc)), acc,
                        color=color, label=f"{v} ({recs[0]['n_weights']} weights)")
        for i, r in enumerate(recs):
            axes[1].plot(r["curve"]["sequences"], r["curve"]["train_error"], color=color,
                         alpha=0.5, lw=1, label=v if i == 0 else None)
    axes[0].axhline(chance, color="gray", ls="--", label=f"chance {chance:.3f}")
    axes[0].set_xticks([0, 1], ["lstm", "rnn"])
    axes[0].set_ylabel(f"test accuracy (argmax), {cfg.n_test} sequences")
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(fontsize=8)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("training sequences")
    axes[1].set_ylabel("mean training error")
    axes[1].legend(fontsize=8)
    fig.suptitle("LSTM vs tanh RNN, same data, loss, optimizer and budget")
    fig.tight_layout()
    fig.savefig(out / "lstm_vs_rnn.png", dpi=90)
    plt.close(fig)
    return out / "lstm_vs_rnn.png"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--rundir", default=str(tob.DEFAULT_OUT),
                    help="folder with results.json and run.npz")
    args = ap.parse_args(argv)
    rundir = Path(args.rundir)
    try:
        res, arrays, cfg = load_run(rundir)
    except RunDirError as e:
        ap.exit(2, f"error: {e}\n")
    out = rundir / "viz"
    out.mkdir(parents=True, exist_ok=True)
    wrote = [plot_curves(res, cfg, out), plot_confusion(res, cfg, out)]
    if records(res, "rnn"):
        wrote.append(plot_lstm_vs_rnn(res, cfg, out))
    if records(res, "lstm"):
        wrote += [plot_cell_states(res, arrays, cfg, out),
                  plot_input_gates(res, arrays, cfg, out),
                  plot_sequences_to_solve(res, cfg, out)]
    for path in wrote:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
