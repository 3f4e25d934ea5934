"""Figures for anbn-anbncn from a saved run (results.json + run.npz); never trains.

    python anbn-anbncn/visualize_anbn_anbncn.py [--rundir DIR]

Writes DIR/viz/: cells_long_string.png, e1_per_seed.png, grid_acceptance.png,
peephole_weights.png, training_loss.png.
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
LANGUAGES = ("anbn", "anbncn", "anbmBmAn")
FOLDER = HERE.name
DEFAULT_RUNDIR = HERE.parent / "runs" / FOLDER


def check_rundir(rundir: Path) -> str | None:
    """None if rundir holds a run of this experiment (results.json + run.npz), else why not."""
    res = rundir / "results.json"
    if not res.is_file():
        return f"no results.json in {rundir}"
    if not (rundir / "run.npz").is_file():
        return f"no run.npz in {rundir}"
    try:
        with open(res) as f:
            exp = json.load(f).get("experiment")
    except (OSError, ValueError, AttributeError) as e:
        return f"cannot read {res}: {e}"
    if exp != FOLDER:
        return f"{res} is a run of {exp!r}, not {FOLDER!r}"
    return None


def load_module():
    spec = importlib.util.spec_from_file_location("anbn_anbncn", HERE / "anbn_anbncn.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("anbn_anbncn", mod)
    spec.loader.exec_module(mod)
    return mod


def load_run(rundir: Path):
    with open(rundir / "results.json") as f:
        res = json.load(f)
    npz = dict(np.load(rundir / "run.npz"))
    return res, npz


def net_params(npz: dict, language: str, model: str, seed: int, which: int) -> dict:
    """Parameters of one saved net: which = 0 (plain, restart 0) or 1 (the method's pick)."""
    tag = f"{language}/{model}/{seed}"
    names = [str(x) for x in npz[f"{tag}/param_names"]]
    return {k: npz[f"{tag}/params/{k}"][which:which + 1] for k in names}


def net_index(res: dict, variant: str) -> int:
    """Where a variant's net sits in run.npz: 0 = restart 0 (plain, or the only net),
    1 = the method's pick (runs with several restarts)."""
    rec = next(r for r in res["seeds"] if r["variant"] == variant)
    return 0 if variant.endswith("_plain") or rec["restarts"] == 1 else 1


def pick_seed(res: dict, variant: str) -> int:
    """The seed with the largest e1 for a variant (an illustration, not a selection)."""
    recs = [r for r in res["seeds"] if r["variant"] == variant]
    return max(recs, key=lambda r: (r["e1"], -r["seed"]))["seed"]


# ---------------------------------------------------------------------------------------
def fig_cells(M, res, npz, out: Path):
    cfg = res["config"]
    langs = [lang for lang in ("anbn", "anbncn") if f"{lang}/peephole" in res["summary"]]
    if not langs:
        return
    n_show = min(500, cfg["test_max_n"])
    fig, axes = plt.subplots(2, len(langs), figsize=(6.5 * len(langs), 6.5), squeeze=False)
    for j, lang in enumerate(langs):
        seed = pick_seed(res, f"{lang}/peephole")
        params = net_params(npz, lang, "peephole", seed, net_index(res, f"{lang}/peephole"))
        batch = M.make_strings(lang, [n_show])
        cache = M.forward(params, batch["sym"])
        e1 = [r["e1"] for r in res["seeds"]
              if r["variant"] == f"{lang}/peephole" and r["seed"] == seed][0]
        ax = axes[0, j]
        for h in range(cache["s"].shape[-1]):
            ax.plot(cache["s"][:, 0, 0, h], label=f"cell {h + 1} state s_c")
        ax.set_title(f"{lang}, n = {n_show}: peephole net (seed {seed}, e1 = {e1})")
        ax.set_ylabel("cell state")
        ax.legend(fontsize=8)
        ax = axes[1, j]
        for h in range(cache["s"].shape[-1]):
            for g, ls in (("i", "-"), ("f", "--"), ("o", ":")):
                ax.plot(cache[g][:, 0, 0, h], ls, lw=1, label=f"{g} gate, cell {h + 1}")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("step (input symbol index)")
        ax.set_ylabel("gate activation")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "cells_long_string.png", dpi=90)
    plt.close(fig)
    return out / "cells_long_string.png"


