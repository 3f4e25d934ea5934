"""Figures for continual-embedded-reber from a saved run (results.json + run.npz; no training).

    python continual-embedded-reber/visualize_continual_embedded_reber.py [--rundir DIR]

DIR defaults to runs/continual-embedded-reber/ at the repo root. For a modern (or quick)
run it writes DIR/viz/: training_curves.png, state_norm.png, forget_gate_boundaries.png,
error_free_lengths.png, prediction_heatmap.png. For a paper-scheme run (`--preset paper`):
table2_outcomes.png, streams_to_perfect.png.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
FOLDER = "continual-embedded-reber"
DEFAULT_RUNDIR = HERE.parent / "runs" / FOLDER
COLORS = {"forget": "tab:blue", "no_forget": "tab:red", "reset": "tab:green",
          "decay": "tab:purple", "forget_alpha_a": "tab:cyan", "forget_alpha_b": "tab:olive",
          "forget_decay": "tab:cyan"}


class RunError(Exception):
    """A --rundir that holds no run of this experiment."""


def check_rundir(rundir: Path) -> dict:
    """results.json of this experiment and run.npz must be in rundir (else RunError)."""
    if not rundir.is_dir():
        raise RunError(f"--rundir {rundir} is not a directory")
    res_path = rundir / "results.json"
    if not res_path.is_file():
        raise RunError(f"no results.json in {rundir}")
    try:
        with open(res_path) as f:
            res = json.load(f)
    except (OSError, ValueError) as e:
        raise RunError(f"cannot read {res_path}: {e}") from None
    if not isinstance(res, dict) or res.get("experiment") != FOLDER:
        raise RunError(f"{res_path} is not a {FOLDER} run")
    if not (rundir / "run.npz").is_file():
        raise RunError(f"no run.npz in {rundir}")
    return res


def load_module():
    name = "continual_embedded_reber"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_run(rundir: Path):
    res = check_rundir(rundir)
    m = load_module()
    cfgd = dict(res["config"])
    if res.get("preset") == "paper":
        cfgd["rows"] = tuple(cfgd["rows"])
        cfg = m.OnlineConfig(**cfgd)
    else:
        cfgd["variants"] = tuple(cfgd["variants"])
        cfg = m.Config(**cfgd)
    npz = dict(np.load(rundir / "run.npz"))
    return m, res, cfg, npz


def first_seed_params(m, res, cfg, npz, variant, solved_only=False):
    """The lowest seed's final params and record (of the solved nets only, if asked and any
    solved)."""
    rs = [r for r in res["seeds"] if r["variant"] == variant]
    if solved_only and any(r["solved"] for r in rs):
        rs = [r for r in rs if r["solved"]]
    if not rs:
        return None, None
    r = min(rs, key=lambda r: r["seed"])
    return m.unflatten(cfg, variant, npz[f"final_{variant}_seed{r['seed']}"]), r


def status(r) -> str:
    """A net's outcome, from its record: the stop test and the confirmation streams."""
    c = r["confirm"]
    conf = "confirmed" if c["perfect"] else f"{c['errors']} confirmation errors"
    return f"perfect at its stop test, {conf}" if r["solved"] else f"never perfect, {conf}"


