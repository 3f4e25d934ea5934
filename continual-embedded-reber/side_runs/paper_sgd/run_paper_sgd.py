"""Side study: the paper's own update scheme on the continual embedded Reber grammar.

Online gradient descent with the truncated LSTM gradient, one weight update per symbol,
lr 0.5 restarted with every training stream (and x0.99 per step for the lr-decay row),
training streams that end at the net's first error, a test (10 fresh streams x 100k symbols,
from zero state) after every training stream. All nets (rows x seeds) run in one process in
lock-step, each with its own weights and data (`train_online` in the folder's module).
See PROTOCOL.md next to this file for the protocol fixed before the run.

    python continual-embedded-reber/side_runs/paper_sgd/run_paper_sgd.py --seeds 0-9
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
import continual_embedded_reber as cer  # noqa: E402
import online_training as ot  # noqa: E402

PAPER_STREAMS = 30_000  # the paper's training budget: 30,000 training streams per net
PAPER = {  # Table 2: % perfect (mean training streams to perfect), % good
    "no_forget": "0% (–), good 1%",
    "forget": "18% (18,889), good 29%",
    "forget_decay": "62% (14,087), good 6%",
    "reset": "74% (7,441), good 0%",
}


def _rows(text):
    rows = tuple(t.strip() for t in text.split(","))
    if not rows or len(set(rows)) != len(rows) or any(r not in ot.ONLINE_ROWS for r in rows):
        raise argparse.ArgumentTypeError(f"rows from {', '.join(ot.ONLINE_ROWS)}: {text!r}")
    return rows


def summarize(recs):
    out = {}
    for row in ot.ONLINE_ROWS:
        rs = sorted((r for r in recs if r["row"] == row), key=lambda r: r["seed"])
        if not rs:
            continue
        st = cer._stat
        out[row] = dict(
            n_seeds=len(rs), solved=sum(r["solved"] for r in rs),
            solved_within_paper_streams=sum(r["solved"] and r["streams_to_solve"] <= PAPER_STREAMS
                                            for r in rs),
            stopped_by_wall=sum(r["stopped_by_wall"] for r in rs),
            confirmed_perfect=sum(r["confirm"]["perfect"] for r in rs),
            good=sum(r["confirm"]["mean_error_free_length"] > 1000 for r in rs),
            streams_to_solve=st([r["streams_to_solve"] for r in rs]),
            symbols_to_solve=st([r["symbols_to_solve"] for r in rs]),
            training_symbols=st([r["training_symbols"] for r in rs]),
            training_streams=st([r["training_streams"] for r in rs]),
            longest_training_stream=st([r["longest_training_stream"] for r in rs]),
            longest_test_run=st([r["longest_test_run"] for r in rs]),
            tests=st([r["tests"] for r in rs]),
            untested_stream_ends=st([r["untested_stream_ends"] for r in rs]),
            mean_error_free_length=st([r["confirm"]["mean_error_free_length"] for r in rs]),
            confirm_errors=st([r["confirm"]["errors"] for r in rs]),
            state_norm_end=st([r["confirm"]["state_norm_end"] for r in rs]),
        )
    return out


def table(results) -> str:
    s = results["summary"]
    lines = ["| row | paper: % perfect (mean training streams) | ours: perfect within 30,000 "
             "training streams | ours: perfect (stop test) within the symbol budget | "
             "confirmed on 10 fresh streams | training streams to perfect, median (min–max) | "
             "training symbols to perfect, median (min–max) | training symbols per net, "
             "median (min–max) | mean error-free length (confirm), median (min–max) | good "
             "(> 1000) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row, d in s.items():
        n = d["n_seeds"]
        lines.append(f"| {row} | {PAPER[row]} | {d['solved_within_paper_streams']}/{n} | "
                     f"{d['solved']}/{n} | {d['confirmed_perfect']}/{n} "
                     f"| {cer._mmm(d['streams_to_solve'])} | {cer._mmm(d['symbols_to_solve'])} | "
                     f"{cer._mmm(d['training_symbols'])} | "
                     f"{cer._mmm(d['mean_error_free_length'])} | {d['good']}/{n} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # this study's settings (the paper preset's budget differs: 30,000 streams, 30M symbols)
    d = dataclasses.replace(cer.OnlineConfig(), rows=ot.ONLINE_ROWS, max_symbols=3_000_000,
                            max_streams=10**9)
    ap.add_argument("--seeds", type=cer.parse_seeds, default=cer.parse_seeds("0-9"))
    ap.add_argument("--rows", type=_rows, default=d.rows, help="Table 2 rows")
    ap.add_argument("--max-symbols", type=cer._positive(int), default=d.max_symbols,
                    help="training symbols per net")
    ap.add_argument("--max-streams", type=cer._positive(int), default=d.max_streams,
                    help="training streams per net (the paper stopped at 30,000)")
    ap.add_argument("--max-wall", type=cer._positive(float), default=None,
                    help="seconds after which every net stops training (safety cap)")
    ap.add_argument("--test-len", type=cer._positive(int), default=d.test_len)
    ap.add_argument("--init-from", default=None,
                    help="weights.npz of an earlier run: continue training those nets")
    ap.add_argument("--data-key", type=int, default=d.data_key,
                    help="rng key of the training data (tests: +10); use a fresh one to continue")
    ap.add_argument("--outdir", default=str(HERE))
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    outdir = Path(args.outdir)
    cer.check_outdir(ap, outdir)
    ocfg = dataclasses.replace(d, rows=args.rows, max_symbols=args.max_symbols,
                               max_streams=args.max_streams, test_len=args.test_len,
                               max_wall_s=args.max_wall or 0.0, data_key=args.data_key)
    init = None
    if args.init_from:
        saved = np.load(args.init_from)
        init = {}
        for r in ocfg.rows:
            for s in args.seeds:
                pre = f"{r}_seed{s}_"
                init[(r, s)] = {k[len(pre):]: saved[k] for k in saved.files if k.startswith(pre)}
                if not init[(r, s)]:
                    ap.error(f"--init-from has no weights for {r} seed {s}")
    t0 = time.strftime("%H:%M:%S")

    def log(msg):
        if not args.quiet:
            print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    log(f"start {t0}: rows {ocfg.rows} seeds {args.seeds}")
    nets = [(r, s) for r in ocfg.rows for s in args.seeds]
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        recs = ot.train_online(ocfg, nets, log, init)
    except FloatingPointError as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 1
    train_wall, train_cpu = time.perf_counter() - w0, time.process_time() - c0
    log(f"training done in {train_wall:.0f} s wall ({train_cpu:.0f} s cpu); confirming")
    ot.confirm_online(ocfg, recs)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    np.savez_compressed(outdir / "weights.npz", **{
        f"{r['row']}_seed{r['seed']}_{k}": v for r in recs for k, v in r["final_params"].items()})
    clean = [{k: v for k, v in r.items() if k not in ("final_params", "wall_s", "steps",
                                                      "steps_per_s", "symbols_per_s")}
             for r in recs]
    results = dict(
        experiment="continual-embedded-reber side study: the paper's online SGD",
        command=["run_paper_sgd.py"] + list(sys.argv[1:] if argv is None else argv),
        config=dataclasses.asdict(ocfg), seeds=list(args.seeds),
        env=dict(python=platform.python_version(), numpy=np.__version__,
                 platform=platform.platform(), processes=1),
        wallclock_s=wall, cpu_s=cpu, train_wallclock_s=train_wall, train_cpu_s=train_cpu,
        lockstep_steps=recs[0]["steps"], nets=len(recs),
        steps_per_s=recs[0]["steps"] / train_wall,
        symbols_per_s=sum(r["training_symbols"] for r in recs) / train_wall,
        symbols_per_cpu_s=sum(r["training_symbols"] for r in recs) / train_cpu,
        paper_reference=cer.PAPER_TABLE2, summary=summarize(clean), records=clean)
    cer.atomic_write_json(outdir / "results.json", cer._jsonable(results))
    if not args.quiet:
        print(table(results))
        print(f"wall {wall:.0f} s (training {train_wall:.0f} s), "
              f"{results['symbols_per_s'] / 1e3:.0f}k training symbols/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
