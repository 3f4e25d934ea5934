"""Continual embedded Reber grammar: LSTM with and without forget gates.

Gers, F. A., Schmidhuber, J. & Cummins, F. (2000). Learning to Forget: Continual Prediction
with LSTM. Neural Computation 12(10), 2451-2471. Experiment: Table 2.

Claim reproduced: on one unsegmented stream of concatenated embedded Reber strings, predicting
at each step the set of legal next symbols, an LSTM *with forget gates* learns to predict
10 streams of 100,000 symbols without a single error ("perfect"), while standard LSTM
(no forget gates, never reset) fails: its cell states grow without bound. Standard LSTM that
is told the segmentation (state reset at every string end) also succeeds. The paper's
"state decay" row (standard LSTM whose cell states shrink by 0.9 every step) is `decay`.

Headline command (modern preset: 10 seeds x variants forget, no_forget, reset, decay;
writes the committed run only because --outdir names the folder):

    python continual-embedded-reber/continual_embedded_reber.py --jobs 2 \
        --outdir continual-embedded-reber

The paper's own scheme (online SGD, alpha 0.5, squared error, truncated forward-mode gradient,
training streams that end at the first error, Table 2's five rows) is `--preset paper`.

The file reads top to bottom: task (grammar automaton, stream generator) -> network and its
forward equations -> hand-written BPTT -> loss and the paper's error criterion -> training
(Adam over truncated-BPTT chunks, several nets of one variant stacked into one kernel call)
-> evaluation on 10 x 100,000-symbol streams -> results and CLI. The paper's on-line scheme
(`--preset paper`: lock-step nets, forward-mode truncated gradient, checkpoints) is
`online_training.py` beside this file.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
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
FOLDER = "continual-embedded-reber"
DEFAULT_OUTDIR = HERE.parent / "runs" / FOLDER  # git-ignored; committed runs need --outdir
VARIANTS = ("forget", "no_forget", "reset", "decay")
STATE_DECAY = 0.9  # `decay`: the paper's "state decay" row, s_c(t) = 0.9 s_c(t-1) + y^in g
SYMBOLS = "BTPSXVE"
N_SYM = len(SYMBOLS)
ERROR_THRESHOLD = 0.49  # the paper's output-error threshold: |y^k - t^k| >= 0.49 is an error


# ---------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """One experiment's settings (hashable: tuples and scalars only)."""

    variants: tuple = VARIANTS  # model variants trained, each on the same streams per seed
    n_blocks: int = 4  # memory blocks (paper: 4)
    cells_per_block: int = 2  # cells per block (paper: 2)
    batch: int = 8  # training streams run in parallel per net (one Adam update per chunk)
    chunk: int = 64  # truncated-BPTT chunk length (steps); state carried across chunks
    restart_p: float = 0.25  # per stream per chunk: start a fresh stream from zero state
    restart_on_error: bool = False  # also restart every stream that erred in the last chunk
    # (closer to the paper, whose training streams ran until the net's first error)
    optimizer: str = "adam"  # "adam" (default) or "sgd" (plain gradient descent)
    lr: float = 1e-2  # initial learning rate
    lr_final: float = 1e-3  # learning rate reached after lr_decay_symbols (geometric decay)
    lr_decay_symbols: int = 10_000_000  # training symbols over which lr decays to lr_final
    decay_after_error: float = 0.01  # the decay starts once a net's training error rate
    # (running mean over chunks, fraction of steps with an error) first drops below this:
    # off the ~5% plateau (chance on the outer T/P); 1.0 = decay from the start
    max_symbols: int = 40_000_000  # training budget per net (symbols)
    loss: str = "bce"  # "bce" (cross-entropy on logistic outputs) or "mse" (the paper's)
    truncated: bool = False  # the 1997/2000 truncated gradient: no error flows back through
    # the recurrent weights (y^c_{t-1} -> nets); only through the CEC (s_c). False = full BPTT
    init_range: float = 0.2  # weights uniform in [-init_range, init_range] (paper: 0.2)
    clean_symbols: int = 100_000  # error-free training symbols in a row before a stop test
    test_every_symbols: int = 1_000_000  # min training symbols between two stop tests
    test_streams: int = 10  # test streams per test (paper: 10)
    test_len: int = 100_000  # symbols per test stream (paper: 100,000)
    test_block: int = 1000  # steps per forward block in the test
    kernel_dtype: str = "float32"  # dtype of the training/test kernel (params stay float64)
    log_every_symbols: int = 1_000_000  # one curve point per this many training symbols
    n_snapshots: int = 12  # parameter snapshots (seed 0) for the GIF, log-spaced in symbols


# The paper's Table 2 rows as trained by `--preset paper` (network variant, alpha schedule):
#   reset           standard LSTM, state and outputs zeroed at every string start
#   no_forget       standard LSTM, never reset
#   decay           standard LSTM whose cell states shrink x0.9 per step
#   forget          LSTM with forget gates, constant alpha
#   forget_alpha_a  forget gates + sequential alpha decay, reading (a): alpha = 0.5 at the
#                   start of every training stream, x0.99 after every step within it
#   forget_alpha_b  reading (b): alpha x0.99 after every training stream, never reset
PAPER_ROWS = ("reset", "no_forget", "decay", "forget", "forget_alpha_a", "forget_alpha_b")

@dataclass(frozen=True)
class OnlineConfig:
    """The paper's own training scheme (`--preset paper`): online gradient descent with the
    truncated forward-mode gradient, one update per symbol, training streams that end at
    the first error, a test after every training stream (see `train_online`)."""

    rows: tuple = PAPER_ROWS  # Table 2 rows trained (see PAPER_ROWS)
    n_blocks: int = 4  # memory blocks (paper: 4)
    cells_per_block: int = 2  # cells per block (paper: 2)
    init_range: float = 0.2  # weights uniform in [-init_range, init_range] (paper: 0.2)
    lr: float = 0.5  # alpha (paper: 0.5); the alpha-decay rows start from it
    lr_decay: float = 0.99  # alpha's factor in the two alpha-decay rows (see PAPER_ROWS)
    max_stream_len: int = 1_000_000  # a training stream ends at its first error or here
    max_streams: int = 30_000  # training streams per net (the paper's budget)
    max_symbols: int = 30_000_000  # training symbols per net (a cap for nets whose
    # error-free streams make 30,000 streams infeasible; such nets are counted and listed)
    max_wall_s: float = 0.0  # stop all training after this many seconds (0 = no limit)
    test_streams: int = 10  # streams per test (paper: 10)
    test_len: int = 100_000  # symbols per test stream (paper: 100,000)
    coin_block: int = 4096  # steps of random coins drawn at a time per net
    data_key: int = 500  # rng keys of the data: training (seed, data_key), tests (.., +10)
    log_every_symbols: int = 250_000  # one curve point per this many steps


PRESETS = {
    "paper": OnlineConfig(),
    "modern": Config(),
    "quick": Config(batch=8, chunk=16, max_symbols=60_000, lr_decay_symbols=60_000,
                    clean_symbols=2_000, test_every_symbols=20_000, test_len=2_000,
                    test_block=500, log_every_symbols=10_000, n_snapshots=4),
}

# The committed runs of each preset: {preset: {subdir: extra argv}} (tools/run_all.py)
RUNS = {  # "cnto.py ...": the folder's second script (Table 3), committed in cnto/
    "modern": {".": [], "cnto": ["cnto.py"]},
    "paper": {"paper": ["--preset", "paper", "--seeds", "0-29"],
              "cnto/paper": ["cnto.py", "--preset", "paper", "--seeds", "0-9"]},
    "quick": {".": ["--preset", "quick"], "cnto": ["cnto.py", "--preset", "quick"]},
}


# ---------------------------------------------------------------------------------------
# Task: the embedded Reber automaton as a walk over edges
# ---------------------------------------------------------------------------------------
# Reber grammar (states 0..6, 'end' after the final E):
#   0 -B-> 1; 1 -T-> 2 | -P-> 3; 2 -S-> 2 | -X-> 4; 3 -T-> 3 | -V-> 5;
#   4 -X-> 3 | -S-> 6; 5 -P-> 4 | -V-> 6; 6 -E-> end.
# Embedded: B (T <reber> T | P <reber> P) E, strings concatenated with no separator.
REBER = {0: (("B", 1),), 1: (("T", 2), ("P", 3)), 2: (("S", 2), ("X", 4)),
         3: (("T", 3), ("V", 5)), 4: (("X", 3), ("S", 6)), 5: (("P", 4), ("V", 6)),
         6: (("E", "end"),)}


def embedded_automaton():
    """States of the continual embedded grammar and their (symbol, next state) choices.

    States: 'start' (emits the outer B), 'branch' (outer T or P), ('T'|'P', k) inner Reber
    state k on that branch, ('close', 'T'|'P') (repeats the branch symbol), 'end' (outer E,
    then back to 'start': the stream never stops).
    """
    out = {"start": (("B", "branch"),), "branch": (("T", ("T", 0)), ("P", ("P", 0)))}
    for br in "TP":
        for k, choices in REBER.items():
            out[(br, k)] = tuple((s, ("close", br) if n == "end" else (br, n))
                                 for s, n in choices)
        out[("close", br)] = ((br, "end"),)
    out["end"] = (("E", "start"),)
    return out


