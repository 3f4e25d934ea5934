"""Figures from a saved timing-counting-spikes run (never trains).

    python timing-counting-spikes/visualize_timing_counting_spikes.py [--rundir DIR]

DIR defaults to runs/timing-counting-spikes/ at the repo root (the committed run:
--rundir timing-counting-spikes).

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

DEFAULT_RUNDIR = M.DEFAULT_OUTDIR


def check_rundir(rundir: Path) -> str | None:
    """None if rundir holds a timing-counting-spikes run, else a one-line reason."""
    if not (rundir / "results.json").is_file():
        return f"{rundir}: no results.json (run timing_counting_spikes.py first)"
    try:
        res = json.loads((rundir / "results.json").read_text())
    except (OSError, ValueError) as exc:
        return f"{rundir}/results.json: unreadable ({exc})"
    if not isinstance(res, dict) or res.get("experiment") != M.HERE.name:
        return f"{rundir}: results.json is not a {M.HERE.name} run"
    if not (rundir / "run.npz").is_file():
        return f"{rundir}: no run.npz"
    return None


def rundir_arg(description: str, argv=None) -> Path:
    """Parse --rundir; a bad one is a one-line error, exit 2."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--rundir", default=str(DEFAULT_RUNDIR),
                    help="folder with results.json and run.npz (default: runs/"
                         f"{M.HERE.name}/ at the repo root; the committed run: "
                         f"{M.HERE.name})")
    return Path(ap.parse_args(argv).rundir)


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
    scored = [r for r in rs if r["test_max_abs_error"] is not None]  # None: every run diverged
    return min(scored, key=lambda r: r["test_max_abs_error"]) if scored else None


def free_run(cfg, npz, task, variant, seed, steps):
    t = M.parse_task(task)
    arch = M.split_row(variant)[0]
    return M.trace(net(npz, task, variant, seed), np.array([M.VARIANTS.index(arch)]), cfg,
                   t, steps, np.random.default_rng(seed))


def fig_success(res, out):
    sm = res["summary"]
    tasks = list(dict.fromkeys(k.split("/")[0] for k in sm))
    variants = list(dict.fromkeys(k.split("/")[1] for k in sm))
    grid = np.full((len(tasks), len(variants)), np.nan)
    fig, ax = plt.subplots(figsize=(4 + 1.3 * len(variants), 0.45 * len(tasks) + 2.2))
    for i, t in enumerate(tasks):
        for j, v in enumerate(variants):
            s = sm.get(f"{t}/{v}")
            if s:
                grid[i, j] = s["solved"] / s["n_seeds"]
                ax.text(j, i, f"{s['solved']}/{s['n_seeds']}\n{s['runs_solved']}/"
                        f"{s['n_runs']}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] > 0.6 else "black")
    ax.imshow(grid, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(variants)), [v.replace("_paper_init", "\npaper init")
                                         for v in variants], fontsize=7)
    ax.set_yticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_xlabel("variant (and initialisation)")
    ax.set_ylabel("task setting")
    ax.set_title("solved seeds (top) and solved runs (bottom), the paper's criterion",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "success_table.png", dpi=110)
    plt.close(fig)
    return "success_table.png"


def fig_pfg(res, cfg, npz, out):
    tasks = [t for t in cfg.tasks if t.startswith("pfg")]
    if not tasks:
        return
    fig, axes = plt.subplots(len(tasks), 1, figsize=(10, 1.7 * len(tasks)), squeeze=False)
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
        ax.set_ylabel("output y^k", fontsize=8)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1, 0].set_xlabel("step of the free run from the zero state")
    fig.tight_layout()
    fig.savefig(out / "pfg_waves.png", dpi=110)
    plt.close(fig)
    return "pfg_waves.png"


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
    return "gts_spikes_state_gates.png"


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
        ax.set_xlabel("output y^k at an input spike")
    axes[0].set_ylabel("spikes (count)")
    fig.suptitle(f"{task}: outputs at input spikes, delay I = 0 vs 1", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "msd_outputs_at_spikes.png", dpi=110)
    plt.close(fig)
    return "msd_outputs_at_spikes.png"


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
        axes[j].set_xlabel("trained weight value", fontsize=8)
    axes[0].set_ylabel("nets (seeds x settings)", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle("trained peephole weights, all settings and seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "peephole_weights.png", dpi=110)
    plt.close(fig)
    return "peephole_weights.png"


def main(argv=None) -> int:
    rundir = rundir_arg(__doc__.split("\n\n")[0], argv)
    reason = check_rundir(rundir)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    res, cfg, npz = load_run(rundir)
    out = rundir / "viz"
    out.mkdir(parents=True, exist_ok=True)
    wrote = []
    with np.errstate(all="ignore"):
        for fn, args in ((fig_success, (res, out)), (fig_pfg, (res, cfg, npz, out)),
                         (fig_gts, (res, cfg, npz, out)), (fig_msd, (res, cfg, npz, out)),
                         (fig_peepholes, (res, npz, out))):
            name = fn(*args)
            if name:
                wrote.append(out / name)
    for path in wrote:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
