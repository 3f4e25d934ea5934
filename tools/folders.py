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


def load_module(folder: Path):
    """Import <folder>/<slug_>.py once, registered under its module name."""
    name = module_name(folder)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


def load_paper_runs(folder: Path) -> dict:
    """{subfolder name: results} of the committed paper-procedure runs (`paper*/results.json`)."""
    return {sub.name: load_json(sub / "results.json") for sub in sorted(folder.glob("paper*"))
            if sub.is_dir() and (sub / "results.json").is_file()}
