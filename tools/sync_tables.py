"""Regenerate the README results tables and the top-level catalog from results.json.

    python tools/sync_tables.py          # rewrite the tables in place
    python tools/sync_tables.py --check  # exit 1 if any table is stale

Each folder's table comes from its own `results_table(results, paper_runs)`; the catalog's
result cell from its `headline(results, paper_runs)`, where `results` is the folder-root
(modern) run and `paper_runs` maps each committed `paper*/` subfolder to its results.json.
Nothing here is typed by hand but the paper and claim columns.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.dont_write_bytecode = True

sys.path.insert(0, str(Path(__file__).resolve().parent))
from folders import ROOT, load_json, load_module, load_paper_runs  # noqa: E402

# folder -> (paper, claim). The order is the catalog's order.
CATALOG = {
    "temporal-order-4bit": (
        "Hochreiter & Schmidhuber 1997, Exp. 6b",
        "LSTM classifies 3 widely separated X/Y markers (8 classes) in 100-110-step noise; "
        "a tanh RNN can't",
    ),
    "continual-embedded-reber": (
        "Gers, Schmidhuber & Cummins 2000",
        "on an unsegmented Reber stream, LSTM without forget gates fails; forget gates solve it",
    ),
    "anbn-anbncn": (
        "Gers & Schmidhuber 2001",
        "peephole LSTM trained on n <= 10 generalises a^n b^n and a^n b^n c^n to far larger n",
    ),
    "timing-counting-spikes": (
        "Gers, Schraudolph & Schmidhuber 2002",
        "peepholes let LSTM measure and generate precisely timed spikes and periodic functions",
    ),
    "blues-improvisation": (
        "Eck & Schmidhuber 2002",
        "LSTM learns the 12-bar blues form and improvises over it without drifting",
    ),
}


def format_wall(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def catalog_table() -> str:
    rows = ["| folder | paper | claim | our result (vs paper) | wall time, 2 cores (modern) |",
            "|---|---|---|---|---|"]
    for slug, (paper, claim) in CATALOG.items():
        folder = ROOT / slug
        res = load_json(folder / "results.json") if folder.is_dir() else None
        if res is None:
            result, wall = "in progress", "–"
        else:
            result = load_module(folder).headline(res, load_paper_runs(folder))
            wall = format_wall(res["wallclock_s"])
        link = f"[{slug}]({slug}/)" if folder.is_dir() else slug
        rows.append(f"| {link} | {paper} | {claim} | {result} | {wall} |")
    return "\n".join(rows)


def replace_block(text: str, tag: str, body: str) -> str:
    """Replace the body of every <!-- tag --> ... <!-- /tag --> block in text."""
    start, end = f"<!-- {tag} -->", f"<!-- /{tag} -->"
    if start not in text or end not in text:
        raise SystemExit(f"markers {start} ... {end} not found")
    head, *blocks = text.split(start)
    out = [head]
    for block in blocks:
        if end not in block:
            raise SystemExit(f"{start} without {end}")
        _, tail = block.split(end, 1)
        out.append(f"{start}\n{body.strip()}\n{end}{tail}")
    return "".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report stale tables")
    args = ap.parse_args(argv)
    targets = [(ROOT / "README.md", "catalog", catalog_table())]
    for slug in CATALOG:
        folder = ROOT / slug
        res = load_json(folder / "results.json") if folder.is_dir() else None
        if res is not None:
            table = load_module(folder).results_table(res, load_paper_runs(folder))
            targets.append((folder / "README.md", "results", table))
    stale = []
    for path, tag, body in targets:
        old = path.read_text()
        new = replace_block(old, tag, body)
        if new != old:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(new)
    verb = "stale" if args.check else "updated"
    print(f"{verb}: {', '.join(stale) if stale else 'none'}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
