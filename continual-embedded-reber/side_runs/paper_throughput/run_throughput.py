"""Throughput of the paper scheme's lock-step kernel at 30, 100 and 150 nets.

Each size trains N fresh nets (Table 2's six rows dealt over seeds 1000, 1001, ...; untrained
nets, so training streams end often and a test starts after almost every one) for a fixed
number of lock-step steps, tests included, and reports training net-symbols per CPU-second
of this process (time.process_time). Run it under one CPU slot, nothing else of it in
parallel:

    python continual-embedded-reber/side_runs/paper_throughput/run_throughput.py

Writes results.json next to this file unless --out says otherwise.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
import continual_embedded_reber as cer  # noqa: E402
import online_training as ot  # noqa: E402


def measure(n_nets: int, steps: int) -> dict:
    rows = cer.PAPER_ROWS
    nets = [(rows[i % len(rows)], 1000 + i // len(rows)) for i in range(n_nets)]
    run = ot.OnlineRun(cer.PRESETS["paper"], nets)
    run.run(until_step=run.B)  # one warm-up block (allocations, caches)
    s0, c0, w0 = int(run.symbols.sum()), time.process_time(), time.perf_counter()
    n0 = run.step
    run.run(until_step=n0 + steps)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    sym = int(run.symbols.sum()) - s0
    return dict(nets=n_nets, lockstep_steps=run.step - n0, net_symbols=sym,
                cpu_time_s=cpu, wallclock_s=wall, net_symbols_per_cpu_s=sym / cpu,
                tests_running_at_end=int(run.t_on.sum()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--sizes", default="30,100,150", help="comma list of net counts")
    ap.add_argument("--steps", type=int, default=3 * 4096, help="lock-step steps per size")
    ap.add_argument("--out", default=str(HERE / "results.json"), help="results file")
    args = ap.parse_args(argv)
    sizes = [int(t) for t in args.sizes.split(",")]
    rows = [measure(n, args.steps) for n in sizes]
    for r in rows:
        print(f"{r['nets']:4d} nets: {r['net_symbols_per_cpu_s'] / 1e3:.0f}k net-symbols per "
              f"CPU-second ({r['cpu_time_s']:.1f} s CPU for {r['net_symbols']:,} net-symbols)")
    out = dict(experiment="continual-embedded-reber side run: paper-scheme kernel throughput",
               command=["python", "continual-embedded-reber/side_runs/paper_throughput/"
                        "run_throughput.py", *(sys.argv[1:] if argv is None else argv)],
               env=dict(python=platform.python_version(), numpy=np.__version__,
                        platform=platform.platform(), **cer.git_info()),
               config=dict(sizes=sizes, steps=args.steps), results=rows)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
