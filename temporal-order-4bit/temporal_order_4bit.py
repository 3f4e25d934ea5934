"""Temporal order, 4-bit variant: LSTM Experiment 6b at the paper's scale.

Citation: S. Hochreiter and J. Schmidhuber, "Long Short-Term Memory", Neural Computation
9(8):1735-1780, 1997, Experiment 6 ("temporal order"), task 6b (task 6a by `--task 6a`).

Claim reproduced: an LSTM with 3 memory blocks of 2 cells (308 weights, no forget gate)
learns to classify the temporal order of three X/Y markers hidden in 100-110 steps of
distractor noise (8 classes), reaching the paper's stop criterion (mean training error
< 0.1 and the last 2000 training sequences correct, every output within 0.3 of its target)
and then getting at most a few of 2560 fresh test sequences wrong (paper: 2 of 2560 after
571,100 training sequences, mean of 10 trials).  A tanh Elman RNN with about as many
weights (316), trained the same way, stays at chance.

Two procedures (`--preset`):

- `modern` (default, the folder-root run): Adam on minibatches of 256, full BPTT, output
  biases at the class prior, one restart of a run still unsolved after 150,000 sequences;
  LSTM and tanh RNN, 10 seeds.  Headline command (writes the committed run only because
  of the explicit --outdir):

      python temporal-order-4bit/temporal_order_4bit.py --jobs 2 --outdir temporal-order-4bit

- `paper`: the 1997 procedure -- online gradient descent (one sequence per update,
  alpha 0.1 for 6b, 0.5 for 6a), the truncated gradient, the paper's init, the paper's
  stop rule with E = sum_k (t_k - y_k)^2, no restarts, a cap of 3M sequences per trial.
  The independent trials run stacked in one kernel call (nets x 1 sequence each):

      python temporal-order-4bit/temporal_order_4bit.py --preset paper --jobs 2 \
          --outdir temporal-order-4bit/paper
      python temporal-order-4bit/temporal_order_4bit.py --preset paper --task 6a \
          --seeds 0-19 --jobs 2 --outdir temporal-order-4bit/paper_6a

  Such a run checkpoints into <outdir>/checkpoint/ and continues with `--resume`.  Its
  trainer (the stacked online kernel, trials, checkpoints) is online_1997.py.

`quick` trains in seconds (tests).  Without --outdir every run goes to runs/temporal-order-4bit/.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
PAPER = ("S. Hochreiter and J. Schmidhuber, Long Short-Term Memory, Neural Computation "
         "9(8):1735-1780, 1997, Experiment 6b (temporal order, 3 markers, 8 classes)")
PAPER_REFERENCE = {
    "6b": {"sequences_to_solve_mean": 571100, "test_wrong": 2, "n_test": 2560, "trials": 10,
           "max_test_wrong_any_trial": 3, "weights": 308, "optimizer": "online SGD, lr 0.1",
           "gradient": "truncated (error flows back only through the CEC)"},
    "6a": {"sequences_to_solve_mean": 31390, "test_wrong": 1, "n_test": 2560, "trials": 20,
           "weights": 156, "optimizer": "online SGD, lr 0.5",
           "gradient": "truncated (error flows back only through the CEC)"},
}

# Symbols (one-hot input units, in this order).
SYMBOLS = ("a", "b", "c", "d", "X", "Y", "E", "B")
N_IN = len(SYMBOLS)
SYM_X, SYM_E, SYM_B = 4, 6, 7

# Marker windows [lo, hi] (inclusive, index 0 = the E symbol) and class counts per task.
TASKS = {
    "6a": ((10, 20), (50, 60)),
    "6b": ((10, 20), (33, 43), (66, 76)),
}
VARIANTS = ("lstm", "rnn")


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    task: str = "6b"                 # "6b" (3 markers, 8 classes) or "6a" (2 markers, 4)
    model: str = "lstm"              # what train() trains: "lstm" or "rnn"
    variants: tuple = VARIANTS       # what the CLI trains, each on every seed
    procedure: str = "batched"       # "batched": minibatches, one seed per process;
                                     # "online": the paper's one-sequence updates, the
                                     # trials of a run stacked in one kernel call
    blocks: int = 3                  # LSTM memory blocks (paper: 3 for 6b, 2 for 6a)
    cells: int = 2                   # memory cells per block (gates shared in a block)
    hidden: int = 11                 # tanh RNN units (11 -> 316 weights, LSTM has 308)
    min_len: int = 100               # sequence length ~ U{min_len..max_len}
    max_len: int = 110
    optimizer: str = "adam"          # "adam" (modern) or "sgd" (the paper's)
    lr: float = 6e-2                 # learning rate (paper, online SGD: 0.1 6b, 0.5 6a)
    batch: int = 256                 # sequences per update (paper: 1, online)
    budget: int = 300_000            # cap on training sequences; unsolved runs end here
    time_limit_min: float = 0.0      # optional wall-clock cap per run (0 = none)
    restarts: int = 1                # max re-initialisations of an unsolved run (0 = paper)
    restart_after: int = 150_000     # sequences per attempt before a restart (if any left)
    lr_drop_after: int = 0           # sequences per attempt before lr *= lr_drop (0 = never)
    lr_drop: float = 0.1             # factor of that one-time learning-rate drop
    init: str = "prior"              # "prior": output biases logit(1/K); "paper": U[-.1,.1]
    gradient: str = "full"           # "full" BPTT or "truncated" (only through the CEC)
    kernel_dtype: str = "float32"    # dtype of the training kernel (params stay float64)
    error: str = "half"              # stop-rule error: "half" 1/2 sum_k (y_k - d_k)^2,
                                     # "sum" the paper's sum_k (t_k - y_k)^2
    stop_window: int = 2000          # paper: the last 2000 training sequences correct
    stop_error: float = 0.1          # paper: mean training error below 0.1
    tol: float = 0.3                 # paper: correct = every output's abs error < 0.3
    n_test: int = 2560               # paper: 2560 fresh test sequences
    curve_every: int = 1024          # training-curve point every this many sequences
    snapshot_every: int = 1024       # first snapshot interval (doubles to keep <= 32)
    max_snapshots: int = 32          # snapshots kept for the GIF
    log_every_s: float = 5.0         # progress line interval (seconds)
    lr_rnn: float = 0.0              # the RNN's own learning rate (0 = cfg.lr)
    clip: float = 0.0                # gradient-norm clipping before each update (0 = none)
    rnn_backward: str = "kernel"     # RNN backward dtype: "kernel" or "float64"
    block_seqs: int = 256            # online: training sequences drawn per trial at a time
    checkpoint_every_s: float = 600.0  # online: seconds between checkpoints (--outdir/checkpoint)

    @property
    def n_classes(self) -> int:
        return 2 ** len(TASKS[self.task])


# The 1997 learning rates (online gradient descent) by task.
PAPER_LR = {"6b": 0.1, "6a": 0.5}

PRESETS = {
    # the 1997 procedure (README, Deviations, lists what still differs)
    "paper": Config(procedure="online", variants=("lstm",), optimizer="sgd", lr=PAPER_LR["6b"],
                    batch=1, budget=3_000_000, restarts=0, init="paper", gradient="truncated",
                    kernel_dtype="float64", error="sum", curve_every=4096,
                    snapshot_every=4096, log_every_s=60.0),
    # the fast headline: Adam, batch 256, full BPTT, output-bias prior, one restart
    "modern": Config(),
    "quick": Config(budget=3072, batch=64, n_test=256, curve_every=512, snapshot_every=512,
                    max_snapshots=8),
}

# The committed runs of each preset and the flags that make them (SPEC section 2).
RUNS = {
    "modern": {".": []},
    "paper": {"paper": ["--preset", "paper"],
              "paper_6a": ["--preset", "paper", "--task", "6a", "--seeds", "0-19"],
              # the tanh RNN under the procedure, alpha chosen on seeds 100-104
              # (side_runs/rnn_fair_chance), a 1M cap
              "paper_rnn": ["--preset", "paper", "--variants", "rnn", "--lr", "0.01",
                            "--budget", "1000000"]},
    "quick": {".": ["--preset", "quick"]},
}

# Tiny configs for the gradient check: every model on both tasks (3 sequences each).
GRADCHECK_CASES = [
    ("lstm-6b", Config(model="lstm", task="6b", blocks=3)),
    ("lstm-6a", Config(model="lstm", task="6a", blocks=2)),
    ("rnn-6b", Config(model="rnn", task="6b", hidden=11)),
    ("rnn-6a", Config(model="rnn", task="6a", hidden=5)),
]


# ---------------------------------------------------------------------------------------
# Task: E, then noise a-d with X/Y markers in fixed windows, then B; label = marker order
# ---------------------------------------------------------------------------------------
def sample_sequences(cfg: Config, rng: np.random.Generator, n: int) -> dict:
    """n sequences of the temporal-order task, padded to the longest with symbol -1.

    Returns symbols (n, T) int, lengths (n,), markers (n, k) positions, bits (n, k)
    (0 = X, 1 = Y) and labels (n,) = the bits read as a binary number (XXX = 0, YYY = 7).
    """
    windows = TASKS[cfg.task]
    lengths = rng.integers(cfg.min_len, cfg.max_len + 1, size=n)
    t_max = int(lengths.max())
    symbols = rng.integers(0, 4, size=(n, t_max))            # distractors a, b, c, d
    rows = np.arange(n)
    markers = np.stack([rng.integers(lo, hi + 1, size=n) for lo, hi in windows], axis=1)
    bits = rng.integers(0, 2, size=(n, len(windows)))
    symbols[rows[:, None], markers] = SYM_X + bits           # X or Y at t1, t2 (, t3)
    symbols[:, 0] = SYM_E                                     # start symbol
    symbols[rows, lengths - 1] = SYM_B                        # end symbol (own last step)
    symbols[np.arange(t_max)[None, :] >= lengths[:, None]] = -1   # padding
    labels = bits @ (2 ** np.arange(len(windows))[::-1])
    return {"symbols": symbols, "lengths": lengths, "markers": markers, "bits": bits,
            "labels": labels}


def to_batch(seqs: dict, cfg: Config) -> dict:
    """Time-major one-hot inputs x (T, B, 8) (zeros on padding) and one-hot targets d."""
    sym = seqs["symbols"].T                                   # (T, B)
    x = np.zeros(sym.shape + (N_IN,), dtype=np.float64)
    t_idx, b_idx = np.nonzero(sym >= 0)
    x[t_idx, b_idx, sym[t_idx, b_idx]] = 1.0
    d = np.eye(cfg.n_classes)[seqs["labels"]]
    return {"x": x, "lengths": seqs["lengths"].copy(), "d": d, "labels": seqs["labels"]}


def sample_batch(cfg: Config, rng: np.random.Generator) -> dict:
    """A small training batch (3 sequences) of exactly the kind train() uses."""
    return to_batch(sample_sequences(cfg, rng, 3), cfg)


# ---------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------
def n_cells(cfg: Config) -> int:
    return cfg.blocks * cfg.cells


def init_params(cfg: Config, rng: np.random.Generator) -> dict:
    """Paper init U[-0.1, 0.1]; LSTM input-gate biases -2, -4, -6 by block.

    LSTM "W": rows = the units every cell and gate sees at step t
      [x_t (8) | y^c_{t-1} (cells) | y^in_{t-1} (blocks) | y^out_{t-1} (blocks) | bias],
      columns = [cell inputs net_c (cells) | input gates (blocks) | output gates (blocks)].
    RNN "W": rows [x_t (8) | h_{t-1} (hidden) | bias], columns hidden.
    "W_out": rows [y^c_T or h_T | bias], columns the K sigmoid output units.
    cfg.init == "prior" sets the output biases to logit(1/K) (see README, Deviations).
    """
    k = cfg.n_classes
    if cfg.model == "lstm":
        nc, nb = n_cells(cfg), cfg.blocks
        n_rows = N_IN + nc + 2 * nb + 1
        w = rng.uniform(-0.1, 0.1, size=(n_rows, nc + 2 * nb))
        w[-1, nc:nc + nb] = -2.0 * np.arange(1, nb + 1)         # input-gate biases
        n_feat = nc
    else:
        h = cfg.hidden
        w = rng.uniform(-0.1, 0.1, size=(N_IN + h + 1, h))
        n_feat = h
    w_out = rng.uniform(-0.1, 0.1, size=(n_feat + 1, k))
    if cfg.init == "prior":
        w_out[-1] = math.log(1.0 / (k - 1))                   # sigma(b) = 1/K
    return {"W": w, "W_out": w_out}


def n_weights(params: dict) -> int:
    return int(sum(p.size for p in params.values()))


def _sigmoid(a, out=None):
    """Logistic function via tanh (no overflow warnings in float32)."""
    out = np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


# ---------------------------------------------------------------------------------------
# LSTM forward (paper's equations, one fused matmul per step)
#
# The gate columns of W are repeated per cell of their block ("expanded" W_e), so one
# sigmoid over all columns yields y^in and y^out already broadcast to the cells; the
# gradient of a shared gate weight is the sum over its block's expanded columns.
# ---------------------------------------------------------------------------------------
def _expand_lstm(w: np.ndarray, cfg: Config) -> np.ndarray:
    nc, nb = n_cells(cfg), cfg.blocks
    blk = np.arange(nc) // cfg.cells                          # block of each cell
    return np.concatenate([w[:, :nc], w[:, nc + blk], w[:, nc + nb + blk]], axis=1)


def lstm_forward(params: dict, batch: dict, cfg: Config, dtype=np.float64) -> dict:
    """Run the LSTM over the padded batch; return the cache the backward pass consumes."""
    nc, nb, c = n_cells(cfg), cfg.blocks, cfg.cells
    x, lengths = batch["x"], batch["lengths"]
    t_max, bsz = x.shape[0], x.shape[1]
    w_e = _expand_lstm(params["W"], cfg).astype(dtype)
    r_yc, r_in, r_out, r_b = N_IN, N_IN + nc, N_IN + nc + nb, N_IN + nc + 2 * nb
    z = np.zeros((t_max, bsz, r_b + 1), dtype=dtype)          # z_t: what units see at t
    z[:, :, :N_IN] = x
    z[:, :, r_b] = 1.0
    sig = np.empty((t_max, bsz, 3 * nc), dtype=dtype)         # sigma(net) of c | in | out
    s = np.zeros((t_max + 1, bsz, nc), dtype=dtype)           # s_c, s[0] = initial state 0
    hs = np.empty((t_max, bsz, nc), dtype=dtype)              # h(s_c)
    yc = np.empty((t_max, bsz, nc), dtype=dtype)              # y^c
    g = np.empty((bsz, nc), dtype=dtype)
    for t in range(t_max):
        a = z[t] @ w_e                                        # net_c, net_in, net_out
        sg = _sigmoid(a, out=sig[t])                          # y^in = f(net_in) etc.
        np.multiply(sg[:, :nc], 4.0, out=g)
        g -= 2.0                                              # g(net_c) = 4 sigma - 2
        g *= sg[:, nc:2 * nc]                                 # y^in g(net_c)
        np.add(s[t], g, out=s[t + 1])                         # s_c(t) = s_c(t-1) + y^in g
        h = _sigmoid(s[t + 1], out=hs[t])
        h *= 2.0
        h -= 1.0                                              # h(s_c) = 2 sigma - 1
        np.multiply(sg[:, 2 * nc:], h, out=yc[t])             # y^c = y^out h(s_c)
        if t + 1 < t_max:                                     # recurrent inputs of t+1
            z[t + 1, :, r_yc:r_in] = yc[t]
            z[t + 1, :, r_in:r_out] = sg[:, nc:2 * nc:c]
            z[t + 1, :, r_out:r_b] = sg[:, 2 * nc::c]
    rows = np.arange(bsz)
    feat = yc[lengths - 1, rows].astype(np.float64)           # y^c at each own last step
    y = _sigmoid(feat @ params["W_out"][:-1] + params["W_out"][-1])   # sigmoid outputs
    return {"z": z, "sig": sig, "s": s, "hs": hs, "yc": yc, "w_e": w_e, "feat": feat,
            "y": y, "lengths": lengths}


# ---------------------------------------------------------------------------------------
# tanh RNN forward (baseline): h_t = tanh(W [x_t, h_{t-1}, 1])
# ---------------------------------------------------------------------------------------
def rnn_forward(params: dict, batch: dict, cfg: Config, dtype=np.float64) -> dict:
    x, lengths = batch["x"], batch["lengths"]
    t_max, bsz = x.shape[0], x.shape[1]
    hd = cfg.hidden
    w = params["W"].astype(dtype)
    z = np.zeros((t_max, bsz, N_IN + hd + 1), dtype=dtype)
    z[:, :, :N_IN] = x
    z[:, :, -1] = 1.0
    hseq = np.empty((t_max, bsz, hd), dtype=dtype)
    for t in range(t_max):
        np.tanh(z[t] @ w, out=hseq[t])                        # h_t = tanh(net_t)
        if t + 1 < t_max:
            z[t + 1, :, N_IN:N_IN + hd] = hseq[t]
    rows = np.arange(bsz)
    feat = hseq[lengths - 1, rows].astype(np.float64)
    y = _sigmoid(feat @ params["W_out"][:-1] + params["W_out"][-1])
    return {"z": z, "h": hseq, "w": w, "feat": feat, "y": y, "lengths": lengths}


# ---------------------------------------------------------------------------------------
# Loss: the paper's squared error at each sequence's last step (mean over the batch)
# ---------------------------------------------------------------------------------------
def _seq_errors(y: np.ndarray, d: np.ndarray) -> np.ndarray:
    """E = 1/2 sum_k (y_k - d_k)^2 per sequence."""
    return 0.5 * np.sum((y - d) ** 2, axis=1)


def _rule_errors(y: np.ndarray, d: np.ndarray, cfg: Config) -> np.ndarray:
    """The per-sequence error the stop rule and the curves average: 1/2 sum_k (y_k - d_k)^2
    (cfg.error "half") or the paper's E = sum_k (t_k - y_k)^2 ("sum")."""
    e = _seq_errors(y, d)
    return 2.0 * e if cfg.error == "sum" else e


