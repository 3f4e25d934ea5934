"""Long-horizon test of the headline's final nets (side study, issue 4).

Question: the paper says nets without forget gates fail on the continual stream because
their cell states grow without bound. In our Adam headline 3/10 `no_forget` nets passed
the paper's test (10 x 100,000 symbols) although their states did grow (|s| ~ 2-5e5 at
100k symbols). Do those nets keep working when the streams are 10x longer, i.e. is their
success a property of the net or of the test's length?

Method: load the final weights of every `forget` and `no_forget` net from the committed
run.npz, test each on 10 fresh streams of 1,000,000 symbols (rng key (seed, 400): never
used in training or in any headline test), from zero state, no resets, with the
headline's own test code (`evaluate`, all errors counted). Nothing is trained.
Then, per net, which cells stay bounded: one float64 trace of 20,000 symbols (rng key
(seed, 401)); a cell counts as bounded when max |s_c| over the last 1,000 steps < 100
(a runaway cell is at ~1e4 by then).

    python continual-embedded-reber/side_runs/long_horizon/run_long_horizon.py
"""
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
FOLDER = HERE.parents[1]
sys.path.insert(0, str(FOLDER))
import continual_embedded_reber as cer  # noqa: E402

TEST_LEN = 1_000_000
KEY = 400
TRACE_LEN, TRACE_KEY, BOUNDED = 20_000, 401, 100.0


def cell_bounds(cfg, variant: str, params: dict, seed: int) -> list:
    """max |s_c| per cell over the last 1,000 steps of a 20,000-symbol stream."""
    edges = cer.fresh_streams(cer.seed_rng(seed, TRACE_KEY), 1, TRACE_LEN)
    s = cer.trace(params, cfg, edges, False)["s"]  # (L, 1, cells)
    return [float(v) for v in np.abs(s[-1000:, 0]).max(axis=0)]


def main() -> None:
    t0 = time.perf_counter()
    cfg = replace(cer.PRESETS["modern"], test_len=TEST_LEN)
    run = np.load(FOLDER / "run.npz")
    headline = json.load(open(FOLDER / "results.json"))
    out = {"question": __doc__.split("\n\n")[1].replace("\n", " "),
           "command": "python continual-embedded-reber/side_runs/long_horizon/"
                      "run_long_horizon.py",
           "test_streams": cfg.test_streams, "test_len": TEST_LEN, "rng_key": KEY,
           "trace_len": TRACE_LEN, "trace_key": TRACE_KEY, "bounded_if_below": BOUNDED,
           "variants": {}}
    for variant in ("no_forget", "forget"):
        seeds = list(range(10))
        nets = [cer.unflatten(cfg, variant, run[f"final_{variant}_seed{s}"]) for s in seeds]
        stacked = {k: np.stack([n[k] for n in nets]) for k in nets[0]}
        t = time.perf_counter()
        ev = cer.evaluate(cfg, variant, stacked, [(s, KEY) for s in seeds], early_exit=False)
        wall = time.perf_counter() - t
        steps = ev["norm_steps"]
        at = {n: int(np.searchsorted(steps, n)) for n in (100_000, TEST_LEN)}
        rows = []
        for i, s in enumerate(seeds):
            rec = next(r for r in headline["seeds"]
                       if r["seed"] == s and r["variant"] == variant)
            first = ev["first_error"][i]
            bounds = cell_bounds(cfg, variant, nets[i], s)
            rows.append(dict(
                seed=s,
                headline_perfect=bool(rec["confirm"]["perfect"]),
                perfect_100k=bool((first >= 100_000).all()),
                perfect_1M=bool(ev["perfect"][i]),
                errors_1M=int(ev["errors"][i].sum()),
                error_free_lengths=[int(v) for v in first],
                state_norm_100k=float(ev["norm"][i, at[100_000]]),
                state_norm_1M=float(ev["norm"][i, at[TEST_LEN]]),
                cell_max_abs_s_20k=bounds,
                bounded_cells=int(sum(b < BOUNDED for b in bounds))))
            print(variant, rows[-1], flush=True)
        out["variants"][variant] = dict(wall_s=wall, nets=rows)
    out["wall_s"] = time.perf_counter() - t0
    (HERE / "results.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
