"""Throughput of the paper preset's kernel: one online step of a stack of N trials.

    python temporal-order-4bit/side_runs/speed/bench_online.py [--out PATH]

For each task and stack size N, times `stack_update` (forward over max_len = 110 steps, the
truncated gradient, the SGD update of every trial) on fixed sequences, best of 5 repeats of
100 calls, and reports trial-steps per second (N x 110 / time per call), wall and CPU.
Writes side_runs/speed/bench_online.json by default.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
import online_1997  # noqa: E402
import temporal_order_4bit as tob  # noqa: E402


def bench(cfg, n, calls=100, repeats=5):
    rng = np.random.default_rng(0)
    p = tob.init_params(cfg, rng)
    seqs = tob.sample_sequences(cfg, rng, n)
    sym = np.full((n, cfg.max_len), -1)
    sym[:, :seqs["symbols"].shape[1]] = seqs["symbols"]
    d = np.eye(cfg.n_classes)[seqs["labels"]]
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        w, w_out = np.stack([p["W"]] * n), np.stack([p["W_out"]] * n)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(calls):
            online_1997.stack_update(w, w_out, sym, seqs["lengths"], d, cfg, 0.0)
        best_wall = min(best_wall, (time.perf_counter() - t) / calls)
        best_cpu = min(best_cpu, (time.process_time() - c) / calls)
    steps = n * cfg.max_len
    return {"task": cfg.task, "stack": n, "ms_per_call_wall": 1e3 * best_wall,
            "ms_per_call_cpu": 1e3 * best_cpu, "trial_steps_per_s_wall": steps / best_wall,
            "trial_steps_per_s_cpu": steps / best_cpu}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "bench_online.json"), help="output JSON")
    args = ap.parse_args(argv)
    rows = []
    for task, blocks in (("6b", 3), ("6a", 2)):
        cfg = dataclasses.replace(tob.PRESETS["paper"], task=task, blocks=blocks)
        for n in (1, 5, 10, 20):
            rows.append(bench(cfg, n))
            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.write_text(json.dumps({"command": ["python", *sys.argv], "python":
                               platform.python_version(), "numpy": np.__version__,
                               "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