def _forward(params, batch, cfg, dtype):
    fwd = lstm_forward if cfg.model == "lstm" else rnn_forward
    return fwd(params, batch, cfg, dtype)


def loss(params: dict, batch: dict, cfg: Config) -> float:
    cache = _forward(params, batch, cfg, np.float64)
    return float(np.mean(_seq_errors(cache["y"], batch["d"])))


# ---------------------------------------------------------------------------------------
# Backward (BPTT)
# ---------------------------------------------------------------------------------------
def _output_backward(params, cache, batch):
    """Through y = sigma(W_out [feat, 1]); returns grads of W_out and of feat."""
    y, d = cache["y"], batch["d"]
    bsz = y.shape[0]
    dnet = (y - d) * y * (1.0 - y) / bsz                      # dE/dnet_k, mean over batch
    dw_out = np.empty_like(params["W_out"])
    dw_out[:-1] = cache["feat"].T @ dnet
    dw_out[-1] = dnet.sum(axis=0)
    dfeat = dnet @ params["W_out"][:-1].T                     # dE/dy^c_T (or dE/dh_T)
    return dw_out, dfeat


def lstm_backward(params: dict, cache: dict, batch: dict, cfg: Config) -> dict:
    """Full BPTT through the LSTM (or the 1997 truncated gradient, cfg.gradient)."""
    if cfg.gradient == "truncated":
        return lstm_backward_truncated(params, cache, batch, cfg)
    nc, nb, c = n_cells(cfg), cfg.blocks, cfg.cells
    z, sig, hs = cache["z"], cache["sig"], cache["hs"]
    w_e, lengths = cache["w_e"], cache["lengths"]
    t_max, bsz = z.shape[0], z.shape[1]
    dtype = w_e.dtype
    r_yc, r_in, r_out, r_b = N_IN, N_IN + nc, N_IN + nc + nb, N_IN + nc + 2 * nb
    dw_out, dfeat = _output_backward(params, cache, batch)
    inject = np.zeros((t_max, bsz, nc), dtype=dtype)          # dE/dy^c at own last step
    inject[lengths - 1, np.arange(bsz)] = dfeat
    da = np.zeros((t_max, bsz, 3 * nc), dtype=dtype)          # dE/dnet (expanded cols)
    ds = np.zeros((bsz, nc), dtype=dtype)                     # dE/ds_c(t), carried back
    dz = np.zeros((bsz, r_b + 1), dtype=dtype)                # dE/dz_{t+1} from step t+1
    dsig = np.empty((bsz, 3 * nc), dtype=dtype)
    w_t = np.ascontiguousarray(w_e.T)
    for t in range(t_max - 1, -1, -1):
        sg, h = sig[t], hs[t]
        dyc = inject[t] + dz[:, r_yc:r_in]                    # y^c feeds out & z_{t+1}
        np.multiply(dyc, h, out=dsig[:, 2 * nc:])             # y^c = y^out h(s_c)
        dsig[:, 2 * nc::c] += dz[:, r_out:r_b]                # y^out_t feeds z_{t+1}
        dh = dyc * sg[:, 2 * nc:]
        ds += dh * 0.5 * (1.0 - h * h)                        # h = 2 sigma(s) - 1
        g = 4.0 * sg[:, :nc] - 2.0
        np.multiply(ds, g, out=dsig[:, nc:2 * nc])            # s += y^in g(net_c)
        dsig[:, nc:2 * nc:c] += dz[:, r_in:r_out]             # y^in_t feeds z_{t+1}
        np.multiply(ds, sg[:, nc:2 * nc], out=dsig[:, :nc])   # dE/dg(net_c)
        dsig[:, :nc] *= 4.0                                   # g = 4 sigma - 2
        np.multiply(dsig, sg * (1.0 - sg), out=da[t])         # sigma' of every net
        np.matmul(da[t], w_t, out=dz)                         # z_t = [x, y^c, y^in, ...]
        # ds carries unchanged to t-1: s_c(t) = s_c(t-1) + ... (the CEC)
    return {"W": _collect_lstm_grads(params, z, da, cfg), "W_out": dw_out}