def fig_training_curves(res, out):
    variants = list(res["summary"])  # the run's variants, in the module's order
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, v in zip(axes, variants, strict=True):
        for r in res["seeds"]:
            if r["variant"] != v:
                continue
            cv = r["curves"]
            if not cv["symbols"]:
                continue
            rate = np.maximum(np.asarray(cv["error_rate"]), 1e-7)
            ax.semilogy(np.asarray(cv["symbols"]) / 1e6, rate, color=COLORS[v], alpha=0.6,
                        lw=1)
            if r["solved"]:  # the perfect stop test, drawn on the floor
                ax.plot(r["symbols_to_solve"] / 1e6, 1e-7, "k*", ms=8, clip_on=False)
        ax.axhline(1 / 24, color="gray", ls=":", lw=1)
        ax.set_ylim(1e-7, 1)
        ax.set_title(f"{v}: {res['summary'][v]['solved']}/{res['summary'][v]['n_seeds']} perfect")
        ax.set_xlabel("training symbols (M)")
    axes[0].set_ylabel("training steps with an error (fraction)\n(floor 1e-7 = none)")
    axes[0].text(0.55, 1 / 24 * 1.4, "chance on the outer T/P", color="gray", fontsize=7,
                 transform=axes[0].get_yaxis_transform())
    fig.suptitle("Training error per 1M symbols (one line per seed; * on the floor = the first "
                 "perfect stop test, where that net stopped)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "training_curves.png", dpi=110)
    plt.close(fig)
    return [out / "training_curves.png"]


def fig_state_norm(m, res, cfg, npz, out):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.0))
    ax = axes[0]
    for v in res["summary"]:
        first = True
        for r in res["seeds"]:
            if r["variant"] != v:
                continue
            st = np.asarray(r["confirm"]["state_norm_steps"])
            nm = np.asarray([np.nan if a is None else a for a in r["confirm"]["state_norm"]])
            ax.loglog(st, np.maximum(nm, 1e-3), color=COLORS[v], alpha=0.6, lw=1,
                      label=v if first else None)
            first = False
    ax.set_xlabel("symbols into the test stream (no reset except `reset`'s)")
    ax.set_ylabel("‖s_c‖ (L2 over the 8 cells), mean of 10 streams")
    ax.set_title("Cell states along the confirmation streams (one line per net)", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, fontsize=8)
    # right: the cells of no_forget nets of the lowest solved and lowest unsolved seed
    ax = axes[1]
    edges = m.fresh_streams(np.random.default_rng(4242), 1, 5000)
    shown = []
    for solved in (True, False):
        rs = [r for r in res["seeds"] if r["variant"] == "no_forget" and r["solved"] == solved]
        if rs:
            shown.append(min(rs, key=lambda r: r["seed"]))
    styles = ["-", ":"]
    for r, ls in zip(shown, styles, strict=False):
        params = m.unflatten(cfg, "no_forget", npz[f"final_no_forget_seed{r['seed']}"])
        tr = m.trace(params, cfg, edges, reset=False)
        tag = "perfect" if r["solved"] else "not perfect"
        sc = tr["s"][:, 0]
        ax.plot(np.arange(len(sc)), sc, ls=ls, lw=0.7)
        ax.plot([], [], "k" + ls, label=f"no_forget seed {r['seed']} ({tag}): its 8 cells")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("step of a fresh stream (no reset)")
    ax.set_ylabel("s_c per cell (symlog)")
    ax.set_title("no_forget, every cell along one fresh stream: states grow without bound;\n"
                 "a perfect net keeps one bounded cell (its outer T/P memory)", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "state_norm.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [out / "state_norm.png"]


def fig_forget_gates(m, res, cfg, npz, out):
    params, rec = first_seed_params(m, res, cfg, npz, "forget", solved_only=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if params is None:
        for ax in axes:
            ax.text(0.5, 0.5, "no forget net in this run", ha="center")
    else:
        edges = m.fresh_streams(np.random.default_rng(12345), 1, 6000)
        tr = m.trace(params, cfg, edges, reset=False)
        starts = np.flatnonzero(tr["starts"][:, 0])
        starts = starts[(starts > 20) & (starts < len(edges) - 20)]
        lags = np.arange(-12, 13)
        win = np.stack([tr["y_phi"][s + lags, 0] for s in starts])  # (n, lags, blocks)
        for b in range(cfg.n_blocks):
            axes[0].plot(lags, win[:, :, b].mean(0), marker="o", ms=3, label=f"block {b + 1}")
        axes[0].axvline(0, color="k", lw=0.8)
        axes[0].axvline(-1, color="gray", lw=0.8, ls="--")
        axes[0].set_xlabel("step relative to the outer B of a new string (dashed: the outer E)")
        axes[0].set_ylabel("forget gate y^phi, mean over strings")
        axes[0].set_title(f"forget seed {rec['seed']} ({status(rec)}):\n"
                          "y^phi at string boundaries", fontsize=9)
        axes[0].legend(fontsize=7)
        span = slice(0, 120)
        im = axes[1].imshow(tr["y_phi"][span, 0].T, aspect="auto", cmap="viridis", vmin=0,
                            vmax=1, interpolation="nearest")
        for s in np.flatnonzero(tr["starts"][span, 0]):
            axes[1].axvline(s - 0.5, color="w", lw=0.8)
        axes[1].set_yticks(range(cfg.n_blocks), [f"block {b + 1}" for b in range(cfg.n_blocks)])
        axes[1].set_xlabel("step (white lines: string starts)")
        axes[1].set_title("y^phi over the first 120 steps", fontsize=9)
        fig.colorbar(im, ax=axes[1])
    fig.tight_layout()
    fig.savefig(out / "forget_gate_boundaries.png", dpi=110)
    plt.close(fig)
    return [out / "forget_gate_boundaries.png"]


def fig_error_free(res, out):
    variants = list(res["summary"])  # the run's variants, in the module's order
    L = res["config"]["test_len"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0), gridspec_kw=dict(width_ratios=[3, 2]))
    ax = axes[0]
    rng = np.random.default_rng(0)
    for i, v in enumerate(variants):
        vals = [e for r in res["seeds"] if r["variant"] == v
                for e in r["confirm"]["error_free_lengths"]]
        x = i + rng.uniform(-0.25, 0.25, len(vals))
        ax.scatter(x, np.maximum(vals, 0.8), s=10, alpha=0.5, color=COLORS[v])
        ax.plot([i - 0.3, i + 0.3], [np.median(vals)] * 2, color="k")
    ax.axhline(L, color="gray", ls=":")
    ax.text(len(variants) - 0.5, L, "whole stream", fontsize=7, va="bottom", ha="right")
    ax.set_yscale("log")
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("error-free length (symbols before the first error)")
    ax.set_title("Ours: every confirmation stream (10 per net), bar = median", fontsize=9)
    ax = axes[1]
    paper = {"forget": 62, "no_forget": 0, "reset": 74, "decay": 0}
    summ = res["summary"]
    ours = [100 * summ[v]["solved"] / summ[v]["n_seeds"] for v in variants]
    conf = [100 * summ[v]["confirmed_perfect"] / summ[v]["n_seeds"] for v in variants]
    xs = np.arange(len(variants))
    ax.bar(xs - 0.27, [paper[v] for v in variants], 0.27, color="lightgray",
           label="paper Table 2 (100 nets; forget: with lr decay, 18% without)")
    ax.bar(xs, ours, 0.27, color=[COLORS[v] for v in variants],
           label="ours: perfect stop test (paper's criterion)")
    ax.bar(xs + 0.27, conf, 0.27, color="white", edgecolor=[COLORS[v] for v in variants],
           hatch="//", label="ours: also perfect on 10 further fresh streams")
    for x, o, c in zip(xs, ours, conf, strict=True):
        ax.text(x, o + 1, f"{o:.0f}%", ha="center", fontsize=7)
        ax.text(x + 0.27, c + 1, f"{c:.0f}%", ha="center", fontsize=7)
    for x, v in zip(xs, variants, strict=True):
        ax.text(x - 0.27, paper[v] + 1, f"{paper[v]}%", ha="center", fontsize=7)
    ax.set_xticks(xs, variants)
    ax.set_ylim(0, 125)
    ax.set_ylabel("% of nets perfect (10 x 100k symbols)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Paper's Table 2 vs ours", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "error_free_lengths.png", dpi=110)
    plt.close(fig)
    return [out / "error_free_lengths.png"]


def prediction_panel(ax, m, tr, lo, hi, title):
    """Heatmap of the 7 outputs over steps lo..hi; targets dotted; long-range step marked."""
    y, target, x = tr["y"][lo:hi, 0], tr["target"][lo:hi, 0], tr["x"][lo:hi, 0]
    ax.imshow(y.T, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    ts, ks = np.nonzero(target > 0.5)
    ax.scatter(ts, ks, s=8, facecolors="none", edgecolors="tab:orange", lw=0.8)
    wrong = m.step_errors(y, target)
    for t in np.flatnonzero(wrong):
        ax.axvspan(t - 0.5, t + 0.5, color="red", alpha=0.25)
    # the long-range step: input is the inner E, the target is the outer T or P
    full_x = tr["x"][:, 0]
    for t in range(lo, hi):
        if full_x[t] == 6 and t + 1 < len(full_x) and full_x[t + 1] in (1, 2) and \
                tr["target"][t, 0, 6] == 0:
            ax.axvline(t - lo, color="tab:blue", lw=1.2, ls="--")
    ax.set_yticks(range(7), list(m.SYMBOLS), fontsize=7)
    ax.set_xticks(range(hi - lo), [m.SYMBOLS[i] for i in x], fontsize=6)
    ax.set_title(title, fontsize=8)


def fig_predictions(m, res, cfg, npz, out):
    variants = list(res["summary"])  # the run's variants, in the module's order
    edges = m.fresh_streams(np.random.default_rng(777), 1, 3000)
    fig, axes = plt.subplots(len(variants), 1, figsize=(11, 2.2 * len(variants)))
    axes = np.atleast_1d(axes)
    starts = np.flatnonzero(m.TABLES["starts"][edges[:, 0]])
    lo = int(starts[starts >= 2000][0])
    hi = lo + 45
    for ax, v in zip(axes, variants, strict=True):
        params, rec = first_seed_params(m, res, cfg, npz, v)
        tr = m.trace(params, cfg, edges, reset=(v == "reset"), decay=m.variant_flags(v)[2])
        n_err = int(m.step_errors(tr["y"][:, 0], tr["target"][:, 0]).sum())
        prediction_panel(ax, m, tr, lo, hi, f"{v} (seed {rec['seed']}, {status(rec)}), steps "
                         f"{lo}-{hi} of a fresh stream; errors in its first 3000 steps: {n_err}")
    fig.text(0.01, 0.005, "grey = output y^k, orange circles = legal next symbols, red = step "
             "with an error, blue dashed = the long-range step (predict the outer T/P)",
             fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(out / "prediction_heatmap.png", dpi=110)
    plt.close(fig)
    return [out / "prediction_heatmap.png"]


def fig_paper_outcomes(m, res, out):
    """Paper-scheme run: % perfect / good / rest per Table 2 row, ours beside the paper's."""
    rows = list(res["summary"])
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(rows) + 2), 4.2))
    xs = np.arange(len(rows))
    colors = dict(perfect="tab:green", good="tab:orange", rest="lightgray")
    for dx, who in ((-0.2, "paper"), (0.2, "ours")):
        bottom = np.zeros(len(rows))
        for part in ("perfect", "good", "rest"):
            vals = []
            for row in rows:
                d = res["summary"][row]
                ref = m.PAPER_TABLE2[m.PAPER_ROW_OF[row]]
                if who == "paper":
                    p, g = ref["perfect_pct"], ref["good_pct"]
                    vals.append({"perfect": p, "good": g, "rest": 100 - p - g}[part])
                else:
                    key = "solved" if part == "perfect" else part
                    vals.append(100 * d[key] / d["n_seeds"])
            ax.bar(xs + dx, vals, 0.38, bottom=bottom, color=colors[part],
                   edgecolor="k" if who == "ours" else "none", lw=0.6,
                   label=part if who == "ours" else None)
            bottom += np.asarray(vals)
        for x in xs:
            ax.text(x + dx, 101, who, ha="center", fontsize=7)
    for x, row in zip(xs, rows, strict=True):
        d = res["summary"][row]
        lo, hi = d["solved_ci95"]
        ax.errorbar(x + 0.2, 100 * d["solved"] / d["n_seeds"],
                    yerr=[[100 * (d["solved"] / d["n_seeds"] - lo)],
                          [100 * (hi - d["solved"] / d["n_seeds"])]], color="k", capsize=3)
    ax.set_xticks(xs, [f"{r}\n(n = {res['summary'][r]['n_seeds']})" for r in rows], fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("% of nets")
    ax.set_title("Table 2 under the paper's scheme: perfect / good (mean error-free length > "
                 "1000) / rest;\nleft bar the paper (100 nets), right bar ours (95% interval on "
                 "% perfect)", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "table2_outcomes.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [out / "table2_outcomes.png"]


def fig_paper_streams(m, res, out):
    """Paper-scheme run: training streams to the perfect test, per net, with the paper's mean."""
    rows = list(res["summary"])
    fig, ax = plt.subplots(figsize=(max(7, 1.4 * len(rows) + 2), 3.8))
    rng = np.random.default_rng(0)
    for i, row in enumerate(rows):
        vals = [r["streams_to_solve"] for r in res["seeds"]
                if r["variant"] == row and r["solved"]]
        if vals:
            ax.scatter(i + rng.uniform(-0.2, 0.2, len(vals)), vals, s=12,
                       color=COLORS.get(row, "k"), alpha=0.7)
            ax.plot([i - 0.3, i + 0.3], [np.mean(vals)] * 2, color="k")
        ref = m.PAPER_TABLE2[m.PAPER_ROW_OF[row]].get("streams_to_perfect")
        if ref:
            ax.plot([i - 0.3, i + 0.3], [ref] * 2, color="gray", ls="--")
    ax.plot([], [], "k-", label="ours: mean over perfect nets")
    ax.plot([], [], color="gray", ls="--", label="paper: mean training streams")
    ax.set_xticks(range(len(rows)), rows, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("training streams to the perfect test")
    ax.set_title("Perfect nets under the paper's scheme (one dot per net)", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "streams_to_perfect.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [out / "streams_to_perfect.png"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--rundir", default=str(DEFAULT_RUNDIR),
                    help="folder holding results.json and run.npz; figures go to its viz/")
    args = ap.parse_args(argv)
    rundir = Path(args.rundir)
    try:
        m, res, cfg, npz = load_run(rundir)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = rundir / "viz"
    out.mkdir(parents=True, exist_ok=True)
    if res.get("preset") == "paper":
        wrote = fig_paper_outcomes(m, res, out) + fig_paper_streams(m, res, out)
    else:
        wrote = (fig_training_curves(res, out) + fig_state_norm(m, res, cfg, npz, out)
                 + fig_forget_gates(m, res, cfg, npz, out) + fig_error_free(res, out)
                 + fig_predictions(m, res, cfg, npz, out))
    for p in wrote:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
