"""GIF of the cell learning to time a period, from the snapshots saved by a run.

    python timing-counting-spikes/make_timing_counting_spikes_gif.py [--rundir DIR]

DIR defaults to runs/timing-counting-spikes/ at the repo root (the committed run:
--rundir timing-counting-spikes).

Picks a PFG cosine (else GTS, else the first) setting's peephole net (the best seed by test
error, for display) and free-runs every saved training snapshot for three periods: output
over target, and the cell state. Writes DIR/timing_counting_spikes.gif.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import timing_counting_spikes as M  # noqa: E402
import visualize_timing_counting_spikes as V  # noqa: E402


def main(argv=None) -> int:
    rundir = V.rundir_arg(__doc__.split("\n\n")[0], argv)
    reason = V.check_rundir(rundir)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    res, cfg, npz = V.load_run(rundir)
    task = next((t for t in cfg.tasks if t.startswith("pfg_cos")),
                next((t for t in cfg.tasks if t.startswith("gts")), cfg.tasks[0]))
    r = V.best_seed(res, task, "peephole")
    key = f"{task}/peephole/{r['seed']}"
    t = M.parse_task(task)
    upd = npz[f"{key}/snap_updates"]
    snaps = {n: npz[f"{key}/snap_{n}"] for n in ("W", "P", "V")}
    steps = 3 * t.F + 1
    frames = []
    for k in range(len(upd)):
        p = {n: snaps[n][k][None] for n in snaps}
        with np.errstate(all="ignore"):
            tr = M.trace(p, np.array([0]), cfg, t, steps, np.random.default_rng(0))
        fig, axes = plt.subplots(2, 1, figsize=(6, 4), dpi=80, sharex=True)
        axes[0].plot(tr["d"][0], "k--", lw=1, label="target")
        axes[0].plot(np.clip(tr["y"][0], -1, 2), "C0", label="output")
        axes[0].set_ylim(-0.6, 1.6)
        axes[0].legend(fontsize=7, loc="upper right")
        axes[0].set_title(f"{task}, peephole seed {r['seed']}: update {int(upd[k])}",
                          fontsize=9)
        axes[1].plot(np.clip(tr["s"][0], -100, 100), "C2")
        axes[1].set_ylabel("cell state s")
        axes[1].set_xlabel("step of a free run from the zero state")
        fig.tight_layout()
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy())
        plt.close(fig)
    path = rundir / "timing_counting_spikes.gif"
    iio.imwrite(path, np.stack(frames), duration=250, loop=0)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