def lstm_backward_truncated(params: dict, cache: dict, batch: dict, cfg: Config) -> dict:
    """The 1997 truncated gradient: error reaching the net inputs of cells and gates is not
    sent further back in time (dz_t = 0 for the recurrent inputs), so the only path back in
    time is the CEC, which carries dE/ds_c unchanged.  With the error injected only at each
    sequence's last step L-1, dE/ds_c(t) is the same for every t <= L-1: no time loop."""
    nc = n_cells(cfg)
    z, sig, hs, lengths = cache["z"], cache["sig"], cache["hs"], cache["lengths"]
    t_max, bsz = z.shape[0], z.shape[1]
    dtype = cache["w_e"].dtype
    dw_out, dfeat = _output_backward(params, cache, batch)
    last, rows = lengths - 1, np.arange(bsz)
    dyc = dfeat.astype(dtype)                                 # dE/dy^c(L-1)
    h_last, sg_last = hs[last, rows], sig[last, rows]
    ds = dyc * sg_last[:, 2 * nc:] * 0.5 * (1.0 - h_last * h_last)   # y^c = y^out h(s_c)
    live = (np.arange(t_max)[:, None] <= last[None, :])[:, :, None]  # t <= L-1
    ds_t = np.where(live, ds[None], 0.0).astype(dtype)        # the CEC: constant back in time
    dsig = np.empty((t_max, bsz, 3 * nc), dtype=dtype)
    np.multiply(ds_t, sig[:, :, nc:2 * nc], out=dsig[:, :, :nc])
    dsig[:, :, :nc] *= 4.0                                    # s += y^in g, g = 4 sigma - 2
    np.multiply(ds_t, 4.0 * sig[:, :, :nc] - 2.0, out=dsig[:, :, nc:2 * nc])
    dsig[:, :, 2 * nc:] = 0.0
    dsig[last, rows, 2 * nc:] = dyc * h_last                  # y^out only at the last step
    da = dsig * sig * (1.0 - sig)                             # sigma' of every net
    return {"W": _collect_lstm_grads(params, z, da, cfg), "W_out": dw_out}


