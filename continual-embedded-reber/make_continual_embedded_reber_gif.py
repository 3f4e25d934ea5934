"""GIF: every variant predicting the same stream across training (saved snapshots).

    python continual-embedded-reber/make_continual_embedded_reber_gif.py [--rundir DIR]

DIR defaults to runs/continual-embedded-reber/ at the repo root (a modern or quick run; a
paper-scheme run saves no snapshots). Each frame is one training snapshot (the run's lowest
seed of every variant: forget, no_forget, reset, decay; the same training symbols):
the outputs over 45 steps of a fresh stream, 2,000 symbols in (where a net without forget
gates has piled up state), with the legal next symbols, errors and the long-range step
marked. Writes DIR/continual_embedded_reber.gif (no training; reads run.npz).
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
import visualize_continual_embedded_reber as viz  # noqa: E402


def render(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--rundir", default=str(viz.DEFAULT_RUNDIR),
                    help="folder holding results.json and run.npz; the GIF goes there")
    args = ap.parse_args(argv)
    rundir = Path(args.rundir)
    try:
        m, res, cfg, npz = viz.load_run(rundir)
    except viz.RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    seed = min(r["seed"] for r in res["seeds"])
    variants = [v for v in res["summary"] if f"snapshots_{v}_seed{seed}" in npz]
    if not variants:
        print(f"error: {rundir / 'run.npz'} holds no training snapshots (a paper-scheme run?)",
              file=sys.stderr)
        return 2
    edges = m.fresh_streams(np.random.default_rng(777), 1, 2100)
    starts = np.flatnonzero(m.TABLES["starts"][edges[:, 0]])
    lo = int(starts[starts >= 2000][0]) if (starts >= 2000).any() else int(starts[-3])
    hi = min(lo + 45, len(edges))
    n_frames = min(len(npz[f"snapshots_{v}_seed{seed}"]) for v in variants)
    frames = []
    for k in range(n_frames):
        fig, axes = plt.subplots(len(variants), 1, figsize=(9, 1.9 * len(variants) + 0.5),
                                 dpi=80)
        axes = np.atleast_1d(axes)
        for ax, v in zip(axes, variants, strict=True):
            params = m.unflatten(cfg, v, npz[f"snapshots_{v}_seed{seed}"][k])
            tr = m.trace(params, cfg, edges[:hi], reset=(v == "reset"),
                         decay=m.variant_flags(v)[2])
            n_err = int(m.step_errors(tr["y"][:, 0], tr["target"][:, 0]).sum())
            viz.prediction_panel(ax, m, tr, lo, hi, f"{v}: {n_err} errors in the first {hi} "
                                 "steps of this stream")
        sym = int(npz[f"snapshot_symbols_{variants[0]}_seed{seed}"][k])
        fig.suptitle(f"after {sym / 1e6:.2f}M training symbols (seed {seed}; a net that "
                     "passed its stop test is frozen)", fontsize=10)
        fig.tight_layout()
        frames.append(render(fig))
        plt.close(fig)
    out = rundir / "continual_embedded_reber.gif"
    durations = [700] * (len(frames) - 1) + [2000]
    iio.imwrite(out, np.stack(frames), duration=durations, loop=0)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
