"""What the tools share: finding the experiment folders, importing a folder's module by
path, and reading its committed runs. The folders themselves never import this."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(folder: Path) -> str:
    return folder.name.replace("-", "_")


def discover_folders() -> list[Path]:
    """Top-level folders D holding D/<D with - -> _>.py, sorted by name."""
    return sorted(d for d in ROOT.iterdir()
                  if d.is_dir() and not d.name.startswith(".")
                  and (d / f"{module_name(d)}.py").is_file())


def _import(name: str, path: Path):
    """Import the script at path once, registered in sys.modules as name."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_module(folder: Path):
    """Import <folder>/<slug_>.py once, registered under its module name."""
    name = module_name(folder)
    return _import(name, folder / f"{name}.py")


def load_script_module(path: Path):
    """Import a folder's second script (e.g. continual-embedded-reber/cnto.py) once,
    registered under its file stem, after the folder's main module it imports."""
    load_module(path.parent)
    return _import(path.stem, path)


def experiment_path(experiment: str) -> Path:
    """The script whose runs carry results.json "experiment" = `experiment`: a folder's main
    script ("F") or a second script of that folder ("F/name" -> F/name.py)."""
    folder, _, name = experiment.partition("/")
    return ROOT / folder / (f"{name}.py" if name else f"{module_name(ROOT / folder)}.py")


def load_experiment(experiment: str):
    """The module of the script that writes runs of `experiment`."""
    path = experiment_path(experiment)
    if path.stem == module_name(path.parent):
        return load_module(path.parent)
    return load_script_module(path)


def load_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


def load_paper_runs(folder: Path) -> dict:
    """{subfolder name: results} of the committed paper-procedure runs (`paper*/results.json`)."""
    return {sub.name: load_json(sub / "results.json") for sub in sorted(folder.glob("paper*"))
            if sub.is_dir() and (sub / "results.json").is_file()}