def _collect_lstm_grads(params, z, da, cfg):
    """dE/dW from dE/dnet over all steps (one matmul); shared gates sum their cells."""
    nc, nb, c = n_cells(cfg), cfg.blocks, cfg.cells
    zf = z.reshape(-1, z.shape[2])
    dw_e = (zf.T @ da.reshape(-1, 3 * nc)).astype(np.float64)
    dw = np.empty_like(params["W"])
    dw[:, :nc] = dw_e[:, :nc]
    dw[:, nc:nc + nb] = dw_e[:, nc:2 * nc].reshape(-1, nb, c).sum(axis=2)
    dw[:, nc + nb:] = dw_e[:, 2 * nc:].reshape(-1, nb, c).sum(axis=2)
    return dw


def rnn_backward(params: dict, cache: dict, batch: dict, cfg: Config) -> dict:
    """Full BPTT through the tanh RNN; cfg.rnn_backward "float64" runs it in float64
    whatever the kernel dtype (the vanishing error would reach float32 subnormals)."""
    z, hseq, w, lengths = cache["z"], cache["h"], cache["w"], cache["lengths"]
    if cfg.rnn_backward == "float64":
        z, hseq, w = z.astype(np.float64), hseq.astype(np.float64), w.astype(np.float64)
    t_max, bsz = z.shape[0], z.shape[1]
    hd = cfg.hidden
    dw_out, dfeat = _output_backward(params, cache, batch)
    inject = np.zeros((t_max, bsz, hd), dtype=w.dtype)
    inject[lengths - 1, np.arange(bsz)] = dfeat
    dnet = np.zeros((t_max, bsz, hd), dtype=w.dtype)
    dh_next = np.zeros((bsz, hd), dtype=w.dtype)              # dE/dh_t via net_{t+1}
    w_rec_t = np.ascontiguousarray(w[N_IN:N_IN + hd].T)
    for t in range(t_max - 1, -1, -1):
        dh = inject[t] + dh_next
        h = hseq[t]
        np.multiply(dh, 1.0 - h * h, out=dnet[t])             # h = tanh(net)
        np.matmul(dnet[t], w_rec_t, out=dh_next)              # net_t sees h_{t-1}
    dw = (z.reshape(-1, z.shape[2]).T @ dnet.reshape(-1, hd)).astype(np.float64)
    return {"W": dw, "W_out": dw_out}


def _loss_and_grads(params, batch, cfg, dtype):
    """(mean loss, grads, per-sequence outputs y) with the kernel in `dtype`."""
    cache = _forward(params, batch, cfg, dtype)
    back = lstm_backward if cfg.model == "lstm" else rnn_backward
    grads = back(params, cache, batch, cfg)
    return float(np.mean(_seq_errors(cache["y"], batch["d"]))), grads, cache["y"]


def loss_and_grads(params: dict, batch: dict, cfg: Config):
    """Loss and its full BPTT gradient (float64; cfg.gradient="truncated" cuts it)."""
    value, grads, _ = _loss_and_grads(params, batch, cfg, np.float64)
    return value, grads


# ---------------------------------------------------------------------------------------
# The paper's criterion
# ---------------------------------------------------------------------------------------
def correct(y: np.ndarray, d: np.ndarray, tol: float) -> np.ndarray:
    """Paper: a sequence is correct when every output's final absolute error < tol."""
    return np.all(np.abs(y - d) < tol, axis=1)


class StopRule:
    """Mean training error (last `window` sequences) < stop_error and the last `window`
    training sequences all correct, judged on each sequence as it is presented."""

    def __init__(self, cfg: Config):
        self.window, self.stop_error = cfg.stop_window, cfg.stop_error
        self.errors = np.zeros(self.window)
        self.pos = 0
        self.seen = 0
        self.streak = 0

    def update(self, errors: np.ndarray, ok: np.ndarray) -> bool:
        n = len(errors)
        self.errors[(self.pos + np.arange(n)) % self.window] = errors
        self.pos = (self.pos + n) % self.window
        self.seen += n
        if ok.all():
            self.streak += n
        else:
            self.streak = n - 1 - int(np.flatnonzero(~ok)[-1])
        return self.solved

    @property
    def mean_error(self) -> float:
        k = min(self.seen, self.window)
        return float(self.errors.sum() / k) if k else float("nan")

    @property
    def solved(self) -> bool:
        return self.streak >= self.window and self.mean_error < self.stop_error


# ---------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------
class Adam:
    def __init__(self, params, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params, grads):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for k, g in grads.items():
            self.m[k] *= self.b1
            self.m[k] += (1 - self.b1) * g
            self.v[k] *= self.b2
            self.v[k] += (1 - self.b2) * g * g
            params[k] -= self.lr * (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + self.eps)


class SGD:
    def __init__(self, params, lr):
        self.lr = lr

    def step(self, params, grads):
        for k, g in grads.items():
            params[k] -= self.lr * g


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------
def predict(params: dict, seqs: dict, cfg: Config, chunk: int = 512) -> np.ndarray:
    """Final outputs y (n, K) for a set of sequences (forward only, float64)."""
    n = len(seqs["lengths"])
    out = np.empty((n, cfg.n_classes))
    for i in range(0, n, chunk):
        part = {k: v[i:i + chunk] for k, v in seqs.items()}
        out[i:i + chunk] = _forward(params, to_batch(part, cfg), cfg, np.float64)["y"]
    return out


def evaluate(params: dict, seqs: dict, cfg: Config) -> dict:
    y = predict(params, seqs, cfg)
    d = np.eye(cfg.n_classes)[seqs["labels"]]
    ok = correct(y, d, cfg.tol)
    pred = np.argmax(y, axis=1)
    conf = np.zeros((cfg.n_classes, cfg.n_classes), dtype=np.int64)
    np.add.at(conf, (seqs["labels"], pred), 1)
    return {"test_wrong": int((~ok).sum()), "test_accuracy": float(np.mean(pred == seqs["labels"])),
            "test_error": float(np.mean(_seq_errors(y, d))),
            # how much the outputs depend on the sequence at all (0 = a constant answer)
            "test_output_spread": float(np.mean(np.std(y, axis=0))),
            "test_mean_output": y.mean(axis=0).tolist(), "confusion": conf.tolist()}


def lstm_trace(params: dict, seqs: dict, cfg: Config) -> dict:
    """Internal LSTM signals over time for a few sequences (for figures and tests):
    s (T, n, cells) = s_c(t), y_in / y_out (T, n, blocks), y_c (T, n, cells), y (n, K)."""
    nc, c = n_cells(cfg), cfg.cells
    cache = lstm_forward(params, to_batch(seqs, cfg), cfg, np.float64)
    sig = cache["sig"]
    return {"s": cache["s"][1:], "y_in": sig[:, :, nc:2 * nc:c],
            "y_out": sig[:, :, 2 * nc::c], "y_c": cache["yc"], "y": cache["y"]}


def first_of_each_class(seqs: dict, n_classes: int) -> dict:
    """The first sequence of every class (in class order), as a smaller sequence set."""
    idx = np.array([int(np.flatnonzero(seqs["labels"] == k)[0]) for k in range(n_classes)])
    t_max = int(seqs["lengths"][idx].max())
    out = {k: v[idx] for k, v in seqs.items()}
    out["symbols"] = out["symbols"][:, :t_max]
    return out


def streams(seed: int):
    """Separate generators for init, training data and test data."""
    ss = np.random.SeedSequence(seed)
    return [np.random.default_rng(s) for s in ss.spawn(3)]


def restart_stream(seed: int, attempt: int) -> np.random.Generator:
    """Init generator of restart `attempt` >= 1: a substream disjoint from streams(seed)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, attempt)))


def test_set(cfg: Config, seed: int) -> dict:
    """The seed's test sequences (its own RNG stream, never used for stopping)."""
    return sample_sequences(cfg, streams(seed)[2], cfg.n_test)


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
def _lr(cfg: Config) -> float:
    """The learning rate of cfg.model (the RNN may have its own, cfg.lr_rnn)."""
    return cfg.lr_rnn if cfg.model == "rnn" and cfg.lr_rnn > 0 else cfg.lr


def _make_optimizer(params, cfg: Config):
    lr = _lr(cfg)
    return Adam(params, lr) if cfg.optimizer == "adam" else SGD(params, lr)


def clip_grads(grads: dict, max_norm: float) -> float:
    """Scale grads in place to a global norm of at most max_norm; returns the norm."""
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    if norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    return norm