def edge_tables():
    """Edges of the automaton as arrays, for a vectorised walk.

    An edge e = (from, symbol, to). NEXT2[2 e + coin] = 2 e' where e' is the edge taken next
    (coin in {0, 1}, each p = 0.5; single-choice states ignore the coin). Also returns the
    emitted symbol per edge, the legal-next-symbol mask after the edge, whether the edge
    leaves 'start' (an outer B: a string begins), and the edge that enters 'start'.
    """
    auto = embedded_automaton()
    edges = [(q, s, n) for q, ch in auto.items() for s, n in ch]
    index = {e: i for i, e in enumerate(edges)}
    out_of = {q: [index[(q, s, n)] for s, n in ch] for q, ch in auto.items()}
    next2 = np.zeros(2 * len(edges), dtype=np.int64)
    for i, (_q, _s, n) in enumerate(edges):
        choices = out_of[n]
        next2[2 * i] = 2 * choices[0]
        next2[2 * i + 1] = 2 * choices[-1]
    sym = np.array([SYMBOLS.index(s) for _q, s, _n in edges], dtype=np.int64)
    legal = np.zeros((len(edges), N_SYM))
    for i, (_q, _s, n) in enumerate(edges):
        for s2, _n2 in auto[n]:
            legal[i, SYMBOLS.index(s2)] = 1.0
    starts = np.array([q == "start" for q, _s, _n in edges])
    into_start = index[("end", "E", "start")]
    return dict(next2=next2, sym=sym, legal=legal, starts=starts, into_start=into_start)


TABLES = edge_tables()


def walk(cur2, coins):
    """Advance streams through the automaton.

    cur2: (S,) int, 2 x the edge each stream took last (modified in place);
    coins: (L, S) int 0/1. Returns the edges taken, (L, S).
    """
    next2 = TABLES["next2"]
    edges = np.empty(coins.shape, dtype=np.int64)
    for t in range(coins.shape[0]):
        np.add(cur2, coins[t], out=cur2)
        np.take(next2, cur2, out=cur2)
        edges[t] = cur2
    return edges >> 1


def stream_data(edges, reset: bool):
    """Input symbols x_t, targets (legal next symbols after x_t) and the reset keep-mask.

    keep_t = 0 where x_t is an outer B (a new string begins) and the net is the `reset`
    variant: its state is zeroed before it reads that B. Otherwise keep_t = 1.
    """
    x = TABLES["sym"][edges]
    target = TABLES["legal"][edges]
    keep = (~TABLES["starts"][edges]).astype(np.float64) if reset else None
    return x, target, keep


def fresh_streams(rng, n_streams: int, length: int):
    """`n_streams` streams of `length` symbols, each from the start of a string: edges (L, S)."""
    cur2 = np.full(n_streams, 2 * TABLES["into_start"], dtype=np.int64)
    coins = rng.integers(0, 2, size=(length, n_streams), dtype=np.int64)
    return walk(cur2, coins)


def stream_string(edges_1d) -> str:
    """The symbols of one stream as a string (for tests and figures)."""
    return "".join(SYMBOLS[i] for i in TABLES["sym"][edges_1d])


# ---------------------------------------------------------------------------------------
# Network: 4 blocks x 2 cells, input/forget/output gates per block, shortcuts input->output
# ---------------------------------------------------------------------------------------
# Units and weights (paper's topology, 424 weights with forget gates):
#   every hidden unit (cell input net_c, gates net_in, net_phi, net_out) sees the 7 inputs
#   x_t and the 8 cell outputs y^c_{t-1}: rows [x (7); y^c (8)];
#   gates are biased; cell inputs are not (424 = 432 - 8 cell biases);
#   output units y^k see [x (7); y^c_t (8)] plus a bias.
# Forward equations (one block j, cell v; f = logistic):
#   y^in_j = f(net_in_j),  y^phi_j = f(net_phi_j),  y^out_j = f(net_out_j)
#   g(net_c) = 4 f(net_c) - 2 in [-2, 2],  h(s) = 2 f(s) - 1 in [-1, 1]
#   s_c(t) = y^phi_j s_c(t-1) + y^in_j g(net_c)     (no_forget: y^phi = 1)
#   y^c(t) = y^out_j h(s_c(t));  y^k = f(net_k)
# `reset` = no_forget with s_c and y^c zeroed before the first symbol of every string.
def n_cells(cfg: Config) -> int:
    return cfg.n_blocks * cfg.cells_per_block


def param_shapes(cfg: Config, variant: str, n_in: int = N_SYM, n_out: int = N_SYM) -> list:
    """(name, shape) of every parameter array, in a fixed order (n_in inputs, n_out outputs:
    the grammar's 7 unless another task says otherwise)."""
    c, nb, rows = n_cells(cfg), cfg.n_blocks, n_in + n_cells(cfg)
    shapes = [("W_c", (rows, c)), ("W_in", (rows, nb)), ("b_in", (nb,))]
    if variant == "forget":
        shapes += [("W_phi", (rows, nb)), ("b_phi", (nb,))]
    shapes += [("W_out", (rows, nb)), ("b_out", (nb,)), ("W_k", (rows, n_out)),
               ("b_k", (n_out,))]
    return shapes


def n_weights(cfg: Config, variant: str) -> int:
    return int(sum(np.prod(s) for _n, s in param_shapes(cfg, variant)))


def init_params(cfg: Config, rng, variant: str | None = None, n_in: int = N_SYM,
                n_out: int = N_SYM) -> dict:
    """Paper's init: U[-0.2, 0.2]; gate biases by block: in/out -0.5,-1,-1.5,-2; phi +0.5..+2."""
    variant = variant or cfg.variants[0]
    p = {name: rng.uniform(-cfg.init_range, cfg.init_range, size=shape)
         for name, shape in param_shapes(cfg, variant, n_in, n_out)}
    steps = 0.5 * np.arange(1, cfg.n_blocks + 1)
    p["b_in"] = -steps.copy()
    p["b_out"] = -steps.copy()
    if variant == "forget":
        p["b_phi"] = steps.copy()
    return p


def has_forget_gates(params: dict) -> bool:
    """True iff the parameters include forget gates."""
    return "W_phi" in params


def variant_flags(variant: str) -> tuple:
    """(forget gates, reset at string starts, constant state decay) of a variant."""
    return (variant == "forget", variant == "reset",
            STATE_DECAY if variant == "decay" else 1.0)


def pack(params: dict, forget: bool, dtype) -> dict:
    """Stacked params (N, ...) -> fused kernel matrices.

    Hidden columns are [o | i | phi | c], 8 each (gate columns repeated for the 2 cells of a
    block), in half-net units z = net / 2, so one tanh gives every squash:
    f(net) = (1 + tanh z) / 2 and g = 2 tanh z_c; h(s) = tanh(s / 2) = tanh(u), u = s / 2.
    The input count comes from the weight shapes (rows [x; y^c]: W_c has n_in + c rows).
    """
    c = params["W_c"].shape[-1]
    n_in = params["W_c"].shape[-2] - c
    rep = c // params["b_in"].shape[-1]
    gates = ["W_out", "W_in"] + (["W_phi"] if forget else [])
    biases = ["b_out", "b_in"] + (["b_phi"] if forget else [])
    w = np.concatenate([np.repeat(params[g], rep, axis=-1) for g in gates]
                       + [params["W_c"]], axis=-1) * 0.5
    b = np.concatenate([np.repeat(params[g], rep, axis=-1) for g in biases]
                       + [np.zeros(params["b_in"].shape[:-1] + (c,))], axis=-1) * 0.5
    w = w.astype(dtype)
    return dict(Wx=w[:, :n_in], Wh=np.ascontiguousarray(w[:, n_in:]), b=b.astype(dtype),
                Wkx=params["W_k"][:, :n_in].astype(dtype),
                Wkh=np.ascontiguousarray(params["W_k"][:, n_in:].astype(dtype)),
                bk=params["b_k"].astype(dtype))


def unpack_grads(dwx, dwh, db, dkx, dkh, dbk, forget: bool, nb: int) -> dict:
    """Fused-column gradients (net units) -> gradients of the stacked params."""
    c = dwh.shape[-2]
    rep = c // nb
    dw = np.concatenate([dwx, dwh], axis=-2)  # rows [x; y^c]

    def fold(a):  # a gate column repeated for its block's cells: sum the copies
        return a.reshape(a.shape[:-1] + (nb, rep)).sum(-1)

    g = {"W_out": fold(dw[..., 0:c]), "b_out": fold(db[..., 0:c]),
         "W_in": fold(dw[..., c:2 * c]), "b_in": fold(db[..., c:2 * c])}
    if forget:
        g["W_phi"] = fold(dw[..., 2 * c:3 * c])
        g["b_phi"] = fold(db[..., 2 * c:3 * c])
    g["W_c"] = dw[..., -c:]
    g["W_k"] = np.concatenate([dkx, dkh], axis=-2)
    g["b_k"] = dbk
    return g


