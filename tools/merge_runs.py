"""Merge runs of one folder and preset, made over different `--seeds`, into one run.

    python tools/merge_runs.py parts/cerg_0 parts/cerg_2 ... --outdir runs/cerg_all

Each DIR holds a results.json and run.npz written by one folder's script with the same
preset and configuration. The merged results.json concatenates their per-seed records and
lets the folder's own `finalize_results` put them in order and recompute the summary, so it
equals the single run over all those seeds apart from timing keys, `command` and `env`
(the parts' commands and commits are kept under `merged_from`). run.npz is the union of the
parts' arrays; two different arrays under one key are refused.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.dont_write_bytecode = True

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from folders import ROOT, experiment_path, load_experiment  # noqa: E402


class MergeError(Exception):
    """A part cannot be merged; the message is one line for the user."""


def load_experiment_module(experiment: str):
    if not experiment_path(experiment).is_file():
        raise MergeError(f"no experiment {experiment!r} in {ROOT}")
    return load_experiment(experiment)


def load_part(rundir: Path) -> tuple[dict, dict]:
    res_path, npz_path = rundir / "results.json", rundir / "run.npz"
    if not res_path.is_file() or not npz_path.is_file():
        raise MergeError(f"{rundir} holds no results.json and run.npz")
    try:
        with open(res_path) as f:
            res = json.load(f)
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise MergeError(f"{rundir}: unreadable run ({e})") from None
    for key in ("experiment", "preset", "config", "seeds"):
        if key not in res:
            raise MergeError(f"{res_path} lacks {key!r}")
    return res, arrays


IDENTITY_KEYS = ("language", "task", "setting", "model", "variant", "seed", "restart",
                 "attempt")


def record_key(rec: dict) -> tuple:
    """What names a record: its task/variant/seed (and restart, where records are per run)."""
    return tuple(rec.get(k) for k in IDENTITY_KEYS)


def merge_results(parts: list[dict], command: list[str]) -> dict:
    first = parts[0]
    for p in parts[1:]:
        for key in ("experiment", "preset", "config"):
            if p[key] != first[key]:
                raise MergeError(f"parts differ in {key!r}: cannot merge "
                                 f"{first['experiment']} runs of another {key}")
    seen, records = set(), []
    for p in parts:
        for rec in p["seeds"]:
            k = record_key(rec)
            if k in seen:
                raise MergeError(f"record {k} appears in two parts (overlapping --seeds)")
            seen.add(k)
            records.append(rec)
    mod = load_experiment_module(first["experiment"])
    merged = dict(first)
    merged["seeds"] = records
    merged = mod.finalize_results(merged)
    merged["command"] = command
    merged["wallclock_s"] = float(sum(p.get("wallclock_s", 0.0) for p in parts))
    merged["merged_from"] = [{"command": p.get("command"),
                              "git_commit": p.get("env", {}).get("git_commit"),
                              "wallclock_s": p.get("wallclock_s")} for p in parts]
    return merged


def merge_arrays(parts: list[dict]) -> dict:
    out = {}
    for arrays in parts:
        for k, v in arrays.items():
            if k in out:
                if out[k].shape != v.shape or not np.array_equal(out[k], v, equal_nan=True):
                    raise MergeError(f"run.npz array {k!r} differs between parts")
            else:
                out[k] = v
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def write_run(outdir: Path, results: dict, arrays: dict) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    npz, res = outdir / "run.npz", outdir / "results.json"
    fd, tmp = tempfile.mkstemp(dir=outdir, prefix=".run", suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, npz)
    fd, tmp = tempfile.mkstemp(dir=outdir, prefix=".results", suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(_jsonable(results), indent=1) + "\n")
    os.replace(tmp, res)
    return [res, npz]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Merge per-seed-range runs of one folder and preset into one run.")
    ap.add_argument("rundirs", nargs="+", type=Path,
                    help="run folders, each with results.json and run.npz")
    ap.add_argument("--outdir", type=Path, required=True,
                    help="where the merged results.json and run.npz go (required)")
    args = ap.parse_args(argv)
    if str(args.outdir) == "":
        ap.error("--outdir must not be empty")
    if len(set(p.resolve() for p in args.rundirs)) != len(args.rundirs):
        ap.error("a run folder is named twice")
    try:
        loaded = [load_part(d) for d in args.rundirs]
        argv_used = list(sys.argv[1:]) if argv is None else list(argv)
        results = merge_results([r for r, _ in loaded],
                                ["python", "tools/merge_runs.py", *argv_used])
        arrays = merge_arrays([a for _, a in loaded])
        try:
            written = write_run(args.outdir, results, arrays)
        except OSError as e:
            raise MergeError(f"--outdir {str(args.outdir)!r} is not writable: "
                             f"{e.strerror or e}") from None
    except MergeError as e:
        ap.error(str(e))
    for p in written:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