def train(cfg: Config, seed: int, log=None) -> dict:
    """Train one model on one seed until the paper's stop rule or the budget; evaluate.

    Plateau remedies (README, Deviations), both off in the paper-faithful setting:
    cfg.restarts > 0: an attempt that has not met the stop rule after cfg.restart_after
    sequences is discarded and the weights re-initialised from restart_stream(seed, attempt)
    (fresh optimizer state and stop-rule window, same training-data stream); the budget and
    sequences_to_solve count every sequence, discarded attempts included.
    cfg.lr_drop_after > 0: after that many sequences of an attempt, lr *= cfg.lr_drop (once).
    Every attempt is also tested on its own (record "attempts": sequences, whether it met
    the stop rule, its test wrong); the seed's test numbers are those of its last attempt.
    cfg.procedure == "online" (the paper preset) trains through train_online instead.
    """
    if cfg.procedure == "online":
        return online_procedure().train_online(cfg, [seed], log=log)[0]
    rng_init, rng_train, _ = streams(seed)
    params = init_params(cfg, rng_init)
    opt = _make_optimizer(params, cfg)
    dtype = np.dtype(cfg.kernel_dtype)
    rule = StopRule(cfg)
    curve = {"sequences": [], "train_error": [], "train_correct_frac": []}
    snaps, snap_seqs, snap_every = [_flat(params)], [0], cfg.snapshot_every
    seen, seq_steps, step_idx = 0, 0, 0
    attempt, attempt_start, restart_at = 0, 0, []               # plateau remedies
    lr_dropped, lr_drop_at = False, []
    c_err, c_ok, c_n = 0.0, 0, 0
    solved_at = None
    attempts = []
    tests = test_set(cfg, seed)
    t0 = time.perf_counter()
    t_log = t0
    while seen < cfg.budget:
        bsz = min(cfg.batch, cfg.budget - seen)
        batch = to_batch(sample_sequences(cfg, rng_train, bsz), cfg)
        value, grads, y = _loss_and_grads(params, batch, cfg, dtype)
        step_idx += 1
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite loss {value} at step {step_idx} "
                                     f"(after {seen} sequences), seed {seed}, {cfg.model}")
        errs = _rule_errors(y, batch["d"], cfg)
        ok = correct(y, batch["d"], cfg.tol)
        if cfg.clip > 0:
            clip_grads(grads, cfg.clip)
        opt.step(params, grads)
        seen += bsz
        seq_steps += int(batch["x"].shape[0]) * bsz
        c_err, c_ok, c_n = c_err + errs.sum(), c_ok + int(ok.sum()), c_n + bsz
        done = rule.update(errs, ok)
        now = time.perf_counter()
        timed_out = cfg.time_limit_min > 0 and now - t0 >= 60.0 * cfg.time_limit_min
        last = done or timed_out or seen >= cfg.budget
        if c_n >= cfg.curve_every or last:
            curve["sequences"].append(seen)
            curve["train_error"].append(c_err / c_n)
            curve["train_correct_frac"].append(c_ok / c_n)
            c_err, c_ok, c_n = 0.0, 0, 0
        if seen >= snap_seqs[-1] + snap_every or last:
            snaps.append(_flat(params))
            snap_seqs.append(seen)
            if len(snaps) > cfg.max_snapshots:                # keep 0, thin the rest
                snaps, snap_seqs = snaps[:1] + snaps[2::2], snap_seqs[:1] + snap_seqs[2::2]
                snap_every *= 2
        if log is not None and now - t_log >= cfg.log_every_s:
            t_log = now
            log(f"{cfg.model} seed {seed}: step {step_idx} seqs {seen} "
                f"loss {value:.4f} mean err(last {cfg.stop_window}) {rule.mean_error:.4f} "
                f"streak {rule.streak} elapsed {now - t0:.1f}s")
        if done:
            solved_at = seen
            break
        if timed_out:
            break
        in_attempt = seen - attempt_start
        if (cfg.lr_drop_after > 0 and in_attempt >= cfg.lr_drop_after and not lr_dropped
                and seen < cfg.budget):
            opt.lr = _lr(cfg) * cfg.lr_drop                   # once per attempt
            lr_dropped = True
            lr_drop_at.append(seen)
            if log is not None:
                log(f"{cfg.model} seed {seed}: lr -> {opt.lr:g} after {seen} seqs")
        if attempt < cfg.restarts and in_attempt >= cfg.restart_after and seen < cfg.budget:
            attempts.append({"sequences": in_attempt, "solved": False,
                             "test_wrong": evaluate(params, tests, cfg)["test_wrong"]})
            attempt += 1                                      # discard this attempt
            attempt_start = seen
            restart_at.append(seen)
            params = init_params(cfg, restart_stream(seed, attempt))
            opt = _make_optimizer(params, cfg)
            rule = StopRule(cfg)
            lr_dropped = False
            if c_n:                                           # close the curve point
                curve["sequences"].append(seen)
                curve["train_error"].append(c_err / c_n)
                curve["train_correct_frac"].append(c_ok / c_n)
                c_err, c_ok, c_n = 0.0, 0, 0
            if log is not None:
                log(f"{cfg.model} seed {seed}: restart {attempt} after {seen} seqs "
                    f"(mean err {curve['train_error'][-1]:.4f})")
    train_s = time.perf_counter() - t0
    ev = evaluate(params, tests, cfg)
    attempts.append({"sequences": seen - attempt_start, "solved": solved_at is not None,
                     "test_wrong": ev["test_wrong"]})
    if log is not None:
        log(f"{cfg.model} seed {seed}: {'solved at ' + str(solved_at) if solved_at else 'unsolved'}"
            f" after {seen} seqs, test wrong {ev['test_wrong']}/{cfg.n_test}, "
            f"acc {ev['test_accuracy']:.4f}, {train_s:.1f}s")
    return {
        "seed": seed, "variant": cfg.model, "solved": solved_at is not None,
        "stopped_by": "stop rule" if solved_at else ("budget" if seen >= cfg.budget
                                                     else "time limit"),
        "sequences_to_solve": solved_at, "sequences_seen": seen, "updates": step_idx,
        "restarts": attempt, "restart_at": restart_at, "attempts": attempts,
        "lr_drop_at": lr_drop_at,
        "final_train_mean_error": rule.mean_error, **ev,
        "n_weights": n_weights(params), "curve": curve,
        "snapshot_sequences": snap_seqs, "snapshots": np.stack(snaps),
        "params": {k: v.copy() for k, v in params.items()},
        "train_wall_s": train_s, "seq_steps_per_s": seq_steps / max(train_s, 1e-9),
    }


def _flat(params: dict) -> np.ndarray:
    return np.concatenate([params["W"].ravel(), params["W_out"].ravel()])


def unflatten(vec: np.ndarray, cfg: Config) -> dict:
    """Inverse of the flattening used for snapshots."""
    shapes = {k: v.shape for k, v in init_params(cfg, np.random.default_rng(0)).items()}
    n_w = int(np.prod(shapes["W"]))
    return {"W": vec[:n_w].reshape(shapes["W"]).copy(),
            "W_out": vec[n_w:].reshape(shapes["W_out"]).copy()}


# ---------------------------------------------------------------------------------------
# The 1997 procedure (the paper preset): online gradient descent, in online_1997.py
# ---------------------------------------------------------------------------------------
# The gradient of each model under the online procedure: the LSTM's 1997 truncated one;
# the RNN's full one (the truncation is defined through the LSTM's CEC only).
ONLINE_GRADIENT = {"lstm": "truncated", "rnn": "full"}


class RunPaused(Exception):
    """An online run stopped at its time limit with every trial checkpointed."""


def online_procedure():
    """online_1997.py beside this file. It imports this module, so it is imported on
    demand, with this module registered under its own name (a script runs as `__main__`)
    so that both see one module."""
    sys.modules.setdefault("temporal_order_4bit", sys.modules[__name__])
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import online_1997
    return online_1997


# ---------------------------------------------------------------------------------------
# Results: summary, table, catalog cell, overview rows
# ---------------------------------------------------------------------------------------
# Student-t 97.5% quantiles by degrees of freedom (95% interval for a mean).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
         16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074,
         23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045,
         30: 2.042}


def _stat(values: list) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "values": values}
    arr = np.asarray(vals, dtype=np.float64)
    return {"median": float(np.median(arr)), "min": float(arr.min()),
            "max": float(arr.max()), "values": values}