class Kernel:
    """Forward and BPTT for N stacked nets of one variant over one chunk of T steps.

    Arrays are time-major (T, N, B, .) so every per-step view is contiguous. All buffers are
    allocated once; the per-step loops make ~12 (forward) and ~8 (backward) numpy calls.
    """

    def __init__(self, n_nets, T, B, c, forget: bool, reset: bool, dtype,
                 truncated: bool = False, decay: float = 1.0):
        self.N, self.T, self.B, self.c = n_nets, T, B, c
        self.truncated = truncated
        self.decay = decay  # without forget gates: s_c(t) = decay s_c(t-1) + y^in g
        self.forget, self.reset, self.dtype = forget, reset, np.dtype(dtype)
        ng = 3 if forget else 2  # gates: o, i, (phi)
        self.ng, self.K = ng, c * (ng + 1)
        e = dict(dtype=self.dtype)
        N, K = n_nets, self.K
        self.Z = np.empty((T, N, B, K), **e)  # z = net / 2, all hidden units
        self.A = np.empty((T, N, B, K), **e)  # tanh z
        self.G = np.empty((T, N, B, ng * c), **e)  # gate activations f(net) = (1 + tanh z)/2
        self.U = np.empty((T + 1, N, B, c), **e)  # u = s_c / 2 (U[0]: carried in)
        self.Y = np.empty((T + 1, N, B, c), **e)  # y^c (Y[0]: carried in)
        self.Hh = np.empty((T, N, B, c), **e)  # h(s_c) = tanh(u)
        self.Um = np.empty((T, N, B, c), **e) if reset else None  # keep_t * u_{t-1}
        self.Ym = np.empty((T, N, B, c), **e) if reset else None  # keep_t * y^c_{t-1}
        self.tmp = np.empty((N, B, c), **e)
        self.dZ = np.empty((T, N, B, K), **e)
        self.dy = np.empty((N, B, c), **e)
        self.dyrec = np.empty((N, B, c), **e)
        self.du = np.empty((N, B, c), **e)
        self.dun = np.empty((N, B, c), **e)
        self.M = np.empty((T, N, B, ng, c), **e)  # du -> dz for [i, (phi), c]
        # constant state decay: the carry factor of the backward pass, filled once
        self.decay_carry = np.full((T, N, B, c), decay, **e) if decay != 1.0 else None

    # --- forward ------------------------------------------------------------------------
    def forward(self, pk, x, keep, u0, y0):
        """Run T steps. x: (T, N, B) symbols; keep: (T, N, B) 0/1 or None; u0, y0: (N, B, c)."""
        T, c, ng = self.T, self.c, self.ng
        Z, A, G, U, Y, Hh = self.Z, self.A, self.G, self.U, self.Y, self.Hh
        U[0] = u0
        Y[0] = y0
        # input contribution + bias for the whole chunk: one gather (x is one-hot)
        n_idx = np.arange(self.N)[None, :, None]
        Z0 = pk["Wx"][n_idx, x]
        Z0 += pk["b"][None, :, None, :]
        if self.reset:
            k = keep[..., None].astype(self.dtype)
            self.keepc = k
        Wh = pk["Wh"]
        for t in range(T):
            if self.reset:  # state zeroed before the first symbol of a string
                um, ym = self.Um[t], self.Ym[t]
                np.multiply(U[t], k[t], out=um)
                np.multiply(Y[t], k[t], out=ym)
            else:
                um, ym = U[t], Y[t]
            zt, at, gt = Z[t], A[t], G[t]
            np.matmul(ym, Wh, out=zt)  # net = W [x; y^c_{t-1}] (x part precomputed)
            zt += Z0[t]
            np.tanh(zt, out=at)
            np.multiply(at[..., :ng * c], 0.5, out=gt)  # y^out, y^in, y^phi = f(net)
            gt += 0.5
            ut = U[t + 1]
            np.multiply(gt[..., c:2 * c], at[..., ng * c:], out=ut)  # y^in g(net_c) / 2
            if self.forget:
                np.multiply(gt[..., 2 * c:3 * c], um, out=self.tmp)  # y^phi s_c(t-1) / 2
                ut += self.tmp
            elif self.decay != 1.0:
                np.multiply(um, self.decay, out=self.tmp)  # s_c(t) = 0.9 s_c(t-1) + y^in g
                ut += self.tmp
            else:
                ut += um  # s_c(t) = s_c(t-1) + y^in g   (no forget gate)
            np.tanh(ut, out=Hh[t])  # h(s_c) = tanh(s_c / 2)
            np.multiply(gt[..., 0:c], Hh[t], out=Y[t + 1])  # y^c = y^out h(s_c)
        # output units for the whole chunk: net_k = W_k [x; y^c_t] + b_k
        logits = np.matmul(Y[1:], pk["Wkh"])
        logits += pk["Wkx"][n_idx, x]
        logits += pk["bk"][None, :, None, :]
        return logits

    # --- backward -----------------------------------------------------------------------
    def backward(self, pk, x, dlogits):
        """BPTT through the chunk. dlogits: dL/dnet_k (T, N, B, n_out). Returns net-unit grads.

        The input and output counts come from pk["Wx"] (N, n_in, K) and dlogits."""
        T, c, ng, N, B = self.T, self.c, self.ng, self.N, self.B
        n_in, n_out = pk["Wx"].shape[-2], dlogits.shape[-1]
        A, G, Hh, dZ, M = self.A, self.G, self.Hh, self.dZ, self.M
        Yprev = self.Ym if self.reset else self.Y[:-1]
        Uprev = self.Um if self.reset else self.U[:-1]
        # output units: net_k = Wkh y^c + Wkx x + bk
        dYo = np.matmul(dlogits, np.swapaxes(pk["Wkh"], -1, -2))  # dL/dy^c from outputs
        # Per-step factors, vectorised over the chunk (tanh' = 1 - a^2; f' = (1 - a^2) / 2):
        D = 1.0 - A * A
        o = G[..., 0:c]
        hD = Hh * D[..., 0:c] * 0.5  # inverts y^c = y^out h: dz_out = dy^c h f'
        ohp = o * (1.0 - Hh * Hh)  # inverts h(s_c) = tanh(u): du = dy^c y^out h'
        ac = A[..., ng * c:]
        np.multiply(ac, D[..., c:2 * c], out=M[..., 0, :])  # inverts u += y^in g/2 (dz_in)
        M[..., 0, :] *= 0.5
        if self.forget:  # inverts u += y^phi u_{t-1}: dz_phi = du u_{t-1} f'
            np.multiply(Uprev, D[..., 2 * c:3 * c], out=M[..., 1, :])
            M[..., 1, :] *= 0.5
        np.multiply(G[..., c:2 * c], D[..., ng * c:], out=M[..., ng - 1, :])  # dz_c = du y^in g'
        if self.forget:
            carry = G[..., 2 * c:3 * c]  # du_{t-1} += du_t y^phi_t
        elif self.reset:
            carry = np.broadcast_to(self.keepc, (T, N, B, c))  # du_{t-1} += du_t keep_t
        elif self.decay_carry is not None:  # inverts u_t = decay u_{t-1} + ...
            carry = self.decay_carry  # du_{t-1} += du_t decay
        else:
            carry = None
        WhT = np.ascontiguousarray(np.swapaxes(pk["Wh"], -1, -2))
        dy, dyrec, du, dun = self.dy, self.dyrec, self.du, self.dun
        du4 = du[:, :, None, :]
        dun.fill(0.0)
        for t in range(T - 1, -1, -1):
            dzt = dZ[t]
            if t == T - 1:
                dy[...] = dYo[t]
            else:
                np.add(dYo[t], dyrec, out=dy)  # dy^c_t: output units + next step's nets
            np.multiply(dy, hD[t], out=dzt[..., 0:c])  # dz_out
            np.multiply(dy, ohp[t], out=du)  # du_t = dy^c y^out h' + du_{t+1} carry_{t+1}
            du += dun
            np.multiply(du4, M[t], out=dzt[..., c:].reshape(N, B, ng, c))  # dz_in, phi, c
            if carry is None:
                dun[...] = du
            else:
                np.multiply(du, carry[t], out=dun)
            if t > 0 and self.truncated:
                dyrec.fill(0.0)  # truncated gradient: cut the recurrent path
            elif t > 0:
                np.matmul(dzt, WhT, out=dyrec)  # inverts net = Wh y^c_{t-1}
                if self.reset:
                    dyrec *= self.keepc[t]  # inverts y^c_{t-1} -> keep_t y^c_{t-1}
        # weight gradients in net units (z = net / 2): one batched matmul each
        dnet = dZ.reshape(T, N, B, self.K).transpose(1, 0, 2, 3).reshape(N, T * B, self.K)
        dnet = dnet * 0.5
        yp = Yprev.transpose(1, 0, 2, 3).reshape(N, T * B, c)
        onehot = np.eye(n_in, dtype=self.dtype)[x.transpose(1, 0, 2).reshape(N, T * B)]
        dWh = np.matmul(np.swapaxes(yp, 1, 2), dnet)
        dWx = np.matmul(np.swapaxes(onehot, 1, 2), dnet)
        db = dnet.sum(1)
        dl = dlogits.transpose(1, 0, 2, 3).reshape(N, T * B, n_out)
        yc = self.Y[1:].transpose(1, 0, 2, 3).reshape(N, T * B, c)
        dKh = np.matmul(np.swapaxes(yc, 1, 2), dl)
        dKx = np.matmul(np.swapaxes(onehot, 1, 2), dl)
        dbk = dl.sum(1)
        return dWx, dWh, db, dKx, dKh, dbk


# ---------------------------------------------------------------------------------------
# Loss and the paper's error criterion
# ---------------------------------------------------------------------------------------
def output_loss(logits, target, kind: str):
    """Per-net loss (mean over steps, streams and the 7 outputs) and dL/dnet_k."""
    T, N, B, K = logits.shape
    y = 0.5 * (1.0 + np.tanh(0.5 * logits))  # y^k = f(net_k)
    if kind == "bce":
        per = np.logaddexp(0.0, logits) - target * logits
        dl = (y - target) / (T * B * K)
    else:  # the paper's squared error
        per = 0.5 * (y - target) ** 2
        dl = (y - target) * y * (1.0 - y) / (T * B * K)
    loss = per.sum(axis=(0, 2, 3)) / (T * B * K)
    return loss, dl, y


