"""Capacity study driver (see PROTOCOL.md here): the candidate preset on fresh seeds.

    python blues-improvisation/side_runs/capacity/study.py NAME EXPERIMENT SEEDS k=v ...

Same trainer and measurement as the screen (`../attempt_screen/screen.py`), but with the
headline's attempts and updates unless overridden; one JSON line per run in results.jsonl.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "attempt_screen"))
import screen  # noqa: E402


def main() -> None:
    name, experiment, seeds = sys.argv[1:4]
    screen.run(name, experiment, seeds, screen.parse_overrides(sys.argv[4:]),
               HERE / "results.jsonl",
               " ".join(["python", "blues-improvisation/side_runs/capacity/study.py",
                         *sys.argv[1:]]))


if __name__ == "__main__":
    main()