def mean_ci(values: list) -> dict:
    """Mean, sample sd and the 95% t-interval for the mean over the non-null values."""
    vals = np.asarray([v for v in values if v is not None], dtype=np.float64)
    n = len(vals)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci95": None}
    mean = float(vals.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "sd": None, "ci95": None}
    sd = float(vals.std(ddof=1))
    half = _T975.get(n - 1, 1.96) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half]}


_METRICS = ("sequences_to_solve", "test_wrong", "test_accuracy", "test_output_spread",
            "sequences_seen")


def summarize(records: list, variants) -> dict:
    out = {}
    for v in variants:
        recs = sorted((r for r in records if r["variant"] == v), key=lambda r: r["seed"])
        runs = [a for r in recs for a in r["attempts"]]
        s = {"n_seeds": len(recs), "solved": sum(r["solved"] for r in recs),
             "n_runs": len(runs), "runs_solved": sum(a["solved"] for a in runs),
             "first_attempt_solved": sum(r["attempts"][0]["solved"] for r in recs),
             "sequences_total": int(sum(r["sequences_seen"] for r in recs)),
             "capped_seeds": [r["seed"] for r in recs if r["stopped_by"] == "budget"],
             "time_limited_seeds": [r["seed"] for r in recs if r["stopped_by"] == "time limit"]}
        for key in _METRICS:
            s[key] = _stat([r[key] for r in recs])
        for key in ("seq_steps_per_s", "cpu_time_s"):
            if recs and all(key in r for r in recs):
                s[key] = _stat([r[key] for r in recs])
        # Table 9 reports means: mean, sd and 95% interval over the solved trials
        solved = [r for r in recs if r["solved"]]
        s["sequences_to_solve_mean"] = mean_ci([r["sequences_to_solve"] for r in solved])
        s["test_wrong_mean"] = mean_ci([r["test_wrong"] for r in solved])
        out[v] = s
    return out


def finalize_results(results: dict) -> dict:
    """Put the records in canonical order (variant order of the config, then seed) and
    recompute the summary from the records and the config."""
    variants = list(results["config"]["variants"])
    order = {v: i for i, v in enumerate(variants)}
    results["seeds"] = sorted(results["seeds"], key=lambda r: (order[r["variant"]], r["seed"]))
    results["summary"] = summarize(results["seeds"], variants)
    return results


def _fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def _range(st, digits=0) -> str:
    return f"{_fmt(st['median'], digits)} [{_fmt(st['min'], digits)}, {_fmt(st['max'], digits)}]"


def _mean_txt(m) -> str:
    if not m or m["mean"] is None:
        return "–"
    if m["sd"] is None:
        return f"{_fmt(m['mean'])} (one trial)"
    return (f"{_fmt(m['mean'])} ± {_fmt(m['sd'])} (95% CI {_fmt(m['ci95'][0])}–"
            f"{_fmt(m['ci95'][1])})")


def _paper_run(paper_runs, task, model="lstm"):
    """The committed paper-procedure run of `task` and `model` among paper_runs, or None."""
    for res in (paper_runs or {}).values():
        if res.get("config", {}).get("task") == task and model in res.get("summary", {}):
            return res
    return None


def _rnn_paper_row(paper_runs) -> str:
    pr = _paper_run(paper_runs, "6b", "rnn")
    if pr is None:
        return "| 6b, tanh RNN | ours, paper procedure | no finished run | – | – | – | – | – |"
    s, cfg = pr["summary"]["rnn"], pr["config"]
    capped = f", {len(s['capped_seeds'])} at the {_fmt(cfg['budget'])} cap" \
        if s["capped_seeds"] else ""
    return (f"| 6b, tanh RNN | ours, paper procedure (α {cfg['lr']:g}, full gradient) | "
            f"{s['solved']}/{s['n_seeds']}{capped} | {s['runs_solved']}/{s['n_runs']} | "
            f"{_mean_txt(s['sequences_to_solve_mean'])} | {_range(s['sequences_to_solve'])} | "
            f"{_fmt(s['test_wrong_mean']['mean'], 1)} | {_range(s['test_wrong'])} |")


def results_table(results: dict, paper_runs=None) -> str:
    """README results table: the paper, ours under the paper's procedure (paper_runs, the
    committed paper*/ runs), ours under the modern procedure (results)."""
    n_test = results["config"]["n_test"]
    rows = ["| task, model | procedure | solved, per seed | per run (restarts and failed "
            "attempts counted) | sequences to solve: mean ± sd (95% CI) | median [min, max] "
            f"| test wrong of {n_test}: mean | median [min, max] |",
            "|---|---|---|---|---|---|---|---|"]
    for task in ("6b", "6a"):
        ref = PAPER_REFERENCE[task]
        rows.append(f"| {task}, LSTM | paper (online SGD, Table 9) | {ref['trials']} trials | – | "
                    f"{_fmt(ref['sequences_to_solve_mean'])} | – | {ref['test_wrong']} | "
                    + (f"– (no trial > {ref['max_test_wrong_any_trial']}) |"
                       if "max_test_wrong_any_trial" in ref else "– |"))
        pr = _paper_run(paper_runs, task)
        if pr is None:
            rows.append(f"| {task}, LSTM | ours, paper procedure | no finished run "
                        "| – | – | – | – | – |")
        else:
            s = pr["summary"]["lstm"]
            capped = (f", {len(s['capped_seeds'])} at the "
                      f"{_fmt(pr['config']['budget'])} cap" if s["capped_seeds"] else "")
            rows.append(
                f"| {task}, LSTM | ours, paper procedure | {s['solved']}/{s['n_seeds']}"
                f"{capped} | {s['runs_solved']}/{s['n_runs']} | "
                f"{_mean_txt(s['sequences_to_solve_mean'])} | {_range(s['sequences_to_solve'])} "
                f"| {_fmt(s['test_wrong_mean']['mean'], 1)} | {_range(s['test_wrong'])} |")
        if task == "6b":
            rows.append(_rnn_paper_row(paper_runs))
        if results["config"]["task"] == task:
            cfg = results["config"]
            how = f"modern ({cfg['optimizer']}, batch {cfg['batch']}, lr {cfg['lr']:g})"
            for v, s in results["summary"].items():
                name = "LSTM" if v == "lstm" else "tanh RNN"
                rows.append(
                    f"| {task}, {name} | ours, {how} | {s['solved']}/{s['n_seeds']} | "
                    f"{s['runs_solved']}/{s['n_runs']} (first attempt "
                    f"{s['first_attempt_solved']}/{s['n_seeds']}) | "
                    f"{_mean_txt(s['sequences_to_solve_mean'])} | "
                    f"{_range(s['sequences_to_solve'])} | "
                    f"{_fmt(s['test_wrong_mean']['mean'], 1)} | {_range(s['test_wrong'])} |")
    return "\n".join(rows)


def headline(results: dict, paper_runs=None) -> str:
    """One catalog cell (no '|'): the paper, ours under its procedure, ours modern."""
    ref = PAPER_REFERENCE["6b"]
    s = results["summary"]["lstm"]
    n_test = results["config"]["n_test"]
    pr = _paper_run(paper_runs, "6b")
    if pr is None:
        ours_paper = "paper procedure: no finished run"
    else:
        p = pr["summary"]["lstm"]
        m = p["sequences_to_solve_mean"]["mean"]
        ours_paper = (f"paper procedure {p['solved']}/{p['n_seeds']} trials, mean "
                      f"{_fmt(m)} sequences")
    txt = (f"6b paper: mean {_fmt(ref['sequences_to_solve_mean'])} sequences, "
           f"{ref['test_wrong']}/{n_test} wrong; ours {ours_paper}; ours modern: LSTM "
           f"{s['solved']}/{s['n_seeds']} seeds ({s['runs_solved']}/{s['n_runs']} runs, first "
           f"attempt {s['first_attempt_solved']}/{s['n_seeds']}), median "
           f"{_fmt(s['sequences_to_solve']['median'])} sequences, median "
           f"{_fmt(s['test_wrong']['median'])}/{n_test} wrong")
    if "rnn" in results["summary"]:
        r = results["summary"]["rnn"]
        txt += (f"; tanh RNN {r['solved']}/{r['n_seeds']} ({r['runs_solved']}/{r['n_runs']} "
                f"runs), accuracy {_fmt(r['test_accuracy']['median'], 3)} (chance "
                f"{1.0 / 2 ** len(TASKS[results['config']['task']]):.3f})")
    rp = _paper_run(paper_runs, "6b", "rnn")
    if rp is not None:
        r = rp["summary"]["rnn"]
        txt += f"; tanh RNN, paper procedure {r['solved']}/{r['n_seeds']}"
    return txt


