"""Would culling a population of training attempts reach the bar at 8 chord blocks?

Resamples the measured 8-block attempts (the screen's base rows and the 8-block headline's
attempts, 3000 updates each, bar weight 8): for each attempt its held-out loss at updates
1000 and 2000 and the update at which it validated (if it did). A seed's population of N
candidates is drawn with replacement; at 1000 and 2000 updates it keeps the better half
(rounded up) by held-out loss; it succeeds if a live candidate validates by then. Prints
the success probability per seed beside N sequential attempts, and the update budget.

    python blues-improvisation/side_runs/attempt_screen/population_resample.py HEADLINE.json
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NEVER = 10**9


def pools(headline_path: str) -> dict:
    """Per experiment: rows (held-out loss at 1000, at 2000, update validated or NEVER)."""
    out = {"chords": [], "melody": []}
    for line in open(HERE / "results.jsonl"):
        d = json.loads(line)
        if d["name"] != "base":
            continue
        for h, stop in zip(d["heldout_curves"], d["stop"], strict=True):
            h = (h + [np.nan] * 12)[:12]  # eval every 250 updates: index 3 = 1000, 7 = 2000
            out[d["experiment"]].append((h[3], h[7], stop or NEVER))
    for rec in json.load(open(headline_path))["seeds"]:
        exp, model = rec["variant"].split("/")
        if model != "lstm":
            continue
        c = rec["curves"]
        att, ho, val = (np.array(c[k]) for k in ("attempt", "heldout_loss", "val_correct"))
        for a in np.unique(att):
            m = att == a
            h = (list(ho[m]) + [np.nan] * 12)[:12]
            won = np.flatnonzero(val[m] == 10)
            out[exp].append((h[3], h[7], (won[0] + 1) * 250 if won.size else NEVER))
    return {k: np.array(v, dtype=float) for k, v in out.items()}


def population_success(pool: np.ndarray, n: int, rng, trials: int = 20000) -> float:
    wins = 0
    for _ in range(trials):
        c = pool[rng.integers(len(pool), size=n)]
        if (c[:, 2] <= 1000).any():
            wins += 1
            continue
        c = c[np.argsort(c[:, 0])[:(n + 1) // 2]]  # cull at 1000 by held-out loss
        if (c[:, 2] <= 2000).any():
            wins += 1
            continue
        c = c[np.argsort(c[:, 1])[:(len(c) + 1) // 2]]  # cull at 2000
        wins += bool((c[:, 2] <= 3000).any())
    return wins / trials


def main() -> None:
    rng = np.random.default_rng(0)
    for exp, pool in pools(sys.argv[1]).items():
        p = float(np.mean(pool[:, 2] <= 3000))
        print(f"{exp}: {len(pool)} attempts, {p:.3f} validate within 3000 updates")
        for n in (4, 6, 8, 10, 12, 16):
            half = (n + 1) // 2
            budget = 1000 * (n + half + (half + 1) // 2)
            print(f"  population {n:2d}: {population_success(pool, n, rng):.3f} per seed, "
                  f"{budget} updates; {budget // 3000} sequential attempts: "
                  f"{1 - (1 - p) ** (budget // 3000):.3f}")


if __name__ == "__main__":
    main()
