"""Shared contract tests (SPEC.md section 8), parametrised over every experiment folder.

A new folder is covered the day it lands; with no folders the parametrised tests collect
nothing and the rest of the suite still runs.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from helpers import (
    README_SECTIONS,
    ROOT,
    assert_same_record,
    between_markers,
    discover_folders,
    gradcheck,
    load_experiment,
    load_json,
    load_script,
    module_name,
    readme_sections,
    run_script,
    tree_digest,
    validate_results,
)

FOLDERS = discover_folders()
IDS = [f.name for f in FOLDERS]


def _gradcheck_params():
    out = []
    for folder in FOLDERS:
        mod = load_experiment(folder)
        for name, _cfg in mod.GRADCHECK_CASES:
            out.append(pytest.param(folder, name, id=f"{folder.name}:{name}"))
    return out


# ---------------------------------------------------------------------------------------
# Module contract and gradients
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_module_contract(folder):
    mod = load_experiment(folder)
    for attr in ("Config", "PRESETS", "init_params", "loss_and_grads", "loss", "sample_batch",
                 "GRADCHECK_CASES", "train", "results_table", "headline", "main"):
        assert hasattr(mod, attr), f"{folder.name}: missing {attr}"
    assert mod.__doc__ and len(mod.__doc__) > 100, "module docstring: citation, claim, command"
    assert {"paper", "quick"} <= set(mod.PRESETS)
    assert len(mod.GRADCHECK_CASES) >= 1
    for _name, cfg in mod.GRADCHECK_CASES:
        params = mod.init_params(cfg, np.random.default_rng(0))
        assert all(p.dtype == np.float64 for p in params.values()), "params must be float64"


@pytest.mark.parametrize("folder,case", _gradcheck_params())
def test_gradient_check(folder, case):
    mod = load_experiment(folder)
    cfg = dict(mod.GRADCHECK_CASES)[case]
    rng = np.random.default_rng(1234)
    params = mod.init_params(cfg, rng)
    batch = mod.sample_batch(cfg, rng)
    ok, report = gradcheck(mod, cfg, params, batch)
    assert ok, f"at init: {report}"
    # Three plain gradient steps with the module's own gradients, then check again.
    loss0 = None
    for _ in range(3):
        loss, grads = mod.loss_and_grads(params, batch, cfg)
        loss0 = loss if loss0 is None else loss0
        gnorm = np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())) + 1e-12
        step = 0.5 / max(gnorm, 1.0)
        params = {k: params[k] - step * grads[k] for k in params}
    ok, report = gradcheck(mod, cfg, params, batch)
    assert ok, f"after 3 steps: {report}"
    assert mod.loss(params, batch, cfg) < loss0, "gradient steps did not lower the loss"


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_determinism(folder):
    mod = load_experiment(folder)
    cfg = mod.PRESETS["quick"]
    a = mod.train(cfg, 0)
    b = mod.train(cfg, 0)
    assert_same_record(a, b)


# ---------------------------------------------------------------------------------------
# CLI, figures, untouched source folder
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=FOLDERS, ids=IDS)
def quick_run(request, tmp_path_factory):
    """Run the quick preset and both figure scripts once per folder, into a temp dir."""
    folder = request.param
    m = module_name(folder)
    before = tree_digest(folder)
    out = tmp_path_factory.mktemp(folder.name)
    main = run_script(folder / f"{m}.py",
                      ["--preset", "quick", "--seeds", "0-1", "--jobs", "2", "--outdir",
                       str(out), "--quiet"], timeout=180)
    viz = gif = None
    if main.returncode == 0:
        viz = run_script(folder / f"visualize_{m}.py", ["--rundir", str(out)], timeout=180)
        gif = run_script(folder / f"make_{m}_gif.py", ["--rundir", str(out)], timeout=180)
    return dict(folder=folder, out=out, main=main, viz=viz, gif=gif, before=before,
                after=tree_digest(folder))


def test_cli_quick_run(quick_run):
    r = quick_run["main"]
    assert r.returncode == 0, r.stderr[-3000:]
    res = load_json(quick_run["out"] / "results.json")
    validate_results(res)
    assert res["preset"] == "quick"
    assert sorted({s["seed"] for s in res["seeds"]}) == [0, 1]
    assert (quick_run["out"] / "run.npz").is_file()
    # the README table and the catalog cell render from a fresh run (every variant in it)
    mod = load_experiment(quick_run["folder"])
    table, cell = mod.results_table(res), mod.headline(res)
    assert table.count("\n") >= 2 and len(cell) > 10


def test_figures(quick_run):
    import imageio.v3 as iio
    from PIL import Image

    assert quick_run["main"].returncode == 0
    for r in (quick_run["viz"], quick_run["gif"]):
        assert r.returncode == 0, r.stderr[-3000:]
    pngs = sorted((quick_run["out"] / "viz").glob("*.png"))
    assert pngs, "visualize wrote no PNG"
    for p in pngs:
        img = iio.imread(p)
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50, p.name
        assert img.std() > 0, f"{p.name} is blank"
    m = module_name(quick_run["folder"])
    gif_path = quick_run["out"] / f"{m}.gif"
    assert gif_path.is_file() and 0 < gif_path.stat().st_size <= 2 * 1024 * 1024
    with Image.open(io.BytesIO(gif_path.read_bytes())) as im:
        assert im.info.get("loop") == 0, "GIF must loop forever (loop=0)"
        n = getattr(im, "n_frames", 1)
        assert n >= 2, "GIF needs at least two frames"
        for i in range(n):
            im.seek(i)
            assert im.info.get("duration", 0) >= 50, f"frame {i} shorter than 50 ms"


def test_source_folder_untouched(quick_run):
    assert quick_run["before"] == quick_run["after"], "a script wrote into the source folder"


BAD_ARGS = [
    ("empty seed range", ["--seeds", "5-2"]),
    ("negative seed", ["--seeds", "-1"]),
    ("zero jobs", ["--jobs", "0"]),
    ("zero lr", ["--lr", "0"]),
    ("negative lr", ["--lr", "-0.1"]),
    ("unknown preset", ["--preset", "nope"]),
]


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
@pytest.mark.parametrize("label,args", BAD_ARGS, ids=[b[0] for b in BAD_ARGS])
def test_cli_bad_input(folder, label, args, tmp_path):
    out = tmp_path / "out"
    base = ["--preset", "quick", "--outdir", str(out), "--quiet"]
    r = run_script(folder / f"{module_name(folder)}.py", base + args, timeout=60)
    assert_clean_usage_error(r, label)
    assert not out.exists(), f"{label}: wrote {out}"


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_cli_unwritable_outdir(folder, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    r = run_script(folder / f"{module_name(folder)}.py",
                   ["--preset", "quick", "--outdir", str(blocker / "sub"), "--quiet"],
                   timeout=60)
    assert_clean_usage_error(r, "unwritable outdir")
    assert blocker.read_text() == "not a directory"


def assert_clean_usage_error(r, label):
    assert r.returncode == 2, f"{label}: exit {r.returncode}\n{r.stderr[-2000:]}"
    assert "Traceback" not in r.stderr, f"{label}: traceback\n{r.stderr[-2000:]}"
    errs = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(errs) == 1, f"{label}: want one error line, got\n{r.stderr}"


# ---------------------------------------------------------------------------------------
# Docs tell the truth
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_readme_sections(folder):
    text = (folder / "README.md").read_text()
    assert text.startswith(f"# {folder.name}"), "README starts with '# <slug>'"
    assert readme_sections(text) == list(README_SECTIONS)


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_readme_results_table_in_sync(folder):
    res_path = folder / "results.json"
    if not res_path.exists():
        pytest.skip("no committed results.json yet")
    mod = load_experiment(folder)
    res = load_json(res_path)
    validate_results(res)
    assert res["preset"] == "paper", "committed results.json must come from the headline run"
    assert len({s["seed"] for s in res["seeds"]}) >= 10, "a headline needs >= 10 seeds"
    text = (folder / "README.md").read_text()
    table = between_markers(text, "results")
    assert table is not None, "README lacks <!-- results --> ... <!-- /results -->"
    assert table == mod.results_table(res).strip(), "run `python tools/sync_tables.py`"
    for name in ("run.npz", f"{module_name(folder)}.gif"):
        assert (folder / name).is_file(), f"headline run artifact {name} not committed"
    assert list((folder / "viz").glob("*.png")), "headline figures not committed"


def test_catalog_in_sync():
    sync = load_script(ROOT / "tools" / "sync_tables.py")
    text = (ROOT / "README.md").read_text()
    table = between_markers(text, "catalog")
    assert table is not None, "README lacks <!-- catalog --> ... <!-- /catalog -->"
    assert table == sync.catalog_table().strip(), "run `python tools/sync_tables.py`"


def test_results_json_is_plain_json():
    for folder in FOLDERS:
        p = folder / "results.json"
        if p.exists():
            json.loads(p.read_text())  # no NaN/Infinity tokens sneak in unnoticed
            assert "NaN" not in p.read_text() and "Infinity" not in p.read_text(), p

