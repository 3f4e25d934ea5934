"""Generic checks shared by the tests: gradient check, results.json schema, subprocess runs."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TIME_WORDS = ("wall", "time", "elapsed", "_per_s", "throughput")
REQUIRED_RESULT_KEYS = (
    "experiment", "paper", "command", "preset", "config", "env", "wallclock_s",
    "paper_reference", "summary", "seeds",
)
PRESET_NAMES = ("paper", "modern", "quick")
SPENT_KEYS = ("sequences_total", "updates_total", "symbols_total", "streams_total",
              "strings_total")
README_SECTIONS = (
    "Problem", "What it demonstrates", "Files", "Running", "Results", "Visualizations",
    "Deviations from the original", "Open questions / next experiments",
)


# ---------------------------------------------------------------------------------------
# Gradient check
# ---------------------------------------------------------------------------------------
def numerical_grads(loss_fn, params: dict, h: float = 1e-6) -> dict:
    """Central differences of loss_fn(params) for every entry of every array."""
    num = {}
    for name, p in params.items():
        g = np.zeros(p.shape, dtype=np.float64)
        for idx in np.ndindex(p.shape):  # index p itself: reshape(-1) may copy a view
            old = p[idx]
            p[idx] = old + h
            up = loss_fn(params)
            p[idx] = old - h
            down = loss_fn(params)
            p[idx] = old
            g[idx] = (up - down) / (2 * h)
        num[name] = g
    return num


def compare_grads(analytic: dict, numeric: dict, rtol: float = 1e-6, atol: float = 1e-9):
    """Return (ok, report): ok iff every entry has |a-n| <= rtol*max(|a|,|n|) + atol.

    report names the worst entry and the max relative error over entries with |n| > 1e-6.
    """
    if set(analytic) != set(numeric):
        return False, f"keys differ: {sorted(analytic)} vs {sorted(numeric)}"
    ok, worst, max_rel = True, "", 0.0
    worst_excess = -np.inf
    for name in numeric:
        a = np.asarray(analytic[name], dtype=np.float64)
        n = numeric[name]
        if a.shape != n.shape:
            return False, f"{name}: shape {a.shape} vs {n.shape}"
        bound = rtol * np.maximum(np.abs(a), np.abs(n)) + atol
        diff = np.abs(a - n)
        excess = diff - bound
        k = int(np.argmax(excess)) if excess.size else 0
        if excess.size and excess.flat[k] > worst_excess:
            worst_excess = excess.flat[k]
            worst = f"{name}[{np.unravel_index(k, a.shape)}]: analytic {a.flat[k]:.10g}, " \
                    f"numeric {n.flat[k]:.10g}"
        if np.any(excess > 0):
            ok = False
        big = np.abs(n) > 1e-6
        if np.any(big):
            max_rel = max(max_rel, float(np.max(diff[big] / np.abs(n[big]))))
    return ok, f"max rel err {max_rel:.3g}; worst entry {worst}"


def gradcheck(module, cfg, params: dict, batch) -> tuple[bool, str]:
    """Check module.loss_and_grads against central differences of module.loss."""
    loss_a, grads = module.loss_and_grads(params, batch, cfg)
    loss_f = module.loss(params, batch, cfg)
    if not math.isclose(float(loss_a), float(loss_f), rel_tol=1e-12, abs_tol=1e-14):
        return False, f"loss_and_grads loss {loss_a} != loss {loss_f}"
    num = numerical_grads(lambda p: float(module.loss(p, batch, cfg)), params)
    return compare_grads(grads, num)


# ---------------------------------------------------------------------------------------
# Records, results.json
# ---------------------------------------------------------------------------------------
def is_time_key(key) -> bool:
    return isinstance(key, str) and any(w in key.lower() for w in TIME_WORDS)


def assert_same_record(a, b, path="record"):
    """Recursive equality, arrays bit-equal, keys naming time skipped."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys differ"
        for k in a:
            if not is_time_key(k):
                assert_same_record(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_record(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        nan_ok = x.dtype.kind in "fc" and y.dtype.kind in "fc"
        assert np.array_equal(x, y, equal_nan=nan_ok), f"{path}: differ"
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        assert math.isnan(b), f"{path}: nan vs {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _stat_ok(stat: dict, key: str) -> None:
    for k in ("median", "min", "max", "values"):
        assert k in stat, f"summary metric {key} lacks {k}"
    vals = [v for v in stat["values"] if v is not None]
    if not vals:
        assert stat["median"] is None and stat["min"] is None and stat["max"] is None, key
        return
    arr = np.asarray(vals, dtype=np.float64)
    for name, want in (("median", np.median(arr)), ("min", arr.min()), ("max", arr.max())):
        assert stat[name] is not None and math.isclose(
            float(stat[name]), float(want), rel_tol=1e-9, abs_tol=1e-12
        ), f"summary metric {key}.{name} = {stat[name]} but values give {want}"


def validate_results(res: dict, n_seeds: int | None = None) -> None:
    """Assert the results.json schema of SPEC.md section 5."""
    for k in REQUIRED_RESULT_KEYS:
        assert k in res, f"results.json lacks {k!r}"
    assert isinstance(res["command"], list) and res["command"], "command must be argv list"
    assert isinstance(res["wallclock_s"], (int, float)) and res["wallclock_s"] >= 0
    assert isinstance(res["seeds"], list) and res["seeds"], "seeds must be a non-empty list"
    assert isinstance(res["summary"], dict) and res["summary"], "summary must be non-empty"
    assert res["preset"] in PRESET_NAMES, f"preset {res['preset']!r}"
    cmd = res["command"]
    script = f"{res['experiment']}/{res['experiment'].replace('-', '_')}.py"
    assert cmd[0] == "python" and cmd[1] in (script, "tools/merge_runs.py"), \
        f"command must run from the repo root: {cmd}"
    for k in ("git_commit", "git_dirty"):
        assert k in res["env"], f"env lacks {k!r}"
    for variant, summ in res["summary"].items():
        assert isinstance(summ.get("n_seeds"), int) and summ["n_seeds"] >= 1, variant
        assert isinstance(summ.get("solved"), int), f"{variant}: solved must be an int"
        assert 0 <= summ["solved"] <= summ["n_seeds"], variant
        for k in ("n_runs", "runs_solved"):
            assert isinstance(summ.get(k), int), f"{variant}: {k} must be an int"
        assert summ["n_runs"] >= summ["n_seeds"], f"{variant}: n_runs < n_seeds"
        assert 0 <= summ["runs_solved"] <= summ["n_runs"], f"{variant}: runs_solved"
        assert any(k in summ for k in SPENT_KEYS), \
            f"{variant}: no total of sequences/updates spent ({', '.join(SPENT_KEYS)})"
        if n_seeds is not None:
            assert summ["n_seeds"] == n_seeds, f"{variant}: n_seeds {summ['n_seeds']}"
        metrics = [k for k, v in summ.items() if isinstance(v, dict) and "values" in v]
        assert metrics, f"{variant}: no headline metric with median/min/max/values"
        for k in metrics:
            assert len(summ[k]["values"]) == summ["n_seeds"], f"{variant}.{k}: one value/seed"
            _stat_ok(summ[k], f"{variant}.{k}")


# ---------------------------------------------------------------------------------------
# Subprocesses and files
# ---------------------------------------------------------------------------------------
def script_env() -> dict:
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    return env


def run_script(path: Path, args: list[str], timeout: float = 120.0, cwd: Path | None = None):
    """Run `python path args...`; return CompletedProcess with text stdout/stderr."""
    return subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True,
        timeout=timeout, env=script_env(), cwd=str(cwd or ROOT),
    )


def sigint_default() -> None:
    """preexec_fn for a child that must react to Ctrl-C: a shell without job control starts
    background commands with SIGINT ignored, and an ignored signal stays ignored across
    exec (Python then never raises KeyboardInterrupt). Give the child the default back."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def process_group_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes whose process group is pgid (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            out.append(int(stat.parent.name))
    return out


def tree_digest(folder: Path) -> dict:
    """sha256 of every file under folder (bytecode caches excluded)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def load_json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def readme_sections(text: str) -> list[str]:
    return [ln[3:].strip() for ln in text.splitlines() if ln.startswith("## ")]


def between_markers(text: str, tag: str) -> str | None:
    start, end = f"<!-- {tag} -->", f"<!-- /{tag} -->"
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip()


# ---------------------------------------------------------------------------------------
# Experiment folders
# ---------------------------------------------------------------------------------------
def discover_folders() -> list[Path]:
    """Top-level folders D holding D/<D with - -> _>.py, sorted by name."""
    return sorted(
        d for d in ROOT.iterdir()
        if d.is_dir() and not d.name.startswith(".") and (d / f"{module_name(d)}.py").is_file()
    )


def module_name(folder: Path) -> str:
    return folder.name.replace("-", "_")


def load_script(path: Path):
    """Import a script by path, registered in sys.modules under its file stem."""
    import importlib.util

    name = path.stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def load_experiment(folder: Path):
    return load_script(folder / f"{module_name(folder)}.py")
