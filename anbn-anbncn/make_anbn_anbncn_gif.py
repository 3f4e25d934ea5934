"""GIF of the counter forming over training, from the run's saved snapshots; never trains.

    python anbn-anbncn/make_anbn_anbncn_gif.py [--rundir DIR]

The net is the method's pick for the first seed of the run (a^n b^n c^n if it was run, else
the first language), shown on one fixed string with n = 4 x the training maximum: its cell
states, and at each step whether the thresholded outputs equal the legal set.
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
import imageio.v3 as iio  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
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


def unflatten(vec: np.ndarray, like: dict) -> dict:
    out, k = {}, 0
    for name, arr in like.items():
        size = arr[0].size
        out[name] = vec[k:k + size].reshape((1, *arr.shape[1:]))
        k += size
    return out


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
    with open(rundir / "results.json") as f:
        res = json.load(f)
    npz = dict(np.load(rundir / "run.npz"))
    cfg = res["config"]
    langs = [v.split("/")[0] for v in res["summary"]]
    lang = "anbncn" if "anbncn" in langs else langs[0]
    models = [r["model"] for r in res["seeds"] if r["language"] == lang]
    model = "peephole" if "peephole" in models else models[0]
    seed = min(r["seed"] for r in res["seeds"])
    tag = f"{lang}/{model}/{seed}"
    names = [str(x) for x in npz[f"{tag}/param_names"]]
    like = {k: npz[f"{tag}/params/{k}"] for k in names}
    snaps, steps = npz[f"{tag}/snapshots"], npz[f"{tag}/snapshot_updates"]
    n = 4 * cfg["train_max_n"]
    m = cfg["train_max_n"] if lang == "anbmBmAn" else None
    batch = M.make_strings(lang, [n], None if m is None else [m])
    ins = M.INPUTS[lang]
    labels = [ins[k] for k in batch["sym"][:, 0]]
    frames = []
    lim = None
    caches = []
    for vec in snaps:
        c = M.forward(unflatten(vec, like), batch["sym"])
        caches.append(c)
    if "s" in caches[-1]:
        lim = max(1.0, max(float(np.abs(c["s"]).max()) for c in caches)) * 1.1
    for step, c in zip(steps, caches, strict=True):
        fig, (ax, bx) = plt.subplots(2, 1, figsize=(7, 4.2), height_ratios=(3, 1))
        state = c["s"][:, 0, 0, :] if "s" in c else c["y"][:, 0, 0, :]
        for h in range(state.shape[1]):
            ax.plot(state[:, h], marker=".", ms=3, label=f"cell {h + 1}")
        if lim is not None:
            ax.set_ylim(-lim, lim)
        ax.set_ylabel("cell state s_c" if "s" in c else "hidden state")
        ax.legend(fontsize=8, loc="upper left")
        ok = np.all((c["u"][:, 0, 0, :] > 0) == batch["target"][:, 0, :], axis=1)
        bx.bar(np.arange(ok.size), np.ones(ok.size), color=np.where(ok, "tab:green",
                                                                      "tab:red"), width=1.0)
        bx.set_yticks([])
        bx.set_xticks(np.arange(0, ok.size, 10))
        bx.set_xlabel(f"step of S {''.join(labels[1:4])}... (n = {n}; "
                      "green = outputs equal the legal set)")
        verdict = "ACCEPTED" if ok.all() else f"rejected ({int((~ok).sum())} wrong steps)"
        ax.set_title(f"{lang} / {model}, seed {seed}: update {int(step)}: {verdict}",
                     fontsize=10)
        fig.tight_layout()
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    frames += [frames[-1]] * 6  # hold the last frame
    path = rundir / "anbn_anbncn.gif"
    iio.imwrite(path, np.stack(frames), duration=250, loop=0)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