def overview(results: dict, paper_runs=None) -> list:
    """Rows for the collection's overview figure: success rates by the paper's criterion."""
    def rate(res, v="lstm"):
        if res is None or v not in res["summary"]:
            return None
        s = res["summary"][v]
        return s["solved"] / s["n_seeds"]
    modern_6b = results if results["config"]["task"] == "6b" else None
    return [
        {"label": "Exp. 6b, LSTM", "paper": 1.0, "ours_paper": rate(_paper_run(paper_runs, "6b")),
         "ours_modern": rate(modern_6b)},
        {"label": "Exp. 6a, LSTM", "paper": 1.0, "ours_paper": rate(_paper_run(paper_runs, "6a")),
         "ours_modern": None},
        {"label": "Exp. 6b, tanh RNN", "paper": None,
         "ours_paper": rate(_paper_run(paper_runs, "6b", "rnn"), "rnn"),
         "ours_modern": rate(modern_6b, "rnn")},
    ]


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
ROOT = HERE.parent
DEFAULT_OUT = ROOT / "runs" / HERE.name
MAX_BYTES = 4 * 2 ** 30                                       # refuse sizes beyond 4 GiB


def _parse_seeds(text: str) -> list:
    try:
        if "-" in text:
            lo, hi = text.split("-")                          # "a-b"; "-1" fails here
            seeds = list(range(int(lo), int(hi) + 1))
        else:
            seeds = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad seed list {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"empty, negative or repeated seeds in {text!r}")
    return seeds


def _checked(kind, ok, what):
    """argparse type: parse `text` as `kind` and require ok(value) (message: must be `what`)."""
    def conv(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(v) and ok(v)):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return v
    return conv


def _positive(kind):
    return _checked(kind, lambda v: v > 0, "> 0")


_nonneg_int = _checked(int, lambda v: v >= 0, ">= 0")
_fraction = _checked(float, lambda v: 0.0 < v < 1.0, "in (0, 1)")
_PRESET = "default: the preset's"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="LSTM 1997 Experiment 6b/6a (temporal order): LSTM vs tanh RNN.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="modern",
                    help="paper = the 1997 procedure (online SGD, truncated gradient, 3M cap); "
                         "modern = Adam, batch 256, one restart (the folder-root run); "
                         "quick = seconds, for the tests")
    ap.add_argument("--seeds", type=_parse_seeds, default="0-9",
                    help="seeds: '3', '0,2,5' or '0-9'")
    ap.add_argument("--jobs", type=_positive(int), default=os.cpu_count() or 1,
                    help="parallel processes (seeds; for the paper preset, groups of "
                         "stacked trials)")
    ap.add_argument("--outdir", default=str(DEFAULT_OUT),
                    help="where results.json and run.npz go (the committed runs are written "
                         "only when named explicitly, e.g. --outdir temporal-order-4bit)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--checkpoint-dir", default=argparse.SUPPRESS,
                    help="paper preset: where the per-trial checkpoints go (default: "
                         "<outdir>/checkpoint; removed when the run has finished)")
    ap.add_argument("--resume", action="store_true",
                    help="paper preset: continue from the checkpoint directory")
    ap.add_argument("--status", action="store_true",
                    help="paper preset: print the per-trial state of the checkpoint "
                         "directory and write its status.json; trains nothing")
    ap.add_argument("--task", choices=sorted(TASKS), default=argparse.SUPPRESS,
                    help="6b: 3 markers, 8 classes; 6a: 2 markers, 4 classes, 2 blocks "
                         "(default: 6b)")
    ap.add_argument("--variants", default=argparse.SUPPRESS,
                    help="comma list of models to train: lstm, rnn (default: lstm,rnn; the "
                         "paper preset: lstm, or rnn alone)")
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default=argparse.SUPPRESS,
                    help=f"adam or sgd ({_PRESET})")
    ap.add_argument("--lr", type=_positive(float), default=argparse.SUPPRESS,
                    help="learning rate (default: the preset's: modern 6e-2, paper 0.1 for "
                         "6b and 0.5 for 6a)")
    ap.add_argument("--lr-rnn", type=_positive(float), default=argparse.SUPPRESS,
                    help="the tanh RNN's own learning rate (default: --lr)")
    ap.add_argument("--clip", type=_positive(float), default=argparse.SUPPRESS,
                    help="clip the gradient's global norm to this before each update "
                         "(default: no clipping)")
    ap.add_argument("--rnn-backward", choices=["kernel", "float64"], default=argparse.SUPPRESS,
                    help="dtype of the RNN's backward pass: the kernel's, or float64 (no "
                         "float32 subnormals) (default: kernel)")
    ap.add_argument("--batch", type=_positive(int), default=argparse.SUPPRESS,
                    help=f"sequences per update ({_PRESET})")
    ap.add_argument("--budget", type=_positive(int), default=argparse.SUPPRESS,
                    help="max training sequences per seed (default: the preset's: modern "
                         "300000, paper 3000000)")
    ap.add_argument("--time-limit-min", type=_positive(float), default=argparse.SUPPRESS,
                    help="wall-clock cap per run in minutes; a paper-preset run pauses there "
                         "with its checkpoint (default: none)")
    ap.add_argument("--checkpoint-every-s", type=_positive(float), default=argparse.SUPPRESS,
                    help="paper preset: seconds between checkpoints (default: 600)")
    ap.add_argument("--restarts", type=_nonneg_int, default=argparse.SUPPRESS,
                    help="max re-initialisations of a run that has not met the stop rule "
                         "after --restart-after sequences (default: modern 1; 0 = the "
                         "paper's single attempt)")
    ap.add_argument("--restart-after", type=_positive(int), default=argparse.SUPPRESS,
                    help="sequences per attempt before a restart (default: 150000)")
    ap.add_argument("--lr-drop-after", type=_positive(int), default=argparse.SUPPRESS,
                    help="multiply lr by --lr-drop once an attempt has seen this many "
                         "sequences unsolved (default: never)")
    ap.add_argument("--lr-drop", type=_fraction, default=argparse.SUPPRESS,
                    help="factor of that learning-rate drop, in (0, 1) (default: 0.1)")
    ap.add_argument("--blocks", type=_positive(int), default=argparse.SUPPRESS,
                    help="LSTM memory blocks (default: 3 for 6b, 2 for 6a)")
    ap.add_argument("--cells", type=_positive(int), default=argparse.SUPPRESS,
                    help="memory cells per block (default: 2)")
    ap.add_argument("--hidden", type=_positive(int), default=argparse.SUPPRESS,
                    help="tanh RNN units (default: 11, 316 weights)")
    ap.add_argument("--init", choices=["prior", "paper"], default=argparse.SUPPRESS,
                    help="prior: output biases logit(1/K); paper: all U[-0.1,0.1] "
                         f"({_PRESET})")
    ap.add_argument("--gradient", choices=["full", "truncated"], default=argparse.SUPPRESS,
                    help=f"full BPTT or the 1997 truncated gradient ({_PRESET})")
    ap.add_argument("--dtype", choices=["float32", "float64"], default=argparse.SUPPRESS,
                    help=f"training-kernel dtype; params stay float64 ({_PRESET})")
    return ap


_OVERRIDES = (("optimizer", "optimizer"), ("lr", "lr"), ("batch", "batch"),
              ("budget", "budget"), ("blocks", "blocks"), ("cells", "cells"),
              ("hidden", "hidden"), ("init", "init"), ("gradient", "gradient"),
              ("time_limit_min", "time_limit_min"), ("dtype", "kernel_dtype"),
              ("restarts", "restarts"), ("restart_after", "restart_after"),
              ("lr_drop_after", "lr_drop_after"), ("lr_drop", "lr_drop"),
              ("checkpoint_every_s", "checkpoint_every_s"), ("lr_rnn", "lr_rnn"),
              ("clip", "clip"), ("rnn_backward", "rnn_backward"))