def fig_e1(M, res, out: Path):
    cfg = res["config"]
    langs = [lang for lang in ("anbn", "anbncn") if any(v.startswith(lang + "/")
                                                         for v in res["summary"])]
    if not langs:
        return
    fig, axes = plt.subplots(1, len(langs), figsize=(6.5 * len(langs), 4.5), squeeze=False)
    for j, lang in enumerate(langs):
        ax = axes[0, j]
        variants = [v for v in res["summary"] if v.startswith(lang + "/")]
        for x, v in enumerate(variants):
            runs = [e for r in res["seeds"] if r["variant"] == v for e in r["run_e1_long"]]
            ax.scatter(x + 0.25 + np.linspace(-0.08, 0.08, len(runs)), runs, s=5,
                       color="0.6", label="every run" if x == 0 else None)
            vals = res["summary"][v]["e1_long"]["values"]
            jitter = np.linspace(-0.2, 0.1, len(vals))
            ax.scatter(x + jitter, vals, s=18, color=f"C{x}")
            ax.hlines(res["summary"][v]["e1_long"]["median"], x - 0.3, x + 0.3, color="k")
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels([v.split("/")[1] for v in variants], rotation=30, fontsize=8)
        ax.set_yscale("log")
        ax.axhline(cfg["test_max_n"] + 1, color="g", ls="--",
                   label=f"{cfg['test_max_n'] + 1}: every n ≤ {cfg['test_max_n']} accepted")
        long_n = cfg.get("long_test_max_n", 0)
        if long_n > cfg["test_max_n"]:
            ax.axhline(long_n + 1, color="b", ls="--",
                       label=f"{long_n + 1}: every n ≤ {long_n} accepted")
        if lang in M.EARLIER_E1:
            ax.axhline(M.EARLIER_E1[lang], color="r", ls=":",
                       label=f"earlier version's best (1..{M.EARLIER_E1[lang] - 1})")
        ax.set_ylabel("e1 (smallest rejected n)")
        ax.set_xlabel("variant (coloured: the seed's net; grey: every run)")
        ax.set_title(f"{lang}: e1 per seed (black bar = median)")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "e1_per_seed.png", dpi=90)
    plt.close(fig)
    return out / "e1_per_seed.png"


def fig_grid(res, npz, out: Path):
    variants = [v for v in res["summary"] if v.startswith("anbmBmAn/")]
    if not variants:
        return
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 4),
                             squeeze=False)
    for j, v in enumerate(variants):
        model = v.split("/")[1].replace("_plain", "")
        which = net_index(res, v)
        seeds = sorted({r["seed"] for r in res["seeds"] if r["variant"] == v})
        maps = np.stack([npz[f"anbmBmAn/{model}/{s}/accepted"][which] for s in seeds])
        ax = axes[0, j]
        N = maps.shape[-1]
        im = ax.imshow(maps.mean(0), origin="lower", vmin=0, vmax=1, cmap="viridis",
                       extent=(0.5, N + 0.5, 0.5, N + 0.5))
        ax.set_title(f"{v}\nfraction of {len(seeds)} seeds accepting", fontsize=9)
        ax.set_xlabel("m")
        ax.set_ylabel("n")
        ax.axvline(10.5, color="w", lw=0.7)
        ax.axhline(10.5, color="w", lw=0.7)
    fig.colorbar(im, ax=axes[0, -1], fraction=0.046)
    fig.tight_layout()
    fig.savefig(out / "grid_acceptance.png", dpi=90)
    plt.close(fig)
    return out / "grid_acceptance.png"


