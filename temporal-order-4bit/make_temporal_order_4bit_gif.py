"""GIF of an LSTM learning temporal order, from the training snapshots saved by the run.

    python temporal-order-4bit/make_temporal_order_4bit_gif.py [--rundir DIR]

DIR defaults to runs/temporal-order-4bit/; the committed GIF is made with
--rundir temporal-order-4bit.

Each frame is one saved snapshot of the first LSTM seed: left, its final outputs on one fixed
test sequence per class (rows: true class, columns: output units; a correct row has one bright
cell on the diagonal); right, the first cell of every block over those sequences.  Reads
DIR/results.json + DIR/run.npz, writes DIR/temporal_order_4bit.gif; never trains.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import imageio.v3 as iio  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import temporal_order_4bit as tob  # noqa: E402
import visualize_temporal_order_4bit as viz  # noqa: E402


def render(cfg, seqs, tr, n_seen, names, s_lim) -> np.ndarray:
    """One frame, 1000 x 540 px; every text at least 11 pt (about 15 px)."""
    fig = plt.figure(figsize=(10.0, 5.4), dpi=100)
    grid = fig.add_gridspec(cfg.blocks, 2, width_ratios=[1.0, 1.5])
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(tr["y"], vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(cfg.n_classes), names, rotation=90, fontsize=11)
    ax.set_yticks(range(cfg.n_classes), names, fontsize=11)
    ax.set_xlabel("output unit", fontsize=12)
    ax.set_ylabel("true class of the test sequence", fontsize=12)
    ok = tob.correct(tr["y"], np.eye(cfg.n_classes)[seqs["labels"]], cfg.tol)
    ax.set_title(f"final outputs: {int(ok.sum())}/{len(ok)} correct", fontsize=13)
    colors = plt.get_cmap("tab10").colors
    for b in range(cfg.blocks):
        axb = fig.add_subplot(grid[b, 1])
        for i in range(cfg.n_classes):
            n = seqs["lengths"][i]
            axb.plot(tr["s"][:n, i, b * cfg.cells], color=colors[i % 10], lw=1.2)
        for lo, hi in tob.TASKS[cfg.task]:
            axb.axvspan(lo, hi, color="gray", alpha=0.15, lw=0)
        axb.set_yscale("symlog", linthresh=1.0)               # small steps and big drift
        axb.set_ylim(-s_lim, s_lim)
        axb.set_xlim(0, cfg.max_len)
        axb.tick_params(labelsize=11)
        axb.set_ylabel(f"block {b + 1}\ns_c", fontsize=12)
        if b == 0:
            axb.set_title("cell 1 of each block (grey: marker windows)", fontsize=13)
        if b == cfg.blocks - 1:
            axb.set_xlabel("time step t", fontsize=12)
        else:
            axb.tick_params(labelbottom=False)
    fig.suptitle(f"LSTM after {n_seen:,} training sequences", fontsize=15)
    fig.tight_layout()
    fig.canvas.draw()
    frame = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    plt.close(fig)
    return frame


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--rundir", default=str(tob.DEFAULT_OUT),
                    help="folder with results.json and run.npz")
    args = ap.parse_args(argv)
    rundir = Path(args.rundir)
    try:
        res, arrays, cfg = viz.load_run(rundir)
    except viz.RunDirError as e:
        ap.exit(2, f"error: {e}\n")
    if not viz.records(res, "lstm"):
        ap.exit(2, f"error: --rundir {str(rundir)!r} holds no LSTM run (the GIF shows one)\n")
    rec = viz.records(res, "lstm")[0]
    seqs = tob.first_of_each_class(tob.test_set(cfg, rec["seed"]), cfg.n_classes)
    names = viz.class_names(cfg)
    snaps = arrays[f"lstm/seed{rec['seed']}/snapshots"]
    traces = [tob.lstm_trace(tob.unflatten(v, cfg), seqs, cfg) for v in snaps]
    s_lim = max(1.0, float(np.percentile([np.abs(t["s"]).max() for t in traces], 90)))
    frames = [render(cfg, seqs, tr, n, names, s_lim)
              for tr, n in zip(traces, rec["snapshot_sequences"], strict=True)]
    durations = [300] * (len(frames) - 1) + [2000]             # hold the final frame
    path = rundir / "temporal_order_4bit.gif"
    iio.imwrite(path, frames, duration=durations, loop=0)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
