"""Kernel benchmark: seconds per training update of one task setting, 10 seeds x all nets.

    python timing-counting-spikes/side_runs/speed/bench.py [MODULE_PATH] [--updates N]

Runs train_setting (or, with --stack, train_group) for a few settings with the modern
preset but only N updates and 1-spike selection/test streams, and prints CPU seconds per
update. MODULE_PATH defaults to
the folder's timing_counting_spikes.py; pass an older copy to compare.
"""

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ap = argparse.ArgumentParser()
ap.add_argument("module", nargs="?", default=str(HERE.parents[1] / "timing_counting_spikes.py"))
ap.add_argument("--updates", type=int, default=300)
ap.add_argument("--tasks", default="msd_F10_I01,gts_F10,pfg_cos_F25")
ap.add_argument("--preset", default="modern", help="(new code) the preset to time")
ap.add_argument("--stack", action="store_true",
                help="(new code) settings of one kind and period in one kernel call")
ap.add_argument("--inits", default=None, help="comma list (new code only): the rows' inits")
args = ap.parse_args()
spec = importlib.util.spec_from_file_location("tcs_bench", args.module)
M = importlib.util.module_from_spec(spec)
sys.modules["tcs_bench"] = M
spec.loader.exec_module(M)
base = M.PRESETS.get(args.preset, M.PRESETS["paper"])
out = {}
names = args.tasks.split(",")
units = M.stack_groups(names) if args.stack else [(n,) for n in names]
for group in units:
    task = M.parse_task(group[0])
    L = M.chunk_len(base, task)
    cfg = dataclasses.replace(base, tasks=group, train_steps=L * args.updates, steps_per_F=0,
                              test_spikes=1, select_spikes=1)
    if args.inits:
        cfg = dataclasses.replace(cfg, inits=tuple(args.inits.split(",")))
    t0 = time.process_time()
    if len(group) > 1:
        M.train_group(cfg, group, list(range(10)))
    else:
        M.train_setting(cfg, group[0], list(range(10)))
    dt = time.process_time() - t0
    key = "+".join(group)
    full = M.n_updates(base, task)                  # the preset's own budget
    out[key] = dict(chunk=L, updates=args.updates, cpu_s=round(dt, 2),
                    ms_per_update=round(1e3 * dt / args.updates, 2), preset_updates=full,
                    preset_cpu_s=round(dt / args.updates * full))
    print(key, out[key], flush=True)
print(json.dumps(out))
