"""Figures from a saved timing-counting-spikes run (never trains).

    python timing-counting-spikes/visualize_timing_counting_spikes.py [--rundir DIR]

Reads DIR/results.json and DIR/run.npz, free-runs the saved nets where a figure needs
activations, and writes DIR/viz/*.png.
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
sys.path.insert(0, str(HERE))
import timing_counting_spikes as M  # noqa: E402


def load_run(rundir: Path):
    res = json.loads((rundir / "results.json").read_text())
    cfg = M.Config(**{k: tuple(v) if isinstance(v, list) else v
                      for k, v in res["config"].items()})
    return res, cfg, np.load(rundir / "run.npz")


def net(npz, task, variant, seed):
    key = f"{task}/{variant}/{seed}"
    return {n: npz[f"{key}/{n}"][None] for n in ("W", "P", "V")}


def best_seed(res, task, variant):
    """The seed with the lowest test error (for display only)."""
    rs = [r for r in res["seeds"] if r["task"] == task and r["variant"] == variant]
    return min(rs, key=lambda r: r["test_max_abs_error"]) if rs else None


def free_run(cfg, npz, task, variant, seed, steps):
    t = M.parse_task(task)
    return M.trace(net(npz, task, variant, seed), np.array([M.VARIANTS.index(variant)]), cfg,
                   t, steps, np.random.default_rng(seed))


def fig_success(res, out):
    sm = res["summary"]
    tasks = list(dict.fromkeys(k.split("/")[0] for k in sm))
    variants = [v for v in M.VARIANTS if any(k.endswith("/" + v) for k in sm)]
    grid = np.full((len(tasks), len(variants)), np.nan)
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(tasks) + 1.6))
    for i, t in enumerate(tasks):
        for j, v in enumerate(variants):
            s = sm.get(f"{t}/{v}")
            if s:
                grid[i, j] = s["solved"] / s["n_seeds"]
                ax.text(j, i, f"{s['solved']}/{s['n_seeds']}", ha="center", va="center",
                        color="white" if grid[i, j] > 0.6 else "black")
        kind = t.split("_")[0]
        ax.text(len(variants) - 0.4, i, M.PAPER_FINDINGS.get(kind, ""), va="center",
                fontsize=7)
    ax.imshow(grid, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(variants)), variants)
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlim(-0.5, len(variants) + 2.2)
    ax.set_title("solved seeds (paper criterion) | right: the paper's finding", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "success_table.png", dpi=110)
    plt.close(fig)


def fig_pfg(res, cfg, npz, out):
    tasks = [t for t in cfg.tasks if t.startswith("pfg")]
    if not tasks:
        return
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, 1.7 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        F = M.parse_task(task).F
        for variant, col in (("peephole", "C0"), ("no_peephole", "C1")):
            r = best_seed(res, task, variant)
            if r is None:
                continue
            tr = free_run(cfg, npz, task, variant, r["seed"], 4 * F)
            ax.plot(tr["y"][0], col, label=f"{variant} seed {r['seed']} "
                    f"(test max err {r['test_max_abs_error']:.2g})")
        ax.plot(tr["d"][0], "k--", lw=1, label="target")
        ax.set_title(f"{task}: first 4 periods of a free run", fontsize=8)
        ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "pfg_waves.png", dpi=110)
    plt.close(fig)


def fig_gts(res, cfg, npz, out):
    task = next((t for t in cfg.tasks if t.startswith("gts")), None)
    if task is None:
        return
    r = best_seed(res, task, "peephole")
    F = M.parse_task(task).F
    tr = free_run(cfg, npz, task, "peephole", r["seed"], 4 * F + 1)
    fig, axes = plt.subplots(3, 1, figsize=(8, 5), sharex=True)
    axes[0].plot(tr["y"][0], label="output y^k")
    axes[0].plot(tr["d"][0], "k--", lw=1, label="target")
    axes[0].legend(fontsize=7)
    axes[0].set_title(f"{task}, peephole seed {r['seed']} (test max err "
                      f"{r['test_max_abs_error']:.2g})", fontsize=9)
    axes[1].plot(tr["s"][0], "C2")
    axes[1].set_ylabel("cell state s")
    for g, lab in (("i", "input gate"), ("f", "forget gate"), ("o", "output gate")):
        axes[2].plot(tr[g][0], label=lab)
    axes[2].legend(fontsize=7)
    axes[2].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out / "gts_spikes_state_gates.png", dpi=110)
    plt.close(fig)


def fig_msd(res, cfg, npz, out):
    task = "msd_F49_I01" if "msd_F49_I01" in cfg.tasks else \
        next((t for t in cfg.tasks if t.startswith("msd")), None)
    if task is None:
        return
    F = M.parse_task(task).F
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, variant in zip(axes, ("peephole", "no_peephole"), strict=True):
        r = best_seed(res, task, variant)
        if r is None:
            continue
        tr = free_run(cfg, npz, task, variant, r["seed"], 100 * (F + 1))
        sc = ~np.isnan(tr["d"][0])
        d, y = tr["d"][0][sc], tr["y"][0][sc]
        for val in np.unique(d):
            ax.hist(np.clip(y[d == val], -0.2, 1.2), bins=np.linspace(-0.2, 1.2, 57),
                    alpha=0.6, label=f"I = {val:g} ({int((d == val).sum())} spikes)")
        ax.axvline(0.5, color="k", lw=0.5)
        ax.set_title(f"{variant} seed {r['seed']}: output at spikes", fontsize=8)
        ax.legend(fontsize=7)
        ax.set_xlabel("y at spike")
    fig.suptitle(f"{task}: outputs at input spikes, delay I = 0 vs 1", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "msd_outputs_at_spikes.png", dpi=110)
    plt.close(fig)


def fig_peepholes(res, npz, out):
    pts = [(r, npz[f"{r['task']}/peephole/{r['seed']}/P"]) for r in res["seeds"]
           if r["variant"] == "peephole"]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    for j, name in enumerate(("p_in (reads s_{t-1})", "p_forget (reads s_{t-1})",
                              "p_out (reads s_t)")):
        ok = [p[j] for r, p in pts if r["solved"]]
        bad = [p[j] for r, p in pts if not r["solved"]]
        axes[j].hist([ok, bad], bins=20, stacked=True, label=["solved", "not solved"])
        axes[j].set_title(name, fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle("trained peephole weights, all settings and seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "peephole_weights.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rundir", default=str(HERE), help="folder with results.json, run.npz")
    args = ap.parse_args(argv)
    rundir = Path(args.rundir)
    res, cfg, npz = load_run(rundir)
    out = rundir / "viz"
    out.mkdir(parents=True, exist_ok=True)
    with np.errstate(all="ignore"):
        fig_success(res, out)
        fig_pfg(res, cfg, npz, out)
        fig_gts(res, cfg, npz, out)
        fig_msd(res, cfg, npz, out)
        fig_peepholes(res, npz, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