def step_errors(y, target):
    """A step is wrong iff any output's |y^k - t^k| >= 0.49 (the paper's threshold)."""
    return (np.abs(y - target) >= ERROR_THRESHOLD).any(axis=-1)


def _as_stack(batch, keep_needed):
    x = batch["x"][:, None]
    keep = batch["keep"][:, None] if keep_needed else None
    return x, batch["target"][:, None], keep, batch["u0"][None], batch["y0"][None]


def _single(params, batch, cfg, want_grads):
    forget = has_forget_gates(params)
    reset = batch["keep"] is not None
    decay = variant_flags(cfg.variants[0])[2]  # the variant, as in sample_batch
    stacked = {k: v[None] for k, v in params.items()}
    pk = pack(stacked, forget, np.float64)
    x, target, keep, u0, y0 = _as_stack(batch, reset)
    T, B = batch["x"].shape
    ker = Kernel(1, T, B, n_cells(cfg), forget, reset, np.float64, cfg.truncated, decay)
    logits = ker.forward(pk, x, keep, u0, y0)
    loss, dl, _y = output_loss(logits, target, cfg.loss)
    if not want_grads:
        return float(loss[0])
    g = unpack_grads(*ker.backward(pk, x, dl), forget, cfg.n_blocks)
    return float(loss[0]), {k: g[k][0] for k in params}


def loss(params: dict, batch: dict, cfg: Config) -> float:
    """Mean (over steps and streams) output loss of one net on one chunk."""
    return _single(params, batch, cfg, want_grads=False)


def loss_and_grads(params: dict, batch: dict, cfg: Config):
    """Loss and its full BPTT gradient over the chunk (carried-in state held fixed).

    With cfg.truncated (off by default) the paper's truncated gradient instead."""
    return _single(params, batch, cfg, want_grads=True)


def sample_batch(cfg: Config, rng, variant: str | None = None) -> dict:
    """One training chunk: `cfg.batch` streams x `cfg.chunk` steps, with a random carried state.

    The streams start part-way into the grammar (after a short burn-in walk), so chunks
    cross string boundaries; u0, y0 stand in for the state carried from the previous chunk.
    """
    variant = variant or cfg.variants[0]
    c = n_cells(cfg)
    edges = fresh_streams(rng, cfg.batch, cfg.chunk + 7)[7:]
    x, target, keep = stream_data(edges, variant == "reset")
    return dict(x=x, target=target, keep=keep,
                u0=rng.uniform(-1.0, 1.0, (cfg.batch, c)),
                y0=rng.uniform(-0.5, 0.5, (cfg.batch, c)))


GRADCHECK_CASES = [
    ("forget", Config(variants=("forget",), batch=3, chunk=12)),
    ("no_forget", Config(variants=("no_forget",), batch=3, chunk=12)),
    ("reset", Config(variants=("reset",), batch=3, chunk=12)),
    ("decay", Config(variants=("decay",), batch=3, chunk=12)),
    ("forget_mse", Config(variants=("forget",), batch=3, chunk=12, loss="mse")),
]