def config_from_args(args, ap) -> Config:
    cfg = PRESETS[args.preset]
    given = vars(args)
    over = {}
    if "task" in given:
        over["task"] = args.task
        if args.task == "6a" and "blocks" not in given:
            over["blocks"] = 2
        if args.preset == "paper" and "lr" not in given:
            over["lr"] = PAPER_LR[args.task]
    if "variants" in given:
        vs = tuple(v.strip() for v in args.variants.split(","))
        if not vs or any(v not in VARIANTS for v in vs) or len(set(vs)) != len(vs):
            ap.error(f"--variants: choose from {', '.join(VARIANTS)}, got {args.variants!r}")
        over["variants"] = vs
    for name, field in _OVERRIDES:
        if name in given:
            over[field] = given[name]
    if cfg.procedure == "online" and over.get("variants") == ("rnn",):
        over["model"] = "rnn"                                 # the RNN under the procedure
        over.setdefault("gradient", ONLINE_GRADIENT["rnn"])
    cfg = dataclasses.replace(cfg, **over)
    if cfg.procedure == "online":
        bad = [k for k, want in (("variants", (cfg.model,)), ("optimizer", "sgd"),
                                 ("batch", 1), ("gradient", ONLINE_GRADIENT[cfg.model]),
                                 ("restarts", 0), ("lr_drop_after", 0), ("clip", 0.0))
               if getattr(cfg, k) != want]
        if bad:
            ap.error(f"the paper preset is the paper's procedure; it cannot change "
                     f"{', '.join('--' + k.replace('_', '-') for k in bad)}")
    elif "resume" in given and args.resume:
        ap.error("--resume: only the paper preset checkpoints")
    need = _bytes_needed(cfg)
    if need > MAX_BYTES:
        ap.error(f"these sizes need ~{need / 2 ** 30:,.0f} GiB of arrays (limit "
                 f"{MAX_BYTES / 2 ** 30:.0f} GiB): reduce --hidden, --blocks, --cells or --batch")
    return cfg


def _bytes_needed(cfg: Config) -> float:
    """A rough upper estimate of the training arrays' size (parameters, optimizer state,
    the kernel's per-step arrays), to refuse sizes that cannot be allocated."""
    nc = cfg.blocks * cfg.cells
    lstm_w = (N_IN + nc + 2 * cfg.blocks + 1) * (nc + 2 * cfg.blocks)
    rnn_w = (N_IN + cfg.hidden + 1) * cfg.hidden
    n_w = max(lstm_w if "lstm" in cfg.variants else 0, rnn_w if "rnn" in cfg.variants else 0)
    width = max(N_IN + 7 * nc + 2 * cfg.blocks + 1, N_IN + 3 * cfg.hidden + 1)
    return 8.0 * (6 * n_w + 3 * cfg.max_len * cfg.batch * width)


def _check_outdir(path: Path, ap) -> None:
    """Create the outdir and write a probe file, or fail with a usage error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe", delete=True):
            pass
    except OSError as e:
        ap.error(f"--outdir {str(path)!r} is not writable: {e.strerror or e}")


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def _run_one(job):
    cfg, seed, quiet = job
    log = None if quiet else (lambda m: print(m, flush=True))
    return [train(cfg, seed, log)]


def _run_group(job):
    cfg, seeds, quiet, ckpt_dir, resume = job
    log = None if quiet else (lambda m: print(m, flush=True))
    return online_procedure().train_online(cfg, seeds, log=log, ckpt_dir=ckpt_dir,
                                           resume=resume)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _git(*args):
    try:
        r = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True,
                           timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def git_state() -> dict:
    head, status = _git("rev-parse", "HEAD"), _git("status", "--porcelain")
    return {"git_commit": None if head is None else head.strip(),
            "git_dirty": None if status is None else bool(status.strip())}


def _run_jobs(worker, jobs, n_proc):
    """Run jobs in-process or on a fork pool whose workers ignore SIGINT."""
    if n_proc <= 1 or len(jobs) <= 1:
        return [r for j in jobs for r in worker(j)]
    import multiprocessing as mp
    pool = mp.get_context("fork").Pool(min(n_proc, len(jobs)), initializer=_ignore_sigint)
    try:
        out = pool.map_async(worker, jobs, chunksize=1).get(timeout=10 ** 7)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return [r for part in out for r in part]


def main(argv=None) -> int:
    argv_list = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    args = ap.parse_args(argv_list)
    if args.outdir == "":
        ap.error("--outdir: empty path")
    cfg = config_from_args(args, ap)
    outdir = Path(args.outdir)
    ckpt_dir = Path(getattr(args, "checkpoint_dir", outdir / "checkpoint"))
    if args.status:
        if not ckpt_dir.is_dir():
            ap.error(f"--status: no checkpoint in {outdir}")
        status = online_procedure().checkpoint_status(ckpt_dir, cfg)
        path = ckpt_dir / "status.json"
        _atomic_write(path, json.dumps(_jsonable(status), indent=1) + "\n")
        for st in status:
            print(json.dumps(_jsonable(st)))
        print(f"wrote {path}")
        return 0
    _check_outdir(outdir, ap)
    online = cfg.procedure == "online"
    if online:
        if not args.resume and ckpt_dir.is_dir() and any(ckpt_dir.glob("seed*.npz")):
            ap.error(f"{ckpt_dir} holds a checkpoint: continue it with --resume or remove it")
        try:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            ap.error(f"--checkpoint-dir {str(ckpt_dir)!r}: {e.strerror or e}")
        n_groups = min(args.jobs, len(args.seeds))
        jobs = [(cfg, args.seeds[i::n_groups], args.quiet, ckpt_dir, args.resume)
                for i in range(n_groups)]
        worker = _run_group
    else:
        jobs = [(dataclasses.replace(cfg, model=v), s, args.quiet)
                for v in sorted(cfg.variants, key=lambda v: v != "rnn")   # long runs first
                for s in args.seeds]
        worker = _run_one
    git = git_state()
    t0 = time.perf_counter()
    old_term = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)   # kill PID: pool too
    try:
        records = _run_jobs(worker, jobs, args.jobs)
    except KeyboardInterrupt:
        print("interrupted: nothing written" + (" (the checkpoint keeps the trials' last "
              "saved state)" if online else ""), file=sys.stderr)
        return 130
    except RunPaused as e:
        print(f"paused: {e}; continue with --resume", file=sys.stderr)
        return 3
    except FloatingPointError as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory for these sizes", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, old_term)
    wall = time.perf_counter() - t0
    arrays = {}
    for r in records:
        tag = f"{r['variant']}/seed{r['seed']}"
        arrays[f"{tag}/snapshots"] = r.pop("snapshots")
        for k, v in r.pop("params").items():
            arrays[f"{tag}/{k}"] = v
    results = finalize_results({
        "experiment": HERE.name,
        "paper": PAPER,
        "command": ["python", f"{HERE.name}/{Path(__file__).name}", *argv_list],
        "preset": args.preset,
        "config": _jsonable(dataclasses.asdict(cfg)),
        "env": {"python": platform.python_version(), "numpy": np.__version__,
                "platform": platform.platform(), "machine": platform.machine(),
                "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "jobs": args.jobs,
                **git},
        "wallclock_s": wall,
        "paper_reference": PAPER_REFERENCE[cfg.task],
        "summary": {},
        "seeds": records,
    })
    npz = outdir / "run.npz"
    np.savez_compressed(outdir / "run.npz.tmp.npz", **arrays)
    os.replace(outdir / "run.npz.tmp.npz", npz)
    res_path = outdir / "results.json"
    _atomic_write(res_path, json.dumps(_jsonable(results), indent=1) + "\n")
    if online:                                                # the results hold it all now
        for p in ckpt_dir.glob("*"):
            p.unlink()
        ckpt_dir.rmdir()
    if not args.quiet:
        print(f"done in {wall:.1f}s")
        for v, s in results["summary"].items():
            print(f"  {v}: solved {s['solved']}/{s['n_seeds']} (runs {s['runs_solved']}/"
                  f"{s['n_runs']}), sequences to solve median "
                  f"{s['sequences_to_solve']['median']}, test wrong median "
                  f"{s['test_wrong']['median']}, accuracy median "
                  f"{s['test_accuracy']['median']:.4f}")
    print(f"wrote {res_path}")
    print(f"wrote {npz}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
