"""Shared contract tests (SPEC.md section 8), parametrised over every experiment folder.

A new folder is covered the day it lands; with no folders the parametrised tests collect
nothing and the rest of the suite still runs.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import (
    PRESET_NAMES,
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
    process_group_members,
    readme_sections,
    run_script,
    script_env,
    sigint_default,
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
    for attr in ("Config", "PRESETS", "RUNS", "init_params", "loss_and_grads", "loss",
                 "sample_batch", "GRADCHECK_CASES", "train", "results_table", "headline",
                 "finalize_results", "overview", "main"):
        assert hasattr(mod, attr), f"{folder.name}: missing {attr}"
    assert mod.__doc__ and len(mod.__doc__) > 100, "module docstring: citation, claim, command"
    assert set(mod.PRESETS) == set(PRESET_NAMES), f"PRESETS must be {PRESET_NAMES}"
    assert set(mod.RUNS) == set(PRESET_NAMES), f"RUNS must name the runs of {PRESET_NAMES}"
    assert "." in mod.RUNS["modern"], "the modern run is the folder-root run"
    for preset, runs in mod.RUNS.items():
        for sub, args in runs.items():
            assert "--outdir" not in args and "--jobs" not in args, "run_all sets these"
            if args and args[0].endswith(".py"):  # a second script: runs in <stem>/...
                second = load_script(folder / args[0])
                assert hasattr(second, "headline") and hasattr(second, "finalize_results")
                stem = args[0].removesuffix(".py")
                assert sub.startswith(f"{stem}/") if preset == "paper" else sub == stem
                sub = sub.removeprefix(f"{stem}/")
            if preset == "paper":
                assert sub.startswith("paper"), "paper runs: paper*/ or <second script>/paper*/"
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
    wrote = {ln.split(" ", 1)[1].strip() for ln in r.stdout.splitlines()
             if ln.startswith("wrote ")}
    for name in ("results.json", "run.npz"):
        assert str(quick_run["out"] / name) in wrote, f"no 'wrote PATH' line for {name}"
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
    ("repeated seed", ["--seeds", "1,1"]),
    ("empty outdir", ["--outdir", ""]),
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


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_help_shows_one_default_per_flag(folder):
    m = module_name(folder)
    for script in (f"{m}.py", f"visualize_{m}.py", f"make_{m}_gif.py"):
        r = run_script(folder / script, ["--help"], timeout=60)
        assert r.returncode == 0, r.stderr
        text = " ".join(r.stdout.split())
        assert "default: None" not in text, f"{script}: '(default: None)' in --help"
        entries = re.split(r" (?=-{1,2}[a-z])", text.split("options:", 1)[-1])
        for e in entries:
            assert e.count("default") <= 1, f"{script}: two defaults in {e!r}"
    r = run_script(folder / f"{m}.py", ["--help"], timeout=60)
    assert f"runs/{folder.name}" in "".join(r.stdout.split()), \
        "--outdir must default to runs/<folder>/ and say so"


@pytest.mark.parametrize("how", ["ctrl_c", "kill_pid"])
@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_sigint_stops_a_parallel_run(folder, how, tmp_path):
    """Ctrl-C (SIGINT to the process group) or `kill PID` (SIGTERM to the parent alone)
    -> exit 130 within 2 s, nothing written, no worker left behind."""
    out = tmp_path / "out"
    cmd = [sys.executable, str(folder / f"{module_name(folder)}.py"), "--preset", "modern",
           "--seeds", "0-3", "--jobs", "2", "--outdir", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=script_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    try:
        t_start = time.perf_counter()        # wait for the parent and two workers ...
        while (len(process_group_members(proc.pid)) < 3 and proc.poll() is None
               and time.perf_counter() - t_start < 20):
            time.sleep(0.1)
        time.sleep(1.0)                      # ... and past start-up: workers are training
        if proc.poll() is not None:
            pytest.fail(f"the modern run ended before the interrupt (exit {proc.returncode}): "
                        f"cannot test it\n{proc.stderr.read()[-2000:]}")
        assert len(process_group_members(proc.pid)) >= 2, "no worker processes started"
        t0 = time.perf_counter()
        if how == "ctrl_c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("still running 10 s after SIGINT")
        took = time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, f"exit {proc.returncode}\n{err[-2000:]}"
    assert took <= 2.0, f"took {took:.1f} s to stop"
    assert "Traceback" not in err, err[-2000:]
    time.sleep(0.3)
    left = process_group_members(proc.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"worker processes left behind: {left}"
    for name in ("results.json", "run.npz"):
        assert not (out / name).exists(), f"{name} written after SIGINT"


def test_merged_split_run_equals_single_run(quick_run, quick_run_0_3, tmp_path):
    """seeds 0-1 (the quick run) and 2-3 run apart and merged equal the run over 0-3."""
    folder = quick_run["folder"]
    assert quick_run["main"].returncode == 0
    m = module_name(folder)
    parts = [str(quick_run["out"])]
    d = tmp_path / "2-3"
    r = run_script(folder / f"{m}.py", ["--preset", "quick", "--seeds", "2-3", "--jobs", "2",
                                        "--outdir", str(d), "--quiet"], timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    parts.append(str(d))
    merged = tmp_path / "merged"
    r = run_script(ROOT / "tools" / "merge_runs.py", [*parts, "--outdir", str(merged)])
    assert r.returncode == 0, r.stderr[-2000:]
    single = quick_run_0_3[folder.name]
    a, b = load_json(merged / "results.json"), load_json(single / "results.json")
    validate_results(a)
    for res in (a, b):
        for key in ("command", "env", "merged_from"):
            res.pop(key, None)
    assert_same_record(a, b, "results")
    with np.load(merged / "run.npz") as za, np.load(single / "run.npz") as zb:
        assert sorted(za.files) == sorted(zb.files), "run.npz keys differ"
        for k in za.files:
            x, y = za[k], zb[k]
            nan_ok = x.dtype.kind in "fc" and y.dtype.kind in "fc"
            assert np.array_equal(x, y, equal_nan=nan_ok), f"run.npz[{k!r}] differs"


def test_merge_runs_of_a_second_script(tmp_path):
    """merge_runs finds a second script's module by the run's experiment ("F/cnto"): the
    committed CNTO run split by seed and merged again is that run."""
    import shutil

    src = ROOT / "continual-embedded-reber" / "cnto"
    whole = load_json(src / "results.json")
    parts = []
    for name, keep in (("lo", range(0, 5)), ("hi", range(5, 10))):
        d = tmp_path / name
        d.mkdir()
        part = dict(whole, seeds=[r for r in whole["seeds"] if r["seed"] in keep])
        (d / "results.json").write_text(json.dumps(part))
        shutil.copy(src / "run.npz", d / "run.npz")
        parts.append(str(d))
    r = run_script(ROOT / "tools" / "merge_runs.py", [*parts, "--outdir", str(tmp_path / "m")])
    assert r.returncode == 0, r.stderr[-2000:]
    merged = load_json(tmp_path / "m" / "results.json")
    assert merged["experiment"] == "continual-embedded-reber/cnto"
    assert merged["command"][1] == "tools/merge_runs.py"
    for res in (merged, whole):
        for key in ("command", "merged_from", "wallclock_s"):
            res.pop(key, None)
    assert_same_record(merged, whole, "results")
    bad = dict(whole, experiment="continual-embedded-reber/nothing")
    (tmp_path / "lo" / "results.json").write_text(json.dumps(bad))
    r = run_script(ROOT / "tools" / "merge_runs.py", [parts[0], "--outdir", str(tmp_path / "x")])
    assert r.returncode == 2 and "no experiment 'continual-embedded-reber/nothing'" in r.stderr


@pytest.fixture(scope="module")
def quick_run_0_3(tmp_path_factory):
    """{folder name: outdir} of the quick preset over seeds 0-3, made once per folder."""
    class Runs(dict):
        def __missing__(self, name):
            folder = ROOT / name
            out = tmp_path_factory.mktemp(f"{name}-0-3")
            r = run_script(folder / f"{module_name(folder)}.py",
                           ["--preset", "quick", "--seeds", "0-3", "--jobs", "2",
                            "--outdir", str(out), "--quiet"], timeout=240)
            assert r.returncode == 0, r.stderr[-2000:]
            self[name] = out
            return out

    return Runs()


def _other_experiment(folder):
    others = [f for f in FOLDERS if f != folder and (f / "results.json").is_file()]
    return others[0] if others else None


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_figure_scripts_refuse_bad_rundir(folder, tmp_path):
    import shutil

    m = module_name(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [("missing", tmp_path / "missing"), ("empty", empty)]
    other = _other_experiment(folder)
    if other is not None:
        wrong = tmp_path / "other"
        wrong.mkdir()
        for name in ("results.json", "run.npz"):
            if (other / name).is_file():
                shutil.copy(other / name, wrong / name)
        cases.append(("other experiment's run", wrong))
    for script in (f"visualize_{m}.py", f"make_{m}_gif.py"):
        for label, d in cases:
            before = tree_digest(d) if d.exists() else None
            r = run_script(folder / script, ["--rundir", str(d)], timeout=60)
            assert_clean_usage_error(r, f"{script} on {label} rundir")
            assert (tree_digest(d) if d.exists() else None) == before, \
                f"{script} wrote into the {label} rundir"


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
    assert res["preset"] == "modern", "the folder-root results.json is the modern headline"
    assert len({s["seed"] for s in res["seeds"]}) >= 10, "a headline needs >= 10 seeds"
    paper_runs = {}
    for sub in sorted(folder.glob("paper*")):
        if (sub / "results.json").is_file():
            paper_runs[sub.name] = load_json(sub / "results.json")
            validate_results(paper_runs[sub.name])
            assert paper_runs[sub.name]["preset"] == "paper", f"{sub.name}/ holds a paper run"
    text = (folder / "README.md").read_text()
    table = between_markers(text, "results")
    assert table is not None, "README lacks <!-- results --> ... <!-- /results -->"
    want = mod.results_table(res, paper_runs).strip()
    for block in text.split("<!-- results -->")[1:]:
        assert block.split("<!-- /results -->", 1)[0].strip() == want, \
            "run `python tools/sync_tables.py`"
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



FORBIDDEN_IN_README = (r"\bissues?\b", r"PAPERS\.md", r"\bprobes?\b", r"autogroup", r"/proc/",
                       r"\bCEO\b")


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_readme_is_for_readers(folder):
    """<= 2,000 words, the results table in the first screen, no process talk."""
    text = (folder / "README.md").read_text()
    words = len(text.split())
    assert words <= 2000, f"README has {words} words (at most 2,000)"
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip() == "<!-- results -->"), None)
    assert first is not None and first < 30, \
        "the generated results table must stand within the first screen (30 lines)"
    for pat in FORBIDDEN_IN_README:
        hit = re.search(pat, text, flags=re.IGNORECASE)
        assert hit is None, f"README speaks of process: {hit.group(0)!r}"


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_side_runs_live_under_side_runs(folder):
    """The folder root holds the main files, results, figures, paper*/ and side_runs/, and
    for a second experiment script `<name>.py` of the paper its committed runs in `<name>/`."""
    m = module_name(folder)
    allowed_files = {f"{m}.py", f"visualize_{m}.py", f"make_{m}_gif.py", "README.md",
                     "results.json", "run.npz", f"{m}.gif", f"{m}.mid", f"{m}.wav"}
    scripts = {p.stem for p in folder.glob("*.py")} - {m, f"visualize_{m}", f"make_{m}_gif"}
    allowed_dirs = {"viz", "side_runs", "__pycache__"} | scripts
    for p in folder.iterdir():
        if p.is_dir():
            assert p.name in allowed_dirs or p.name.startswith("paper"), \
                f"{p.name}/ belongs under side_runs/"
        else:
            assert p.name in allowed_files or p.suffix == ".py", \
                f"{p.name} belongs under side_runs/"
    for study in (folder / "side_runs").glob("*") if (folder / "side_runs").is_dir() else []:
        if study.is_dir():
            assert (study / "README.md").is_file(), f"side_runs/{study.name} lacks README.md"


def test_overview_figure(tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "overview.png"
    r = run_script(ROOT / "tools" / "overview.py", ["--out", str(out)], timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    img = iio.imread(out)
    assert img.ndim == 3 and img.shape[0] > 200 and img.std() > 0
    assert (ROOT / "viz" / "overview.png").is_file(), "viz/overview.png not committed"


def _in_order(flags: list, argv: list) -> bool:
    it = iter(argv)
    return all(f in it for f in flags)


def test_committed_runs_are_the_runs_RUNS_names():
    """tools/run_all.py reruns what is committed: every committed run of a RUNS entry was
    made by that entry's script with its flags (in order), and a second script's runs
    (cnto.py) are found, with the figure scripts that exist for them."""
    run_all = load_script(ROOT / "tools" / "run_all.py")
    seen = 0
    for folder in FOLDERS:
        for preset in ("modern", "paper"):
            for run in run_all.folder_runs(folder, preset):
                assert run["figures"] and all(f.is_file() for f in run["figures"])
                path = folder / run["sub"] / "results.json"
                if not path.is_file():
                    continue
                res = load_json(path)
                cmd = res["command"]
                assert cmd[1] == str(run["script"].relative_to(ROOT)), (folder.name, cmd)
                assert _in_order(run["flags"], cmd[2:]), (folder.name, run["flags"], cmd)
                seen += 1
    assert seen >= 10
    cerg = next(f for f in FOLDERS if f.name == "continual-embedded-reber")
    runs = {r["sub"]: r for r in run_all.folder_runs(cerg, "paper")}
    assert runs["cnto/paper"]["script"] == cerg / "cnto.py"
    assert runs["cnto/paper"]["flags"] == ["--preset", "paper", "--seeds", "0-9"]
    assert [f.name for f in runs["cnto/paper"]["figures"]] == ["visualize_cnto.py"]


def test_run_all_quick_one_folder(tmp_path):
    folder = FOLDERS[0]
    r = run_script(ROOT / "tools" / "run_all.py",
                   ["--preset", "quick", "--jobs", "2", "--only", folder.name,
                    "--runs-root", str(tmp_path)], timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rundir = tmp_path / folder.name
    res = load_json(rundir / "results.json")
    assert res["preset"] == "quick"
    assert list((rundir / "viz").glob("*.png")), "run_all did not draw the figures"
    assert "| run | result (vs paper) | wall |" in r.stdout


def test_collection_files():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "cff-version" in (ROOT / "CITATION.cff").read_text()
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()
    assert "runs/" in (ROOT / ".gitignore").read_text().split()