# ---------------------------------------------------------------------------------------
# Training: N nets of one variant (one per seed) stacked, Adam over truncated-BPTT chunks
# ---------------------------------------------------------------------------------------
def seed_rng(seed: int, *key) -> np.random.Generator:
    """Independent streams per seed: key (10 + v,) init of variant v, (100,) training data,
    (200, k) the k-th stop test, (300,) the confirmation test. Training data do not depend
    on the variant, so every variant of a seed trains on the same streams."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


class FlatParams:
    """Stacked params (N, P) float64 with named views, so Adam is a few calls per update."""

    def __init__(self, cfg: Config, variant: str, stacked: dict):
        # the order of param_shapes, the sizes of the arrays given (any input/output count)
        self.shapes = [(k, stacked[k].shape[1:]) for k, _s in param_shapes(cfg, variant)]
        self.n = next(iter(stacked.values())).shape[0]
        self.flat = np.concatenate([stacked[k].reshape(self.n, -1) for k, _s in self.shapes],
                                   axis=1)

    def views(self) -> dict:
        out, a = {}, 0
        for name, shape in self.shapes:
            b = a + int(np.prod(shape))
            out[name] = self.flat[:, a:b].reshape((self.n,) + shape)
            a = b
        return out

    def flatten(self, grads: dict):
        return np.concatenate([grads[k].reshape(self.n, -1) for k, _s in self.shapes], axis=1)


def lr_at(cfg: Config, symbols_since_decay_start):
    """lr until the decay starts, then geometric decay to lr_final over lr_decay_symbols."""
    frac = np.clip(symbols_since_decay_start / max(cfg.lr_decay_symbols, 1), 0.0, 1.0)
    return cfg.lr * (cfg.lr_final / cfg.lr) ** frac


def snapshot_points(cfg: Config) -> np.ndarray:
    """Training-symbol counts at which seed-0 snapshots are taken (0, then log-spaced)."""
    hi = np.log10(cfg.max_symbols)
    pts = np.unique(np.round(np.logspace(hi - 2.5, hi, cfg.n_snapshots - 1)).astype(np.int64))
    return np.concatenate([[0], pts])


def train_stack(cfg: Config, variant: str, seeds, log=None) -> list:
    """Train one net per seed (all of `variant`) in lock-step; return one record per seed.

    Per chunk: every stream restarts (zero state, new string) with prob. restart_p, the nets
    run `chunk` steps forward and back, Adam updates each net. A net with `clean_symbols`
    error-free training symbols in a row gets a stop test (10 fresh 100k-symbol streams);
    the first perfect one stops its training (the paper tests after every training stream).
    It is then confirmed on 10 further fresh streams. Nets that never pass train to the
    budget and are confirmed the same way.
    """
    seeds = list(seeds)
    N, T, B, c = len(seeds), cfg.chunk, cfg.batch, n_cells(cfg)
    forget, reset, decay = variant_flags(variant)
    dt = np.dtype(cfg.kernel_dtype)
    vi = VARIANTS.index(variant)
    inits = [init_params(cfg, seed_rng(s, 10 + vi), variant) for s in seeds]
    fp = FlatParams(cfg, variant, {k: np.stack([p[k] for p in inits]) for k in inits[0]})
    m1, m2 = np.zeros_like(fp.flat), np.zeros_like(fp.flat)
    rngs = [seed_rng(s, 100) for s in seeds]
    alive = list(range(N))  # indices (into seeds) of nets still training
    cur2 = np.full((N, B), 2 * TABLES["into_start"], dtype=np.int64)
    u0, y0 = np.zeros((N, B, c), dt), np.zeros((N, B, c), dt)
    ker = Kernel(N, T, B, c, forget, reset, dt, cfg.truncated, decay)
    snaps_at = snapshot_points(cfg)
    rec = [dict(seed=s, variant=variant, n_weights=n_weights(cfg, variant), solved=False,
                symbols_to_solve=None, stop_tests=[], curves=dict(symbols=[], loss=[],
                error_rate=[], lr=[]), snapshots=[], snapshot_symbols=[]) for s in seeds]
    streak = np.zeros(N, dtype=np.int64)  # error-free training symbols in a row
    err_avg = np.full(N, 1.0)  # running mean of the per-chunk error rate (steps with an error)
    decay_from = np.full(N, -1, dtype=np.int64)  # symbol count where the lr decay started
    last_test = np.full(N, -cfg.test_every_symbols, dtype=np.int64)
    win_err, win_sym, win_loss, win_n = np.zeros(N), 0, np.zeros(N), 0
    erred = np.zeros((N, B), dtype=bool)  # streams with an error in the last chunk
    symbols, step, t_start, t_log = 0, 0, time.perf_counter(), time.perf_counter()
    c_start = time.process_time()
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def take_snapshots(idx):
        views = fp.views()
        for j in idx:
            rec[alive[j]]["snapshots"].append(
                np.concatenate([views[k][j].ravel() for k, _s in fp.shapes]))
            rec[alive[j]]["snapshot_symbols"].append(symbols)

    def finish(j_local, solved):
        n = alive[j_local]
        r = rec[n]
        r["solved"] = bool(solved)
        r["symbols_to_solve"] = int(symbols) if solved else None
        r["training_symbols"] = int(symbols)
        r["lr_decay_start_symbols"] = int(decay_from[j_local]) if decay_from[j_local] >= 0 \
            else None
        views = fp.views()
        r["final_params"] = {k: views[k][j_local].copy() for k, _s in fp.shapes}
        while len(r["snapshot_symbols"]) < len(snaps_at):  # frozen from here on
            r["snapshots"].append(np.concatenate([views[k][j_local].ravel()
                                                  for k, _s in fp.shapes]))
            r["snapshot_symbols"].append(int(snaps_at[len(r["snapshot_symbols"])]))

    def drop(keep_local):
        nonlocal fp, m1, m2, cur2, u0, y0, ker, streak, last_test, win_err, win_loss, alive
        nonlocal err_avg, decay_from, erred
        keep_local = np.asarray(keep_local, dtype=np.int64)
        if keep_local.size == 0:
            alive = []
            return
        views = fp.views()
        fp = FlatParams(cfg, variant, {k: views[k][keep_local] for k, _s in fp.shapes})
        m1, m2 = m1[keep_local], m2[keep_local]
        cur2, u0, y0 = cur2[keep_local], u0[keep_local], y0[keep_local]
        streak, last_test = streak[keep_local], last_test[keep_local]
        err_avg, decay_from = err_avg[keep_local], decay_from[keep_local]
        erred = erred[keep_local]
        win_err, win_loss = win_err[keep_local], win_loss[keep_local]
        alive = [alive[j] for j in keep_local]
        ker = Kernel(len(alive), T, B, c, forget, reset, dt, cfg.truncated, decay)

    take_snapshots(range(N))
    while alive and symbols < cfg.max_symbols:
        n_alive = len(alive)
        # --- data: restarts, then the automaton walk for every stream of every net
        coins = np.empty((T, n_alive, B), dtype=np.int64)
        for j, n in enumerate(alive):
            restart = rngs[n].random(B) < cfg.restart_p
            coins[:, j] = rngs[n].integers(0, 2, size=(T, B))
            if step == 0:
                restart[:] = True
            if cfg.restart_on_error:
                restart |= erred[j]
            cur2[j, restart] = 2 * TABLES["into_start"]
            u0[j, restart] = 0.0
            y0[j, restart] = 0.0
        flat_cur = cur2.reshape(-1)
        edges = walk(flat_cur, coins.reshape(T, -1)).reshape(T, n_alive, B)
        cur2 = flat_cur.reshape(n_alive, B)
        x = TABLES["sym"][edges]
        target = TABLES["legal"][edges].astype(dt)
        keep = (~TABLES["starts"][edges]) if reset else None
        # --- forward, loss, errors, backward
        pk = pack(fp.views(), forget, dt)
        logits = ker.forward(pk, x, keep, u0, y0)
        loss_v, dl, y = output_loss(logits, target, cfg.loss)
        wrong = step_errors(y, target)
        errs = wrong.sum(axis=(0, 2))
        if cfg.restart_on_error:
            erred = wrong.any(axis=0)
        grads = fp.flatten(unpack_grads(*ker.backward(pk, x, dl), forget, cfg.n_blocks))
        if not (np.isfinite(grads).all() and np.isfinite(loss_v).all()):
            raise FloatingPointError(
                f"non-finite loss/gradient at step {step} (seeds {[seeds[n] for n in alive]})")
        # --- update (Adam, or plain gradient descent)
        err_avg = 0.95 * err_avg + 0.05 * errs / (T * B)
        decay_from = np.where((decay_from < 0) & (err_avg < cfg.decay_after_error), symbols,
                              decay_from)
        lr = lr_at(cfg, np.where(decay_from < 0, 0, symbols - decay_from))[:, None]
        if cfg.optimizer == "adam":
            m1 *= beta1
            m1 += (1 - beta1) * grads
            m2 *= beta2
            m2 += (1 - beta2) * grads * grads
            k = step + 1
            a = lr * np.sqrt(1 - beta2 ** k) / (1 - beta1 ** k)
            fp.flat -= a * m1 / (np.sqrt(m2) + eps)
        else:
            fp.flat -= lr * grads
        u0, y0 = ker.U[T].copy(), ker.Y[T].copy()
        step += 1
        symbols += T * B
        # --- bookkeeping: curves, snapshots, progress
        streak = np.where(errs == 0, streak + T * B, 0)
        win_err += errs
        win_sym += T * B
        win_loss += loss_v
        win_n += 1
        if symbols // cfg.log_every_symbols != (symbols - T * B) // cfg.log_every_symbols:
            for j, n in enumerate(alive):
                cv = rec[n]["curves"]
                cv["symbols"].append(int(symbols))
                cv["loss"].append(float(win_loss[j] / win_n))
                cv["error_rate"].append(float(win_err[j] / win_sym))
                cv["lr"].append(float(lr[j, 0]))
            win_err[:], win_sym, win_loss[:], win_n = 0.0, 0, 0.0, 0
        while (len(rec[alive[0]]["snapshot_symbols"]) < len(snaps_at)
               and symbols >= snaps_at[len(rec[alive[0]]["snapshot_symbols"])]):
            take_snapshots(range(n_alive))
        if log is not None and time.perf_counter() - t_log > 10.0:
            t_log = time.perf_counter()
            el = t_log - t_start
            log(f"[{variant} seeds {[seeds[n] for n in alive]}] step {step} symbols "
                f"{symbols / 1e6:.1f}M loss {np.round(loss_v, 4).tolist()} err/chunk "
                f"{errs.tolist()} lr {np.round(lr[:, 0], 4).tolist()} "
                f"{sum(r.get('training_symbols', symbols) for r in rec) / el / 1e3:.0f}k sym/s "
                f"elapsed {el:.0f}s")
        # --- stop tests for nets with a long error-free training streak
        due = np.flatnonzero((streak >= cfg.clean_symbols)
                             & (symbols - last_test >= cfg.test_every_symbols))
        if due.size:
            last_test[due] = symbols
            sub = {k: v[due] for k, v in fp.views().items()}
            keys = [(seeds[alive[j]], 200, len(rec[alive[j]]["stop_tests"])) for j in due]
            ev = evaluate(cfg, variant, sub, keys, early_exit=True)
            passed = []
            for i, j in enumerate(due):
                r = rec[alive[j]]
                r["stop_tests"].append(dict(symbols=int(symbols),
                                            errors=int(ev["errors"][i].sum()),
                                            first_error=int(ev["first_error"][i].min())))
                if ev["perfect"][i]:
                    passed.append(j)
                elif log is not None:
                    log(f"[{variant}] seed {seeds[alive[j]]} stop test at {symbols / 1e6:.2f}M: "
                        f"first error at {int(ev['first_error'][i].min())}")
            if passed:
                for j in passed:
                    finish(j, True)
                    if log is not None:
                        log(f"[{variant}] seed {seeds[alive[j]]} PERFECT after "
                            f"{symbols / 1e6:.2f}M symbols")
                drop([j for j in range(n_alive) if j not in passed])
    for j in range(len(alive)):
        finish(j, False)
    wall = time.perf_counter() - t_start
    total_symbols = sum(r["training_symbols"] for r in rec)
    # --- confirmation on 10 further fresh streams (the same streams for every variant)
    stacked = {k: np.stack([r["final_params"][k] for r in rec]) for k, _s in fp.shapes}
    ev = evaluate(cfg, variant, stacked, [(s, 300) for s in seeds], early_exit=False)
    for i, r in enumerate(rec):
        efl = ev["first_error"][i]
        r["confirm"] = dict(perfect=bool(ev["perfect"][i]), errors=int(ev["errors"][i].sum()),
                            error_free_lengths=[int(v) for v in efl],
                            mean_error_free_length=float(efl.mean()),
                            state_norm_steps=[int(v) for v in ev["norm_steps"]],
                            state_norm=[float(v) for v in ev["norm"][i]])
        r["wall_s"] = wall / N
        r["cpu_time_s"] = (time.process_time() - c_start) / N  # this stack's CPU, per net
        r["symbols_per_s"] = total_symbols / max(wall, 1e-9)
        r["snapshots"] = np.stack(r["snapshots"])
        r["snapshot_symbols"] = [int(v) for v in r["snapshot_symbols"]]
    return rec


# ---------------------------------------------------------------------------------------
# Evaluation: 10 streams x 100,000 symbols from the start, batched, no resets but `reset`'s
# ---------------------------------------------------------------------------------------
def evaluate(cfg: Config, variant: str, stacked: dict, keys, early_exit: bool) -> dict:
    """Run each stacked net on its own fresh test streams (rng keys[n]) in blocks.

    Returns per net and stream: first_error (steps before the first error = error-free
    length; test_len if none), errors (count; only exact when early_exit is False),
    perfect, and the mean over streams of |s_c| (L2 over the cells) at log-spaced steps.
    early_exit stops once every net has erred (a stop test only asks "perfect or not").
    """
    N, S, L, Lb, c = len(keys), cfg.test_streams, cfg.test_len, cfg.test_block, n_cells(cfg)
    (forget, reset, decay), dt = variant_flags(variant), np.dtype(cfg.kernel_dtype)
    rngs = [seed_rng(*k) for k in keys]
    pk = pack(stacked, forget, dt)
    ker = Kernel(N, Lb, S, c, forget, reset, dt, decay=decay)
    cur2 = np.full(N * S, 2 * TABLES["into_start"], dtype=np.int64)
    u0, y0 = np.zeros((N, S, c), dt), np.zeros((N, S, c), dt)
    first = np.full((N, S), L, dtype=np.int64)
    errors = np.zeros((N, S), dtype=np.int64)
    norm_steps = np.unique(np.round(np.logspace(0, np.log10(L), 60)).astype(np.int64))
    norm = np.zeros((N, norm_steps.size))
    for start in range(0, L, Lb):
        coins = np.stack([r.integers(0, 2, size=(Lb, S)) for r in rngs], axis=1)
        edges = walk(cur2, coins.reshape(Lb, -1)).reshape(Lb, N, S)
        x = TABLES["sym"][edges]
        target = TABLES["legal"][edges]
        keep = (~TABLES["starts"][edges]) if reset else None
        logits = ker.forward(pk, x, keep, u0, y0)
        wrong = step_errors(0.5 * (1.0 + np.tanh(0.5 * logits)), target)  # (Lb, N, S)
        errors += wrong.sum(0)
        any_wrong = wrong.any(0)
        pos = np.argmax(wrong, axis=0) + start
        first = np.where(any_wrong & (first == L), pos, first)
        sel = (norm_steps > start) & (norm_steps <= start + Lb)
        if sel.any():  # |s_c| after step n (1-based), s_c = 2u
            u = ker.U[norm_steps[sel] - start]
            norm[:, sel] = (2.0 * np.sqrt((u.astype(np.float64) ** 2).sum(-1))).mean(-1).T
        u0, y0 = ker.U[Lb].copy(), ker.Y[Lb].copy()
        if early_exit and (first < L).any(axis=1).all():
            norm[:, norm_steps > start + Lb] = np.nan
            break
    return dict(first_error=first, errors=errors, perfect=(first == L).all(axis=1),
                norm_steps=norm_steps, norm=norm)


def train(cfg: Config, seed: int, log=None) -> dict:
    """One seed: every variant in cfg.variants trained on the same streams; one record each."""
    return dict(seed=int(seed),
                variants={v: train_stack(cfg, v, [seed], log)[0] for v in cfg.variants})


def unflatten(cfg: Config, variant: str, flat) -> dict:
    """A flat parameter vector (as saved in run.npz) -> the params dict of one net."""
    out, a = {}, 0
    for name, shape in param_shapes(cfg, variant):
        b = a + int(np.prod(shape))
        out[name] = np.asarray(flat[a:b], dtype=np.float64).reshape(shape)
        a = b
    return out


def trace(params: dict, cfg: Config, edges, reset: bool, decay: float = 1.0) -> dict:
    """Run one net (float64) over streams edges (L, S) from zero state; return every signal.

    For the figures: outputs y^k (L, S, 7), targets, gates y^in/y^phi/y^out per block
    (L, S, n_blocks), cell states s_c (L, S, cells).
    """
    forget = has_forget_gates(params)
    L, S = edges.shape
    x, target, keep = stream_data(edges, reset)
    c = n_cells(cfg)
    ker = Kernel(1, L, S, c, forget, reset, np.float64, decay=decay)
    pk = pack({k: v[None] for k, v in params.items()}, forget, np.float64)
    zeros = np.zeros((1, S, c))
    logits = ker.forward(pk, x[:, None], None if keep is None else keep[:, None], zeros, zeros)
    g = ker.G[:, 0, :, ::cfg.cells_per_block]  # one column per block
    nb = cfg.n_blocks
    return dict(x=x, target=target, y=0.5 * (1 + np.tanh(0.5 * logits[:, 0])),
                y_out=g[..., 0:nb], y_in=g[..., nb:2 * nb],
                y_phi=g[..., 2 * nb:3 * nb] if forget else np.ones_like(g[..., 0:nb]),
                s=2.0 * ker.U[1:, 0], starts=TABLES["starts"][edges])


# ---------------------------------------------------------------------------------------
# Results: summary over seeds, README table, catalog cell
# ---------------------------------------------------------------------------------------
PAPER_TABLE2 = {  # % perfect (mean training streams to perfect), % good <mean error-free len>
    "reset": dict(row="standard LSTM with external reset", perfect_pct=74,
                  streams_to_perfect=7441, good_pct=0),
    "no_forget": dict(row="standard LSTM, no reset", perfect_pct=0, good_pct=1,
                      mean_error_free_length_good=1166, note="nets end at ~37 symbols"),
    "decay": dict(row="standard LSTM, state decay 0.9", perfect_pct=0, good_pct=0),
    "forget": dict(row="LSTM with forget gates", perfect_pct=18, streams_to_perfect=18889,
                   good_pct=29, mean_error_free_length_good=39171),
    "forget_lr_decay": dict(row="LSTM with forget gates, sequential alpha decay",
                            perfect_pct=62, streams_to_perfect=14087, good_pct=6,
                            mean_error_free_length_good=68464),
}
# Table 2 row of each paper-scheme row and of each modern variant
PAPER_ROW_OF = {"reset": "reset", "no_forget": "no_forget", "decay": "decay",
                "forget": "forget", "forget_alpha_a": "forget_lr_decay",
                "forget_alpha_b": "forget_lr_decay", "forget_decay": "forget_lr_decay"}
ROW_LABEL = {"reset": "external reset (`reset`)", "no_forget": "no reset (`no_forget`)",
             "decay": "state decay 0.9 (`decay`)", "forget": "forget gates (`forget`)",
             "forget_alpha_a": "forget gates + α decay (a) (`forget_alpha_a`)",
             "forget_alpha_b": "forget gates + α decay (b) (`forget_alpha_b`)"}
GOOD_LENGTH = 1000  # the paper's "good": mean error-free length > 1000 (and not perfect)


def _stat(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return dict(median=None, min=None, max=None, values=list(values))
    arr = np.asarray(vals, dtype=np.float64)
    return dict(median=float(np.median(arr)), min=float(arr.min()), max=float(arr.max()),
                mean=float(arr.mean()), values=list(values))


def wilson(k: int, n: int, z: float = 1.96) -> tuple:
    """95% Wilson score interval of a proportion k/n, as fractions."""
    if n == 0:
        return (None, None)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (float(max(0.0, mid - half)), float(min(1.0, mid + half)))


def record_order(results: dict) -> list:
    """The variant / row names of a run, in canonical order."""
    names = PAPER_ROWS + tuple(v for v in VARIANTS if v not in PAPER_ROWS)
    if results.get("preset") == "paper":
        names = PAPER_ROWS + ("forget_decay",)
    seen = {r["variant"] for r in results["seeds"]}
    return [v for v in names if v in seen]


def summarize_modern(records: list, cfg: dict) -> dict:
    out = {}
    per_update = cfg["chunk"] * cfg["batch"]
    for v in VARIANTS:
        rs = [r for r in records if r["variant"] == v]
        if not rs:
            continue
        out[v] = dict(
            n_seeds=len(rs), solved=sum(r["solved"] for r in rs),
            n_runs=len(rs), runs_solved=sum(r["solved"] for r in rs),  # one run per seed
            confirmed_perfect=sum(r["confirm"]["perfect"] for r in rs),
            good=sum(r["confirm"]["mean_error_free_length"] > GOOD_LENGTH for r in rs),
            symbols_total=int(sum(r["training_symbols"] for r in rs)),
            updates_total=int(sum(r["training_symbols"] for r in rs) // per_update),
            symbols_to_solve=_stat([r["symbols_to_solve"] for r in rs]),
            confirm_errors=_stat([r["confirm"]["errors"] for r in rs]),
            mean_error_free_length=_stat([r["confirm"]["mean_error_free_length"] for r in rs]),
            min_error_free_length=_stat([min(r["confirm"]["error_free_lengths"]) for r in rs]),
            state_norm_end=_stat([r["confirm"]["state_norm"][-1] for r in rs]),
            training_symbols=_stat([r["training_symbols"] for r in rs]),
        )
    return out


def summarize_paper(records: list, cfg: dict) -> dict:
    """Table 2's columns per row: perfect = a perfect test within the stream budget (each net
    is one run); good = not perfect, mean error-free length on its confirmation streams >
    1000; rest = the others; nets stopped by the symbol cap listed with their streams."""
    out = {}
    for row in PAPER_ROWS + ("forget_decay",):
        rs = [r for r in records if r["variant"] == row]
        if not rs:
            continue
        n = len(rs)
        perfect = [r for r in rs if r["solved"]]
        efl = [r["confirm"]["mean_error_free_length"] for r in rs]
        good = [r for r, e in zip(rs, efl, strict=True) if not r["solved"] and e > GOOD_LENGTH]
        rest = [r for r, e in zip(rs, efl, strict=True)
                if not r["solved"] and e <= GOOD_LENGTH]
        capped = [r for r in rs if r["stopped_by_symbol_cap"]]
        out[row] = dict(
            n_seeds=n, solved=len(perfect), n_runs=n, runs_solved=len(perfect),
            solved_ci95=wilson(len(perfect), n),
            confirmed_perfect=sum(r["confirm"]["perfect"] for r in rs),
            confirmed_of_solved=sum(r["confirm"]["perfect"] for r in perfect),
            good=len(good), good_ci95=wilson(len(good), n),
            rest=len(rest), rest_ci95=wilson(len(rest), n),
            streams_total=int(sum(r["training_streams"] for r in rs)),
            symbols_total=int(sum(r["training_symbols"] for r in rs)),
            updates_total=int(sum(r["training_symbols"] for r in rs)),  # one per symbol
            stopped_by_symbol_cap=len(capped),
            capped_nets=[dict(seed=r["seed"], training_streams=r["training_streams"],
                              training_symbols=r["training_symbols"]) for r in capped],
            streams_to_solve=_stat([r["streams_to_solve"] for r in rs]),
            symbols_to_solve=_stat([r["symbols_to_solve"] for r in rs]),
            mean_error_free_length=_stat(efl),
            good_mean_error_free_length=float(np.mean([r["confirm"]["mean_error_free_length"]
                                                       for r in good])) if good else None,
            rest_mean_error_free_length=float(np.mean([r["confirm"]["mean_error_free_length"]
                                                       for r in rest])) if rest else None,
            training_streams=_stat([r["training_streams"] for r in rs]),
            training_symbols=_stat([r["training_symbols"] for r in rs]),
            cpu_time_s=_stat([r.get("cpu_time_s") for r in rs]),
        )
    return out


def finalize_results(results: dict) -> dict:
    """Sort the records canonically and recompute the summary from them (and the config)."""
    order = {v: i for i, v in enumerate(PAPER_ROWS + VARIANTS + ("forget_decay",))}
    results["seeds"] = sorted(results["seeds"], key=lambda r: (order[r["variant"]], r["seed"]))
    if results.get("preset") == "paper":
        results["summary"] = summarize_paper(results["seeds"], results["config"])
    else:
        results["summary"] = summarize_modern(results["seeds"], results["config"])
    return results


def summarize(records: list) -> dict:
    """The modern summary of bare records (kept for the side-run drivers)."""
    return summarize_modern(records, dataclasses.asdict(PRESETS["modern"]))


def _fmt(x, unit=""):
    if x is None:
        return "–"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f}M{unit}"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.0f}k{unit}"
    return f"{x:.0f}{unit}" if abs(x) >= 10 or x == int(x) else f"{x:.2g}{unit}"


def _mmm(stat):
    if stat["median"] is None:
        return "–"
    return f"{_fmt(stat['median'])} ({_fmt(stat['min'])}–{_fmt(stat['max'])})"


def _pct(k, n, ci):
    lo, hi = ci
    return f"{100 * k / n:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}]"


def _paper_run(paper_runs):
    run = (paper_runs or {}).get("paper")
    return run if run and run.get("summary") else None


def results_table(results: dict, paper_runs=None) -> str:
    """The README table: per Table 2 row, the paper's % perfect, ours under the paper's
    scheme (`paper/`, one run per net) and ours under the modern scheme (this run; one run
    per seed, so the per-run rate equals the per-seed rate)."""
    s = results["summary"]
    pr = _paper_run(paper_runs)
    ps = pr["summary"] if pr else {}
    rows = ["| Table 2 row | paper: % perfect | ours, paper's scheme: perfect per net (= per "
            "run) [95% CI]; confirmed | ours, modern: perfect per seed (per run); confirmed "
            "| modern: training symbols to perfect, median (min–max) |",
            "|---|---|---|---|---|"]
    for row in PAPER_ROWS:
        ref = PAPER_TABLE2[PAPER_ROW_OF[row]]
        if pr is None:
            ours_p = "not run"
        elif row in ps:
            d = ps[row]
            pct = _pct(d["solved"], d["n_seeds"], d["solved_ci95"])
            ours_p = f"{d['solved']}/{d['n_seeds']} {pct}; {d['confirmed_of_solved']}"
        else:
            ours_p = "–"
        if row in s:
            d = s[row]
            ours_m = (f"{d['solved']}/{d['n_seeds']} ({d['runs_solved']}/{d['n_runs']}); "
                      f"{d['confirmed_perfect']}")
            extra = _mmm(d["symbols_to_solve"])
        else:
            ours_m, extra = "–", "–"
        rows.append(f"| {ROW_LABEL[row]} | {ref['perfect_pct']}% | {ours_p} | {ours_m} | "
                    f"{extra} |")
    return "\n".join(rows)


def paper_table(paper_results: dict) -> str:
    """Table 2's own columns for a paper-scheme run: % perfect (mean training streams),
    % good <mean error-free length>, % rest <mean length>, 95% intervals, confirmed counts,
    nets stopped by the symbol cap."""
    s = paper_results["summary"]
    lines = ["| row | paper: % perfect (mean streams) | paper: % good ⟨mean length⟩ | ours: % "
             "perfect [95% CI] (mean training streams) | ours: % good [95% CI] ⟨mean "
             "error-free length⟩ | ours: % rest [95% CI] ⟨mean length⟩ | perfect nets "
             "confirmed on 10 fresh streams | stopped by the symbol cap (streams) |",
             "|---|---|---|---|---|---|---|---|"]
    for row, d in s.items():
        ref = PAPER_TABLE2[PAPER_ROW_OF[row]]
        n = d["n_seeds"]
        ref_p = f"{ref['perfect_pct']}" + (f" ({ref['streams_to_perfect']:,})"
                                           if "streams_to_perfect" in ref else "")
        ref_g = f"{ref['good_pct']}" + (f" ⟨{ref['mean_error_free_length_good']:,}⟩"
                                        if "mean_error_free_length_good" in ref else "")
        mst = d["streams_to_solve"].get("mean")
        p = _pct(d["solved"], n, d["solved_ci95"]) + (f" ({mst:,.0f})" if mst else "")
        g = _pct(d["good"], n, d["good_ci95"]) + (
            f" ⟨{d['good_mean_error_free_length']:,.0f}⟩" if d["good"] else "")
        r = _pct(d["rest"], n, d["rest_ci95"]) + (
            f" ⟨{d['rest_mean_error_free_length']:,.0f}⟩" if d["rest"] else "")
        capped = ", ".join(f"seed {c['seed']} ({c['training_streams']:,})"
                           for c in d["capped_nets"]) or "none"
        lines.append(f"| {ROW_LABEL.get(row, row)} | {ref_p} | {ref_g} | {p} | {g} | {r} | "
                     f"{d['confirmed_of_solved']}/{d['solved']} | {capped} |")
    return "\n".join(lines)


def headline(results: dict, paper_runs=None) -> str:
    """The catalog cell: the paper's % perfect, ours under the paper's scheme, ours modern;
    beside committed runs (paper_runs given) also the committed Table 3 runs of cnto.py. A
    fresh run rendered alone (paper_runs None) gets no Table 3 part: cnto.py's runs have
    their own cells."""
    s = results["summary"]
    pr = _paper_run(paper_runs)
    if pr is None:
        paper_part = "paper's scheme: not run"
    else:
        ps = pr["summary"]
        paper_part = "paper's scheme (per net = per run): " + ", ".join(
            f"{row} {d['solved']}/{d['n_seeds']} "
            f"(paper {PAPER_TABLE2[PAPER_ROW_OF[row]]['perfect_pct']}%)"
            for row, d in ps.items())
    modern = ", ".join(
        f"{v} {s[v]['solved']}/{s[v]['n_seeds']} per seed, {s[v]['runs_solved']}/"
        f"{s[v]['n_runs']} per run (paper {PAPER_TABLE2[v]['perfect_pct']}%)"
        for v in VARIANTS if v in s)
    table3 = "" if paper_runs is None else cnto_headline(HERE / "cnto")
    return f"perfect on 10 x 100k symbols: {paper_part}; modern: {modern}{table3}"


def cnto_headline(cnto_dir: Path) -> str:
    """The catalog's Table 3 part: continual noisy temporal order per committed run of
    cnto.py (`cnto/` modern, `cnto/paper/` paper's scheme), perfect nets per row."""
    parts = []
    for sub, label in ((cnto_dir / "paper", "paper's scheme"), (cnto_dir, "modern")):
        f = sub / "results.json"
        if f.is_file():
            s = json.loads(f.read_text())["summary"]
            parts.append(f"{label}: " + ", ".join(f"{v} {d['runs_solved']}/{d['n_runs']}"
                                                  for v, d in s.items()))
    if not parts:
        return ""
    return "; Table 3 (noisy temporal order, paper: only forget gates solve it), " + \
        "; ".join(parts)


def overview(results: dict, paper_runs=None) -> list:
    """Rows for viz/overview.png: per Table 2 row, success rates in [0, 1]."""
    s = results["summary"]
    pr = _paper_run(paper_runs)
    ps = pr["summary"] if pr else {}
    out = []
    for row in PAPER_ROWS:
        ref = PAPER_TABLE2[PAPER_ROW_OF[row]]
        out.append(dict(
            label=f"CERG {row}", paper=ref["perfect_pct"] / 100,
            ours_paper=ps[row]["solved"] / ps[row]["n_seeds"] if row in ps else None,
            ours_modern=s[row]["solved"] / s[row]["n_seeds"] if row in s else None))
    return out


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
def parse_seeds(text: str) -> list:
    try:
        if "-" in text.strip()[1:] and "," not in text:
            a, b = text.split("-", 1)
            lo, hi = int(a), int(b)
            if lo < 0 or hi < lo:
                raise ValueError
            return list(range(lo, hi + 1))
        seeds = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad seed list {text!r} (use 3, 0,2,5 or 0-9)") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"bad seed list {text!r} (non-negative, distinct)")
    return seeds


def _positive(kind):
    def conv(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
        return v
    return conv


def _prob(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1]: {text!r}")
    return v


def _variants(text):
    vs = tuple(t.strip() for t in text.split(","))
    bad = [v for v in vs if v not in VARIANTS + PAPER_ROWS]
    if bad or not vs or len(set(vs)) != len(vs):
        raise argparse.ArgumentTypeError(f"unknown or repeated variants: {text!r}")
    return vs


class _HelpFormatter(argparse.HelpFormatter):
    """Shows a flag's one default ("(default: X)") unless it has none or says it itself."""

    def _get_help_string(self, action):
        h = action.help or ""
        if "default" in h or action.default in (None, False, argparse.SUPPRESS):
            return h
        return h + " (default: %(default)s)"


def build_parser():
    ap = argparse.ArgumentParser(
        description="Continual embedded Reber grammar (Gers et al. 2000, Table 2).",
        formatter_class=_HelpFormatter)
    ap.add_argument("--preset", choices=("paper", "modern", "quick"), default="modern",
                    help="paper = the paper's online scheme (Table 2's rows), modern = Adam "
                         "over BPTT chunks (the folder-root headline), quick = seconds")
    ap.add_argument("--seeds", type=parse_seeds, default="0-9",
                    help="seeds: 3 (seed 3), 0,2,5 (a list) or 0-9 (a range)")
    ap.add_argument("--jobs", type=_positive(int), default=os.cpu_count() or 1,
                    help="parallel worker processes")
    ap.add_argument("--stack", type=_positive(int), default=5,
                    help="modern/quick: nets (seeds of one variant) trained in lock-step per "
                         "process task")
    ap.add_argument("--outdir", default=None,
                    help=f"where results.json and run.npz go (default: "
                         f"runs/{FOLDER}/ at the repo root, git-ignored; the committed runs "
                         f"are written only with --outdir {FOLDER} or {FOLDER}/paper)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--variants", type=_variants, default=None,
                    help="modern/quick: comma list from forget,no_forget,reset,decay; paper: "
                         "from " + ",".join(PAPER_ROWS) + " (default: the preset's)")
    ap.add_argument("--lr", type=_positive(float), default=None,
                    help="initial learning rate (paper: alpha) (default: the preset's)")
    ap.add_argument("--lr-final", type=_positive(float), default=None,
                    help="modern: learning rate after the decay (default: the preset's)")
    ap.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                    help="modern: adam, or sgd = plain gradient descent on chunk means "
                         "(default: the preset's)")
    ap.add_argument("--batch", type=_positive(int), default=None,
                    help="modern: parallel training streams per net (default: the preset's)")
    ap.add_argument("--chunk", type=_positive(int), default=None,
                    help="modern: truncated-BPTT chunk length (default: the preset's)")
    ap.add_argument("--max-symbols", type=_positive(int), default=None,
                    help="training budget (cap) per net in symbols (default: the preset's)")
    ap.add_argument("--max-streams", type=_positive(int), default=None,
                    help="paper: training streams per net (default: the preset's, 30,000)")
    ap.add_argument("--restart-p", type=_prob, default=None,
                    help="modern: per stream per chunk restart probability (default: the "
                         "preset's)")
    ap.add_argument("--restart-on-error", action="store_true",
                    help="modern: also restart (zero state, new string) every training "
                         "stream that made an error in the last chunk")
    ap.add_argument("--truncated", action="store_true",
                    help="modern: train with the 1997/2000 truncated gradient (error flows "
                         "back in time only through the cell states, not the recurrent "
                         "weights; the paper preset always does)")
    ap.add_argument("--loss", choices=("bce", "mse"), default=None,
                    help="modern: output loss (default: the preset's)")
    ap.add_argument("--test-len", type=_positive(int), default=None,
                    help="symbols per test stream (default: the preset's)")
    ap.add_argument("--checkpoint-every", type=_positive(float), default=600.0,
                    help="paper: seconds between checkpoints (outdir/checkpoint_*.pkl; a "
                         "rerun with the same arguments resumes from them)")
    return ap


MODERN_ONLY = ("lr_final", "optimizer", "batch", "chunk", "restart_p", "loss")


def config_from_args(ap, args):
    if args.preset == "paper":
        used = [k for k in MODERN_ONLY if getattr(args, k) is not None]
        used += [k for k in ("restart_on_error", "truncated") if getattr(args, k)]
        if used:
            ap.error(f"--{used[0].replace('_', '-')} is not a flag of the paper preset")
        if args.variants and any(v not in PAPER_ROWS for v in args.variants):
            ap.error(f"--variants of the paper preset: from {', '.join(PAPER_ROWS)}")
        over = dict(rows=args.variants, lr=args.lr, max_symbols=args.max_symbols,
                    max_streams=args.max_streams, test_len=args.test_len)
        return dataclasses.replace(PRESETS["paper"],
                                   **{k: v for k, v in over.items() if v is not None})
    if args.max_streams is not None:
        ap.error("--max-streams is a flag of the paper preset")
    if args.variants and any(v not in VARIANTS for v in args.variants):
        ap.error(f"--variants: from {', '.join(VARIANTS)}")
    over = dict(variants=args.variants, lr=args.lr, lr_final=args.lr_final,
                optimizer=args.optimizer, batch=args.batch, chunk=args.chunk,
                max_symbols=args.max_symbols, restart_p=args.restart_p, loss=args.loss,
                test_len=args.test_len, restart_on_error=args.restart_on_error or None,
                truncated=args.truncated or None)
    cfg = dataclasses.replace(PRESETS[args.preset],
                              **{k: v for k, v in over.items() if v is not None})
    if cfg.lr_final > cfg.lr:
        ap.error("--lr-final must not exceed --lr")
    return cfg


def check_outdir(ap, outdir: Path):
    """Create the outdir and write a probe file before any training (exit 2 if impossible)."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=outdir, prefix=".probe", delete=True) as f:
            f.write(b"ok")
    except OSError as e:
        ap.error(f"cannot write to --outdir {outdir}: {e.strerror or e}")


def _ignore_sigint():
    """Pool initializer: workers leave Ctrl-C to the parent, which terminates them (with
    SIGTERM: the default action, not the parent's handler inherited by the fork)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def _run_task(task):
    cfg, variant, seeds, quiet = task
    log = None if quiet else (lambda s: print(s, flush=True))
    return train_stack(cfg, variant, seeds, log)


def run_tasks(fn, tasks, jobs: int) -> list:
    """fn over tasks, in `jobs` forked worker processes (or in this one). SIGTERM to this
    process (`kill PID`) stops it like Ctrl-C, workers included."""
    old_term = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        if jobs == 1 or len(tasks) == 1:
            return [fn(t) for t in tasks]
        pool = mp.get_context("fork").Pool(min(jobs, len(tasks)), initializer=_ignore_sigint)
        try:
            outs = pool.map(fn, tasks, chunksize=1)
        except BaseException:
            pool.terminate()
            pool.join()
            raise
        pool.close()
        pool.join()
        return outs
    finally:
        signal.signal(signal.SIGTERM, old_term)


def atomic_write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def git_info() -> dict:
    """The commit this script runs from and whether its tree is dirty (None without git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=HERE, capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip() != ""
        return dict(git_commit=commit, git_dirty=dirty)
    except (OSError, subprocess.SubprocessError):
        return dict(git_commit=None, git_dirty=None)


def env_info(jobs: int, **extra) -> dict:
    return dict(python=platform.python_version(), numpy=np.__version__,
                platform=platform.platform(), blas_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
                jobs=jobs, **extra, **git_info())


PAPER_CITATION = ("Gers, Schmidhuber & Cummins (2000), Learning to Forget: Continual Prediction "
                  "with LSTM, Neural Computation 12(10); Table 2")


def online_scheme():
    """The paper's on-line scheme, `online_training.py` beside this file. It imports this
    module, so it is imported on demand, with this module registered under its own name
    (a script runs as `__main__`) so that both see one module."""
    sys.modules.setdefault("continual_embedded_reber", sys.modules[__name__])
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import online_training
    return online_training


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.outdir is not None and not args.outdir.strip():
        ap.error("--outdir must not be empty")
    cfg = config_from_args(ap, args)
    outdir = Path(args.outdir) if args.outdir is not None else DEFAULT_OUTDIR
    check_outdir(ap, outdir)
    command = ["python", f"{FOLDER}/{Path(__file__).name}", *argv]
    try:
        if args.preset == "paper":
            return online_scheme().main_paper(args, cfg, outdir, command)
        return main_modern(args, cfg, outdir, command)
    except KeyboardInterrupt:
        print("interrupted: no results written", file=sys.stderr)
        return 130


def main_modern(args, cfg, outdir: Path, command) -> int:
    t0 = time.perf_counter()
    env = env_info(args.jobs, stack=args.stack)  # the tree as the run starts
    tasks = []
    order = sorted(cfg.variants, key=lambda v: v != "no_forget")  # longest tasks first
    for v in order:
        for i in range(0, len(args.seeds), args.stack):
            tasks.append((cfg, v, args.seeds[i:i + args.stack], args.quiet))
    try:
        outs = run_tasks(_run_task, tasks, args.jobs)
    except FloatingPointError as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 1
    records = [r for out in outs for r in out]
    wall = time.perf_counter() - t0
    arrays = {}
    for r in records:
        key = f"{r['variant']}_seed{r['seed']}"
        arrays[f"final_{key}"] = np.concatenate(
            [r["final_params"][k].ravel() for k, _s in param_shapes(cfg, r["variant"])])
        # training snapshots of every net (float32: figures only), for the GIF
        arrays[f"snapshots_{key}"] = r["snapshots"].astype(np.float32)
        arrays[f"snapshot_symbols_{key}"] = np.asarray(r["snapshot_symbols"])
    clean = [{k: v for k, v in r.items() if k not in ("final_params", "snapshots")}
             for r in records]
    results = dict(
        experiment=FOLDER, paper=PAPER_CITATION, command=command, preset=args.preset,
        config=dataclasses.asdict(cfg), env=env,
        wallclock_s=wall, paper_reference=PAPER_TABLE2, summary={}, seeds=clean)
    results = finalize_results(_jsonable(results))
    np.savez_compressed(outdir / "run.npz", **arrays)
    atomic_write_json(outdir / "results.json", results)
    if not args.quiet:
        print(results_table(results))
        print(f"wall {wall:.0f} s")
    print(f"wrote {outdir / 'results.json'}")
    print(f"wrote {outdir / 'run.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