def fig_peepholes(res, npz, out: Path):
    langs = [lang for lang in ("anbn", "anbncn", "anbmBmAn")
             if f"{lang}/peephole" in res["summary"]]
    if not langs:
        return
    fig, axes = plt.subplots(1, len(langs), figsize=(5 * len(langs), 4), squeeze=False)
    for j, lang in enumerate(langs):
        ax = axes[0, j]
        recs = [r for r in res["seeds"] if r["variant"] == f"{lang}/peephole"]
        for r in recs:
            p = npz[f"{lang}/peephole/{r['seed']}/params/p"][net_index(res, r["variant"])]
            ok = r["e1"] > (res["config"]["grid_max"] if lang == "anbmBmAn"
                            else res["config"]["test_max_n"])
            for h in range(p.shape[1]):
                ax.plot(np.arange(3) + 0.1 * h, p[:, h], "o-" if ok else "x--", alpha=0.6,
                        color="g" if ok else "r", ms=4)
        ax.set_xticks(range(3))
        ax.set_xticklabels(["p_i (s_{t-1})", "p_f (s_{t-1})", "p_o (s_t)"])
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"{lang}: peephole weights of the selected nets\n"
                     "green o = accepts every tested n, red x = not", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "peephole_weights.png", dpi=90)
    plt.close(fig)
    return out / "peephole_weights.png"


def fig_loss(res, out: Path):
    """Each seed's training loss: the plain net (restart 0, dashed) and the seed's chosen
    penalised net (solid; its loss includes the penalty once it is on), one colour per
    model."""
    variants = list(res["summary"])
    langs = [lang for lang in LANGUAGES if any(v.startswith(lang + "/") for v in variants)]
    fig, axes = plt.subplots(1, len(langs), figsize=(5.5 * len(langs), 4), squeeze=False)
    models = ("peephole", "no_peephole", "rnn")
    for j, lang in enumerate(langs):
        ax = axes[0, j]
        for v in (v for v in variants if v.startswith(lang + "/")):
            var = v.split("/")[1]
            base = var.replace("_plain", "")
            plain = var.endswith("_plain")
            color = f"C{models.index(base)}"
            recs = [r for r in res["seeds"] if r["variant"] == v]
            for i, r in enumerate(recs):
                ax.plot(r["curve_updates"], r["curve_loss"], color=color,
                        ls="--" if plain else "-", lw=0.7 if plain else 0.9, alpha=0.6,
                        label=(f"{base}, plain (restart 0)" if plain else
                               f"{base}, chosen penalised net") if i == 0 else None)
        cfg = res["config"]
        if cfg.get("sat_penalty", 0) > 0 and any(r["restarts"] > 1 for r in res["seeds"]):
            upd = max(r["curve_updates"][-1] for r in res["seeds"] if r["language"] == lang)
            ax.axvline(cfg["sat_start"] * upd, color="k", lw=0.6, ls=":",
                       label="penalty switched on")
        ax.set_yscale("log")
        ax.set_xlabel("update")
        ax.set_ylabel("training loss of the net")
        ax.set_title(f"{lang}: one line per seed")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "training_loss.png", dpi=90)
    plt.close(fig)
    return out / "training_loss.png"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rundir", default=str(DEFAULT_RUNDIR),
                    help=f"folder holding results.json and run.npz (default: runs/{FOLDER}/ "
                         f"at the repo root; the committed run is --rundir {FOLDER})")
    args = ap.parse_args(argv)
    rundir = Path(args.rundir)
    why = check_rundir(rundir)
    if why is not None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    M = load_module()
    res, npz = load_run(rundir)
    out = rundir / "viz"
    out.mkdir(parents=True, exist_ok=True)
    written = [fig_cells(M, res, npz, out), fig_e1(M, res, out), fig_grid(res, npz, out),
               fig_peepholes(res, npz, out), fig_loss(res, out)]
    for path in written:
        if path is not None:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
