"""Draw viz/overview.png: per paper, the paper's success rate beside ours under the paper's
procedure and under the modern one, from the committed results.json files.

    python tools/overview.py                 # writes viz/overview.png
    python tools/overview.py --out FILE.png

Each folder's `overview(results, paper_runs)` supplies its rows: a label and three success
rates in [0, 1] by the paper's criterion (None where there is no number: a paper judged by
ear, or a procedure not run yet).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.dont_write_bytecode = True

sys.path.insert(0, str(Path(__file__).resolve().parent))
from folders import ROOT, discover_folders, load_json, load_module, load_paper_runs  # noqa: E402,I001

SERIES = (("paper", "paper", "0.55"),
          ("ours_paper", "ours, paper's procedure", "tab:orange"),
          ("ours_modern", "ours, modern procedure", "tab:blue"))


def folder_rows(folder: Path) -> list[dict]:
    """The folder's overview rows from its committed root run and paper*/ runs."""
    rows = load_module(folder).overview(load_json(folder / "results.json"),
                                        load_paper_runs(folder))
    for r in rows:
        for key, _, _ in SERIES:
            v = r.get(key)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)
                                      and 0.0 <= v <= 1.0):
                raise ValueError(f"{folder.name}: overview {r['label']!r} {key} = {v!r} "
                                 "is not a rate in [0, 1]")
    return rows


def draw(panels: list[tuple[str, list[dict]]], out: Path) -> None:
    import matplotlib.pyplot as plt

    heights = [max(1, len(rows)) * 0.55 + 0.9 for _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, sum(heights)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    bar_h = 0.26
    for ax, (name, rows) in zip(axes[:, 0], panels, strict=True):
        for i, row in enumerate(rows):
            for j, (key, label, color) in enumerate(SERIES):
                y = i + (j - 1) * bar_h
                v = row.get(key)
                if v is None:
                    ax.text(0.005, y, "no number" if key == "paper" else "not run",
                            va="center", fontsize=7, color="0.35")
                else:
                    ax.barh(y, v, height=bar_h * 0.9, color=color,
                            label=label if i == 0 else None)
                    ax.text(min(v, 1.0) + 0.008, y, f"{100 * v:.0f}%", va="center",
                            fontsize=7)
        ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)          # first row on top, every bar inside
        ax.set_xlim(0, 1.12)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "25%", "50%", "75%", "100%"])
        ax.set_title(name, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("success rate by the paper's criterion")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for _, _, c in SERIES]
    fig.legend(handles, [lab for _, lab, _ in SERIES], loc="upper right", fontsize=8,
               ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Draw the collection's overview figure from "
                                             "the committed results.json files.")
    ap.add_argument("--out", type=Path, default=ROOT / "viz" / "overview.png",
                    help="PNG to write (default: viz/overview.png)")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    panels = []
    try:
        for folder in (f for f in discover_folders() if (f / "results.json").is_file()):
            panels.append((folder.name, folder_rows(folder)))
    except (ValueError, KeyError, AttributeError) as e:
        ap.error(str(e))
    if not panels:
        ap.error("no folder has a committed results.json")
    draw(panels, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
