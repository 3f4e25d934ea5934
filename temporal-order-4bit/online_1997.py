"""The 1997 procedure for temporal order (`--preset paper`): online gradient descent.

S. Hochreiter and J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8):
1735-1780, 1997, Experiment 6.

The main script's `--preset paper` trains through this file: one training sequence per
update, the LSTM's truncated gradient (the RNN's full one), the paper's stop rule judged on
every sequence as it is presented, checkpoints per trial that resume bit-identically, and
the independent trials stacked in one kernel call.

The file reads top to bottom: the stacked online updates (LSTM, RNN) -> one trial's state,
data and stop rule -> checkpoints -> the training loop. Task, network, init, stop rule,
evaluation and results are the main script's (`temporal_order_4bit`, imported as `tob`);
the main script imports this file only for the paper preset.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported by path (tests): find the main script beside it
    sys.path.insert(0, str(HERE))
import temporal_order_4bit as tob  # noqa: E402

# ---------------------------------------------------------------------------------------
# The 1997 procedure: online gradient descent with the truncated gradient, trials stacked
#
# Every trial (seed) has its own weights, training-data stream and stop rule.  One kernel
# call runs one training sequence of every active trial (a batch of nets x 1 sequence)
# and updates each trial's weights from its own sequence.  The error arrives only at a
# sequence's last step, so the paper's per-step truncated-RTRL update is zero before that
# step and at it equals this per-sequence update with the truncated gradient (a test
# checks it against a per-step RTRL implementation).  Every call runs max_len steps (the
# shorter sequences are padded), so a trial's arithmetic does not depend on its stack.
# ---------------------------------------------------------------------------------------
_ONEHOT = np.vstack([np.eye(tob.N_IN), np.zeros((1, tob.N_IN))])  # symbol -1 (padding) -> 0


def _gate_columns(cfg: tob.Config) -> np.ndarray:
    """Columns of W repeated per cell: [cells | input gate of each cell's block | output]."""
    nc, nb = tob.n_cells(cfg), cfg.blocks
    blk = np.arange(nc) // cfg.cells
    return np.concatenate([np.arange(nc), nc + blk, nc + nb + blk])


def _sgd_step(w, w_out, dw, feat, e, lr) -> None:
    """The online update of a stack: w -= lr dw, and W_out by its gradient from the output
    deltas e (N, K) and the features feat (N, F) the outputs read."""
    dw_out = np.empty_like(w_out)
    dw_out[:, :-1] = feat[:, :, None] * e[:, None, :]
    dw_out[:, -1] = e
    w -= lr * dw                                               # online gradient descent
    w_out -= lr * dw_out


def stack_update(w: np.ndarray, w_out: np.ndarray, sym: np.ndarray, lengths: np.ndarray,
                 d: np.ndarray, cfg: tob.Config, lr: float) -> np.ndarray:
    """One online step of a stack of N LSTMs, each on its own sequence.

    w (N, R, cells + 2 blocks) and w_out (N, cells + 1, K), float64, are updated in place:
    w -= lr * dE/dw with the 1997 truncated gradient of E = 1/2 sum_k (y_k - d_k)^2 (the
    paper's output delta e_k = f'(net_k)(t_k - y_k)).  sym (N, max_len) symbols padded
    with -1, lengths (N,), d (N, K) one-hot targets.  Returns y (N, K) before the update.
    """
    nc, nb, c = tob.n_cells(cfg), cfg.blocks, cfg.cells
    n, t_max = sym.shape
    r_yc, r_in, r_out, r_b = tob.N_IN, tob.N_IN + nc, tob.N_IN + nc + nb, tob.N_IN + nc + 2 * nb
    # sigma(a) = (1 + tanh(a/2)) / 2: one tanh per step on net/2 (weights halved), so
    # u = tanh(net/2), y^in = (1 + u_in)/2, y^in g(net_c) = (1 + u_in) u_c, h(s) = tanh(s/2)
    w_h = 0.5 * w[:, :, _gate_columns(cfg)]                    # (N, R, 3 cells)
    z = np.zeros((t_max + 1, n, 1, r_b + 1))                   # z_t: what units see at t
    z[:t_max, :, 0, :tob.N_IN] = _ONEHOT[sym.T]
    z[:, :, 0, r_b] = 1.0
    u = np.empty((t_max, n, 1, 3 * nc))                        # tanh(net/2) of c | in | out
    hs = np.empty((t_max, n, nc))                              # h(s_c)
    s = np.zeros((n, nc))                                      # s_c, initial state 0
    q = np.empty((n, nc))
    for t in range(t_max):
        ut = np.matmul(z[t], w_h, out=u[t])                    # net/2 of c, in, out
        np.tanh(ut, out=ut)
        ut = ut[:, 0]
        np.add(ut[:, nc:2 * nc], 1.0, out=q)
        q *= ut[:, :nc]                                        # y^in g(net_c)
        s += q                                                 # s_c(t) = s_c(t-1) + y^in g
        h = np.multiply(s, 0.5, out=hs[t])
        np.tanh(h, out=h)                                      # h(s_c) = 2 sigma(s_c) - 1
        nxt = z[t + 1, :, 0]                                   # recurrent inputs of t+1
        yc = np.add(ut[:, 2 * nc:], 1.0, out=nxt[:, r_yc:r_in])
        yc *= h
        yc *= 0.5                                              # y^c = y^out h(s_c)
        gin = np.add(ut[:, nc:2 * nc:c], 1.0, out=nxt[:, r_in:r_out])
        gin *= 0.5                                             # y^in
        gout = np.add(ut[:, 2 * nc::c], 1.0, out=nxt[:, r_out:r_b])
        gout *= 0.5                                            # y^out
    sig = u[:, :, 0]
    sig += 1.0
    sig *= 0.5                                                 # sigma(net) of c | in | out
    last, rows = lengths - 1, np.arange(n)
    feat = z[last + 1, rows, 0, r_yc:r_in]                     # y^c at each own last step
    z = z[:t_max]
    y = tob._sigmoid(np.matmul(feat[:, None, :], w_out[:, :-1])[:, 0] + w_out[:, -1])
    # truncated gradient (lstm_backward_truncated, one sequence per net)
    e = (y - d) * y * (1.0 - y)                                # dE/dnet_k
    dyc = np.matmul(e[:, None, :], w_out[:, :-1].transpose(0, 2, 1))[:, 0]   # dE/dy^c
    sg_last, h_last = sig[last, rows], hs[last, rows]
    ds = dyc * sg_last[:, 2 * nc:] * 0.5 * (1.0 - h_last * h_last)   # y^c = y^out h(s_c)
    live = (np.arange(t_max)[:, None] <= last[None, :])[:, :, None]  # t <= L-1
    ds_t = np.where(live, ds[None], 0.0)                       # the CEC: constant back in time
    sgt = sig
    dsig = np.empty((t_max, n, 3 * nc))
    np.multiply(ds_t, sgt[:, :, nc:2 * nc], out=dsig[:, :, :nc])
    dsig[:, :, :nc] *= 4.0                                     # s += y^in g, g = 4 sigma - 2
    np.multiply(ds_t, 4.0 * sgt[:, :, :nc] - 2.0, out=dsig[:, :, nc:2 * nc])
    dsig[:, :, 2 * nc:] = 0.0
    dsig[last, rows, 2 * nc:] = dyc * h_last                   # y^out only at the last step
    da = dsig * sgt * (1.0 - sgt)                              # sigma' of every net
    dw_e = np.matmul(z[:, :, 0].transpose(1, 2, 0), da.transpose(1, 0, 2))   # (N, R, 3 nc)
    dw = np.empty_like(w)
    dw[:, :, :nc] = dw_e[:, :, :nc]                            # shared gates: sum the cells
    dw[:, :, nc:nc + nb] = dw_e[:, :, nc:2 * nc].reshape(n, -1, nb, c).sum(axis=3)
    dw[:, :, nc + nb:] = dw_e[:, :, 2 * nc:].reshape(n, -1, nb, c).sum(axis=3)
    _sgd_step(w, w_out, dw, feat, e, lr)
    return y


def rnn_stack_update(w: np.ndarray, w_out: np.ndarray, sym: np.ndarray, lengths: np.ndarray,
                     d: np.ndarray, cfg: tob.Config, lr: float) -> np.ndarray:
    """One online step of a stack of N tanh RNNs, each on its own sequence (the RNN row of
    the paper procedure).  An RNN has no truncated form of the gradient: this is the full
    BPTT gradient, which for an error given only at the last step equals the per-step RTRL
    update (the same argument as for the LSTM).  w (N, 8 + hidden + 1, hidden) and w_out
    (N, hidden + 1, K) are updated in place; the rest as in stack_update."""
    hd = cfg.hidden
    n, t_max = sym.shape
    r_b = tob.N_IN + hd
    z = np.zeros((t_max + 1, n, 1, r_b + 1))                   # [x_t | h_{t-1} | 1]
    z[:t_max, :, 0, :tob.N_IN] = _ONEHOT[sym.T]
    z[:, :, 0, r_b] = 1.0
    hs = np.empty((t_max, n, 1, hd))
    for t in range(t_max):
        ht = np.matmul(z[t], w, out=hs[t])
        np.tanh(ht, out=ht)                                    # h_t = tanh(net_t)
        z[t + 1, :, 0, tob.N_IN:r_b] = ht[:, 0]
    last, rows = lengths - 1, np.arange(n)
    feat = hs[last, rows, 0]                                   # h at each own last step
    y = tob._sigmoid(np.matmul(feat[:, None, :], w_out[:, :-1])[:, 0] + w_out[:, -1])
    e = (y - d) * y * (1.0 - y)                                # dE/dnet_k
    inject = np.zeros((t_max, n, 1, hd))
    inject[last, rows] = np.matmul(e[:, None, :], w_out[:, :-1].transpose(0, 2, 1))
    dtanh = 1.0 - hs * hs
    w_rec_t = np.ascontiguousarray(w[:, tob.N_IN:r_b].transpose(0, 2, 1))
    dnet = np.zeros((t_max, n, 1, hd))
    dh = np.zeros((n, 1, hd))                                  # dE/dh_t via net_{t+1}
    for t in range(t_max - 1, -1, -1):                         # zero after each own end
        dh += inject[t]
        np.multiply(dh, dtanh[t], out=dnet[t])
        np.matmul(dnet[t], w_rec_t, out=dh)                    # net_t sees h_{t-1}
    dw = np.matmul(z[:t_max, :, 0].transpose(1, 2, 0), dnet[:, :, 0].transpose(1, 0, 2))
    _sgd_step(w, w_out, dw, feat, e, lr)
    return y


def _new_trial(cfg: tob.Config, seed: int) -> dict:
    """A trial's complete state (what a checkpoint stores)."""
    rng_init, rng_train, _ = tob.streams(seed)
    p = tob.init_params(cfg, rng_init)
    return {"seed": seed, "w": p["W"], "w_out": p["W_out"], "rng": rng_train,
            "block": None, "j": 0, "seen": 0, "rule_err": np.zeros(cfg.stop_window),
            "streak": 0, "c_err": 0.0, "c_ok": 0, "c_n": 0,
            "curve": {"sequences": [], "train_error": [], "train_correct_frac": []},
            "snaps": [tob._flat(p)], "snap_seqs": [0], "snap_every": cfg.snapshot_every,
            "cpu_time_s": 0.0, "wall_s": 0.0, "seq_steps": 0, "solved_at": None, "record": None}


def _next_sequence(tr: dict, cfg: tob.Config):
    """The trial's next training sequence (drawn cfg.block_seqs at a time from its own
    stream, padded to max_len)."""
    if tr["block"] is None or tr["j"] == len(tr["block"]["lengths"]):
        seqs = tob.sample_sequences(cfg, tr["rng"], cfg.block_seqs)
        sym = np.full((cfg.block_seqs, cfg.max_len), -1, dtype=np.int8)
        sym[:, :seqs["symbols"].shape[1]] = seqs["symbols"]
        tr["block"] = {"symbols": sym, "lengths": seqs["lengths"], "labels": seqs["labels"]}
        tr["j"] = 0
    b, j = tr["block"], tr["j"]
    tr["j"] += 1
    return b["symbols"][j], b["lengths"][j], b["labels"][j]


def _rule_mean(tr: dict, cfg: tob.Config) -> float:
    k = min(tr["seen"], cfg.stop_window)
    return float(tr["rule_err"].sum() / k) if k else float("nan")


def _close_curve(tr: dict) -> None:
    if tr["c_n"]:
        tr["curve"]["sequences"].append(tr["seen"])
        tr["curve"]["train_error"].append(tr["c_err"] / tr["c_n"])
        tr["curve"]["train_correct_frac"].append(tr["c_ok"] / tr["c_n"])
        tr["c_err"], tr["c_ok"], tr["c_n"] = 0.0, 0, 0


def _finish_trial(tr: dict, cfg: tob.Config, stopped_by: str) -> dict:
    """Test the trial's net; the record has the keys of train()'s records."""
    _close_curve(tr)
    if tr["snap_seqs"][-1] != tr["seen"]:
        tr["snaps"].append(tob._flat({"W": tr["w"], "W_out": tr["w_out"]}))
        tr["snap_seqs"].append(tr["seen"])
    params = {"W": tr["w"].copy(), "W_out": tr["w_out"].copy()}
    ev = tob.evaluate(params, tob.test_set(cfg, tr["seed"]), cfg)
    solved = tr["solved_at"] is not None
    return {
        "seed": tr["seed"], "variant": cfg.model, "solved": solved, "stopped_by": stopped_by,
        "sequences_to_solve": tr["solved_at"], "sequences_seen": tr["seen"],
        "updates": tr["seen"], "restarts": 0, "restart_at": [],
        "attempts": [{"sequences": tr["seen"], "solved": solved,
                      "test_wrong": ev["test_wrong"]}],
        "lr_drop_at": [], "final_train_mean_error": _rule_mean(tr, cfg), **ev,
        "n_weights": tob.n_weights(params), "curve": tr["curve"],
        "snapshot_sequences": list(tr["snap_seqs"]), "snapshots": np.stack(tr["snaps"]),
        "params": params, "train_wall_s": tr["wall_s"], "cpu_time_s": tr["cpu_time_s"],
        "seq_steps_per_cpu_time_s": tr["seq_steps"] / max(tr["cpu_time_s"], 1e-9),
    }


# --- checkpoints: one file per trial, written atomically --------------------------------
_CKPT_SKIP = ("variants", "time_limit_min", "log_every_s", "checkpoint_every_s")


def _ckpt_config(cfg: tob.Config) -> dict:
    return {k: v for k, v in tob._jsonable(dataclasses.asdict(cfg)).items() if k not in _CKPT_SKIP}


def save_trial(tr: dict, cfg: tob.Config, ckpt_dir: Path) -> Path:
    meta = {k: tr[k] for k in ("seed", "j", "seen", "streak", "c_err", "c_ok", "c_n",
                               "curve", "snap_seqs", "snap_every", "cpu_time_s", "wall_s",
                               "seq_steps", "solved_at")}
    meta["rng"] = tr["rng"].bit_generator.state
    meta["config"] = _ckpt_config(cfg)
    arrays = {"w": tr["w"], "w_out": tr["w_out"], "rule_err": tr["rule_err"],
              "snaps": np.stack(tr["snaps"])}
    if tr["block"] is not None:
        arrays.update({f"block_{k}": v for k, v in tr["block"].items()})
    if tr["record"] is not None:                              # a finished trial
        rec = dict(tr["record"])
        arrays["rec_snapshots"] = rec.pop("snapshots")
        for k, v in rec.pop("params").items():
            arrays[f"rec_{k}"] = v
        meta["record"] = tob._jsonable(rec)
    arrays["meta"] = np.array(json.dumps(meta))
    path = ckpt_dir / f"seed{tr['seed']}.npz"
    tmp = ckpt_dir / f".seed{tr['seed']}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_trial(path: Path, cfg: tob.Config) -> dict:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("meta")))
    if meta.pop("config") != _ckpt_config(cfg):
        raise ValueError(f"checkpoint {path} was written with another configuration")
    rng = np.random.default_rng()
    rng.bit_generator.state = meta.pop("rng")
    rec = meta.pop("record", None)
    tr = {**meta, "rng": rng, "w": arrays["w"].copy(), "w_out": arrays["w_out"].copy(),
          "rule_err": arrays["rule_err"].copy(), "snaps": list(arrays["snaps"]),
          "block": None, "record": None}
    if "block_lengths" in arrays:
        tr["block"] = {k: arrays[f"block_{k}"] for k in ("symbols", "lengths", "labels")}
    if rec is not None:
        rec["snapshots"] = arrays["rec_snapshots"]
        rec["params"] = {"W": arrays["rec_W"], "W_out": arrays["rec_W_out"]}
        tr["record"] = rec
    return tr


def checkpoint_status(ckpt_dir: Path, cfg: tob.Config) -> list:
    """Per-trial state of a checkpoint (for a run that has not finished)."""
    out = []
    for p in sorted(ckpt_dir.glob("seed*.npz"), key=lambda q: int(q.stem[4:])):
        tr = load_trial(p, cfg)
        rec = tr["record"]
        cur = tr["curve"]
        out.append({"seed": tr["seed"], "finished": rec is not None,
                    "solved": None if rec is None else rec["solved"],
                    "sequences_seen": tr["seen"], "sequences_to_solve": tr["solved_at"],
                    "test_wrong": None if rec is None else rec["test_wrong"],
                    "train_mean_error_last_window": _rule_mean(tr, cfg),
                    "last_curve_correct_frac": (cur["train_correct_frac"][-1]
                                                if cur["train_correct_frac"] else None),
                    "streak": tr["streak"], "cpu_time_s": tr["cpu_time_s"]})
    return out


def train_online(cfg: tob.Config, seeds: list, log=None, ckpt_dir: Path | None = None,
                 resume: bool = False) -> list:
    """The paper's procedure for several trials at once (one record per seed, in order).

    Each trial: online updates (stack_update), the stop rule judged on every sequence as it
    is presented (before its update), cfg.budget sequences at most, then the test.  With
    ckpt_dir, every trial's state is saved there every cfg.checkpoint_every_s seconds and
    when it finishes; resume=True continues from those files (bit-identically)."""
    if cfg.gradient != tob.ONLINE_GRADIENT.get(cfg.model) or cfg.optimizer != "sgd" \
            or cfg.batch != 1 or cfg.restarts or cfg.lr_drop_after or cfg.clip:
        raise ValueError("the online procedure is the paper's: sgd, batch 1, the truncated "
                         "gradient (the RNN's full one), no restarts, no lr drop")
    kernel = stack_update if cfg.model == "lstm" else rnn_stack_update
    trials = []
    for seed in seeds:
        path = None if ckpt_dir is None else ckpt_dir / f"seed{seed}.npz"
        trials.append(load_trial(path, cfg) if resume and path is not None and path.exists()
                      else _new_trial(cfg, seed))
    active = [tr for tr in trials if tr["record"] is None]
    w = np.stack([tr["w"] for tr in active]) if active else None
    w_out = np.stack([tr["w_out"] for tr in active]) if active else None
    eye = np.eye(cfg.n_classes)
    t0 = t_ckpt = t_log = time.perf_counter()
    while active:
        c0, w0 = time.process_time(), time.perf_counter()
        n = len(active)
        sym = np.empty((n, cfg.max_len), dtype=np.int64)
        lengths = np.empty(n, dtype=np.int64)
        labels = np.empty(n, dtype=np.int64)
        for i, tr in enumerate(active):
            sym[i], lengths[i], labels[i] = _next_sequence(tr, cfg)
        d = eye[labels]
        y = kernel(w, w_out, sym, lengths, d, cfg, tob._lr(cfg))
        if not np.all(np.isfinite(y)):
            bad = [active[i]["seed"] for i in np.flatnonzero(~np.isfinite(y).all(axis=1))]
            raise FloatingPointError(f"non-finite output for seeds {bad}")
        errs = tob._rule_errors(y, d, cfg)
        ok = tob.correct(y, d, cfg.tol)
        dt_cpu = (time.process_time() - c0) / n
        dt_wall = time.perf_counter() - w0
        finished = []
        for i, tr in enumerate(active):
            tr["rule_err"][tr["seen"] % cfg.stop_window] = errs[i]
            tr["seen"] += 1
            tr["streak"] = tr["streak"] + 1 if ok[i] else 0
            tr["c_err"] += float(errs[i])
            tr["c_ok"] += int(ok[i])
            tr["c_n"] += 1
            tr["cpu_time_s"] += dt_cpu
            tr["wall_s"] += dt_wall
            tr["seq_steps"] += int(lengths[i])
            if tr["c_n"] >= cfg.curve_every:
                _close_curve(tr)
            if tr["seen"] >= tr["snap_seqs"][-1] + tr["snap_every"]:
                tr["snaps"].append(tob._flat({"W": w[i], "W_out": w_out[i]}))
                tr["snap_seqs"].append(tr["seen"])
                if len(tr["snaps"]) > cfg.max_snapshots:      # keep 0, thin the rest
                    tr["snaps"] = tr["snaps"][:1] + tr["snaps"][2::2]
                    tr["snap_seqs"] = tr["snap_seqs"][:1] + tr["snap_seqs"][2::2]
                    tr["snap_every"] *= 2
            if tr["streak"] >= cfg.stop_window and _rule_mean(tr, cfg) < cfg.stop_error:
                tr["solved_at"] = tr["seen"]
                finished.append((i, "stop rule"))
            elif tr["seen"] >= cfg.budget:
                finished.append((i, "budget"))
        now = time.perf_counter()
        timed_out = cfg.time_limit_min > 0 and now - t0 >= 60.0 * cfg.time_limit_min
        if timed_out and ckpt_dir is not None:              # pause: resume continues it
            for i, tr in enumerate(active):
                tr["w"], tr["w_out"] = w[i].copy(), w_out[i].copy()
            for i, why in finished:
                active[i]["record"] = _finish_trial(active[i], cfg, why)
            for tr in active:
                save_trial(tr, cfg, ckpt_dir)
            raise tob.RunPaused(f"time limit: {len(active) - len(finished)} trials unfinished, "
                            f"checkpoint in {ckpt_dir}")
        if timed_out:
            done_i = {i for i, _ in finished}
            finished += [(i, "time limit") for i in range(n) if i not in done_i]
        for i, why in finished:
            tr = active[i]
            tr["w"], tr["w_out"] = w[i].copy(), w_out[i].copy()
            tr["record"] = _finish_trial(tr, cfg, why)
            if ckpt_dir is not None:
                save_trial(tr, cfg, ckpt_dir)
            if log is not None:
                r = tr["record"]
                log(f"{cfg.model} seed {tr['seed']}: {why} after {tr['seen']} seqs, test wrong "
                    f"{r['test_wrong']}/{cfg.n_test}, cpu {tr['cpu_time_s']:.0f}s")
        if finished:
            keep = sorted(set(range(n)) - {i for i, _ in finished})
            active = [active[i] for i in keep]
            w, w_out = w[keep], w_out[keep]
        if ckpt_dir is not None and active and now - t_ckpt >= cfg.checkpoint_every_s:
            t_ckpt = now
            for i, tr in enumerate(active):
                tr["w"], tr["w_out"] = w[i].copy(), w_out[i].copy()
                save_trial(tr, cfg, ckpt_dir)
        if log is not None and active and now - t_log >= cfg.log_every_s:
            t_log = now
            log(f"online stack of {len(active)}: seqs {min(t['seen'] for t in active)}-"
                f"{max(t['seen'] for t in active)}, mean err "
                + " ".join(f"{t['seed']}:{_rule_mean(t, cfg):.3f}" for t in active)
                + f", elapsed {now - t0:.0f}s")
    return [tr["record"] for tr in trials]
