"""Continual noisy temporal order (CNTO): LSTM with and without forget gates.

Gers, F. A., Schmidhuber, J. & Cummins, F. (2000). Learning to Forget: Continual Prediction
with LSTM. Neural Computation 12(10), 2451-2471. Experiment: Table 3.

Claim tested: on one unsegmented stream of concatenated noisy temporal order sequences
(Hochreiter & Schmidhuber 1997, Experiment 6b), never reset, an LSTM *with forget gates*
learns to classify every sequence at its end, while standard LSTM without forget gates fails
unless its state is reset at every sequence start.

Headline command (modern preset: 10 seeds x variants forget, no_forget, reset; Adam over
BPTT chunks, writes into runs/continual-embedded-reber/cnto/):

    python continual-embedded-reber/cnto.py --jobs 2

The paper's scheme (online, one update per symbol, the truncated forward-mode gradient,
squared error at the sequence ends, training streams that end at the first wrong sequence,
checkpoints) is `--preset paper`.

The file reads top to bottom: task (sequences, streams, the criterion) -> config -> network
(the main script's LSTM equations, init and fused kernel with 8 inputs, 3 blocks of 2 cells
and 8 outputs) -> loss at the sequence ends -> evaluation (test streams of 100 sequences) ->
training under the modern scheme (seeds of one variant stacked) -> training under the
paper's scheme (OnlineNets of online_training.py) -> results -> CLI.
This module imports continual_embedded_reber and online_training; neither imports it.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported by path (tests): find the main script beside it
    sys.path.insert(0, str(HERE))
import continual_embedded_reber as cer  # noqa: E402
import online_training as ot  # noqa: E402

EXPERIMENT = "continual-embedded-reber/cnto"
DEFAULT_OUTDIR = HERE.parent / "runs" / cer.FOLDER / "cnto"  # git-ignored
VARIANTS = ("forget", "no_forget", "reset")
PAPER_CITATION = ("Gers, Schmidhuber & Cummins (2000), Learning to Forget: Continual Prediction "
                  "with LSTM, Neural Computation 12(10); Table 3 (continual noisy temporal "
                  "order); the task is Experiment 6b of Hochreiter & Schmidhuber (1997)")
PAPER_REFERENCE = dict(
    claim="on the continual task, only LSTM with forget gates is reported to learn it",
    table3="the per-row numbers of Table 3 are not in our sources of the paper",
    criterion="perfect: 10 test streams, the first 100 successive sequences of each correct "
              "(every output within 0.3 of its target at the sequence end)")


# ---------------------------------------------------------------------------------------
# Task: one stream of concatenated Experiment-6b sequences, never reset
# ---------------------------------------------------------------------------------------
# Each sequence is E, random distractors a-d, B, 100-110 symbols long, with X or Y at three
# positions t1 in [10, 20], t2 in [33, 43], t3 in [66, 76] (1-based, E at 1); its class
# (8: XXX ... YYY) is the target at its last step (the B). No other step has a target.
CNTO_SYMBOLS = "EBabcdXY"
CNTO_WINDOWS = ((10, 20), (33, 43), (66, 76))
CNTO_LENGTHS = (100, 110)
CNTO_THRESHOLD = 0.3  # 1997's criterion: every output within 0.3 of its target
CNTO_TEST_SEQUENCES = 100  # the paper's criterion: 100 successive sequences per test stream
N_IN = len(CNTO_SYMBOLS)  # 8 input units, one-hot
N_CLASSES = 8  # 8 output units, one per class
SYM_E, SYM_B, SYM_PAD = 0, 1, 2  # E starts a sequence, B ends it; padding reads as "a"


def cnto_stream(rng, n_sequences: int) -> dict:
    """n_sequences sequences concatenated into one stream: x (L,) symbol indices, ends
    (n,) the index of each sequence's last step (where its class is the target), classes.
    The class reads the markers as bits, X = 0, Y = 1, first marker highest."""
    lengths = rng.integers(CNTO_LENGTHS[0], CNTO_LENGTHS[1] + 1, size=n_sequences)
    ends = np.cumsum(lengths) - 1
    starts = ends - lengths + 1
    x = rng.integers(2, 6, size=int(lengths.sum()))  # distractors a, b, c, d
    x[starts], x[ends] = SYM_E, SYM_B
    bits = rng.integers(0, 2, size=(n_sequences, len(CNTO_WINDOWS)))
    for w, (lo, hi) in enumerate(CNTO_WINDOWS):
        t = rng.integers(lo, hi + 1, size=n_sequences) - 1
        x[starts + t] = 6 + bits[:, w]  # X or Y
    classes = bits @ (2 ** np.arange(len(CNTO_WINDOWS))[::-1])
    return dict(x=x, ends=ends, classes=classes)


def cnto_sequence(rng) -> tuple:
    """One Experiment-6b sequence: (symbol indices into CNTO_SYMBOLS, class in 0..7)."""
    st = cnto_stream(rng, 1)
    return st["x"], int(st["classes"][0])


def step_classes(stream: dict) -> np.ndarray:
    """The target class at every step of a stream: the class at a sequence end, -1 elsewhere."""
    cls = np.full(stream["x"].shape, -1, dtype=np.int64)
    cls[stream["ends"]] = stream["classes"]
    return cls


def cnto_correct(y_end, classes, threshold: float = CNTO_THRESHOLD):
    """y_end (..., 8) outputs at the sequence ends: correct iff every output is within
    threshold of the one-hot class target."""
    target = np.eye(N_CLASSES)[classes]
    return (np.abs(np.asarray(y_end) - target) < threshold).all(axis=-1)


def cnto_perfect(correct, n_sequences: int = CNTO_TEST_SEQUENCES) -> bool:
    """correct (test streams, sequences): perfect iff every stream's first n_sequences
    successive sequences are all correct (the paper's criterion: 10 streams, 100)."""
    correct = np.asarray(correct, dtype=bool)
    return bool(correct.ndim == 2 and correct.shape[1] >= n_sequences
                and correct[:, :n_sequences].all())


def data_rng(seed: int, role: str, k: int = 0) -> np.random.Generator:
    """A net's own random streams, by role: "init" (k = variant index), "train" (the same for
    every variant of a seed), "stop_test" (k-th stop test), "confirm". Keys differ from the
    main script's, so no CNTO stream shares a seed sequence with a CERG one."""
    key = {"init": (1010 + k,), "train": (1100,), "stop_test": (1200, k),
           "confirm": (1300,)}[role]
    return cer.seed_rng(seed, *key)


class TrainingStreams:
    """`batch` continual training streams of one net, read `T` steps at a time.

    Each stream is a never-ending concatenation of sequences, refilled `refill` sequences at
    a time from the net's own rng, stream 0 first: a net's data do not depend on its stack.
    """

    def __init__(self, rng, batch: int, refill: int = 32):
        self.rng, self.refill = rng, refill
        self.x = [np.empty(0, dtype=np.int64) for _ in range(batch)]
        self.cls = [np.empty(0, dtype=np.int64) for _ in range(batch)]

    def take(self, T: int) -> tuple:
        """The next T steps of every stream: x, cls (T, batch)."""
        B = len(self.x)
        x, cls = np.empty((T, B), dtype=np.int64), np.empty((T, B), dtype=np.int64)
        for b in range(B):
            while self.x[b].size < T:
                st = cnto_stream(self.rng, self.refill)
                self.x[b] = np.concatenate([self.x[b], st["x"]])
                self.cls[b] = np.concatenate([self.cls[b], step_classes(st)])
            x[:, b], cls[:, b] = self.x[b][:T], self.cls[b][:T]
            self.x[b], self.cls[b] = self.x[b][T:], self.cls[b][T:]
        return x, cls


# ---------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """The modern scheme's settings (hashable: tuples and scalars only)."""

    variants: tuple = VARIANTS  # model variants, each trained on the same streams per seed
    n_blocks: int = 3  # memory blocks (1997's Experiment 6b: 3)
    cells_per_block: int = 2  # cells per block (1997's Experiment 6b: 2)
    init_range: float = 0.2  # weights uniform in [-init_range, init_range] (the main script's)
    batch: int = 8  # continual training streams per net (one Adam update per chunk)
    chunk: int = 256  # BPTT chunk (steps), state carried across chunks; > 110 so that an
    # end late in a chunk sends its error back to all three markers of its sequence
    lr: float = 1e-2  # Adam's initial learning rate (the main script's)
    lr_final: float = 1e-3  # learning rate after the decay (the main script's)
    lr_decay_sequences: int = 100_000  # training sequences over which lr decays geometrically
    # (~10M symbols, the main script's lr_decay_symbols)
    decay_after_error: float = 0.01  # the decay starts once the running fraction of wrong
    # training sequence ends first drops below this (1.0: from the start)
    max_sequences: int = 500_000  # training budget per net (sequences); set from seeds
    # 100-101 (forget nets sit at chance for ~70-130k sequences; one solved at 170k)
    test_every: int = 5_000  # training sequences between two stop tests
    test_streams: int = 10  # streams per test (paper: 10)
    test_sequences: int = CNTO_TEST_SEQUENCES  # sequences per test stream (paper: 100)
    test_block: int = 1024  # steps per forward block in a test
    kernel_dtype: str = "float32"  # dtype of the training/test kernel (params stay float64)
    log_every: int = 5_000  # one curve point per this many training sequences


@dataclass(frozen=True)
class OnlineConfig:
    """The paper's online scheme (`--preset paper`), all nets of a group in lock-step."""

    variants: tuple = VARIANTS  # model variants, each on the same training stream per seed
    n_blocks: int = 3  # memory blocks (1997's Experiment 6b: 3)
    cells_per_block: int = 2  # cells per block (1997's Experiment 6b: 2)
    init_range: float = 0.2  # weights uniform in [-init_range, init_range]
    lr: float = 0.1  # alpha: 1997's Experiment 6b rate (the 2000 paper's CNTO rate is not
    # in our sources)
    max_sequences: int = 1_000_000  # cap per net (training sequences)
    test_every: int = 5_000  # training sequences between two tests
    test_streams: int = 10  # streams per test (paper: 10)
    test_sequences: int = CNTO_TEST_SEQUENCES  # sequences per test stream (paper: 100)
    test_block: int = 1024  # steps per forward block in a test
    kernel_dtype: str = "float64"  # the tests' kernel (the online nets are float64)
    coin_block: int = 4096  # training steps drawn per net at a time
    log_every: int = 50_000  # one curve point per this many training sequences


PRESETS = {
    "modern": Config(),
    "paper": OnlineConfig(),
    "quick": Config(batch=4, chunk=128, max_sequences=600, lr_decay_sequences=600,
                    test_every=300, test_streams=3, test_sequences=10, test_block=512,
                    log_every=200),
}
QUICK_ONLINE = OnlineConfig(max_sequences=40, test_every=20, test_streams=2, test_sequences=5,
                            test_block=256, coin_block=512, log_every=20)  # for the tests


# ---------------------------------------------------------------------------------------
# Network: the main script's LSTM, 8 inputs, 3 blocks x 2 cells, 8 outputs
# ---------------------------------------------------------------------------------------
# Every hidden unit (cell input, input/forget/output gate) reads [x (8); y^c_{t-1} (6)], gates
# biased, cell inputs not; the output units read [x; y^c_t] plus a bias (1997's Experiment 6b
# nets read the cells only: a deviation). Equations (f logistic, block j, cell v):
#   s_c(t) = y^phi_j s_c(t-1) + y^in_j g(net_c),  g in [-2, 2]  (no_forget, reset: y^phi = 1)
#   y^c(t) = y^out_j h(s_c(t)),  h in [-1, 1];  y^k = f(net_k)
# `reset`: no_forget with s_c and y^c zeroed before the first symbol (E) of every sequence.
def net_config(cfg) -> cer.Config:
    """The main script's net settings for this size (its init and parameter layout)."""
    return cer.Config(n_blocks=cfg.n_blocks, cells_per_block=cfg.cells_per_block,
                      init_range=cfg.init_range)


def n_cells(cfg) -> int:
    return cfg.n_blocks * cfg.cells_per_block


def param_shapes(cfg, variant: str) -> list:
    return cer.param_shapes(net_config(cfg), variant, N_IN, N_CLASSES)


def n_weights(cfg, variant: str) -> int:
    return int(sum(np.prod(s) for _n, s in param_shapes(cfg, variant)))


def init_params(cfg, rng, variant: str | None = None) -> dict:
    """The main script's init: U[-0.2, 0.2]; gate biases by block in/out -0.5, -1, -1.5;
    forget +0.5, +1, +1.5."""
    return cer.init_params(net_config(cfg), rng, variant or cfg.variants[0], N_IN, N_CLASSES)


def new_kernel(cfg, variant: str, n_nets: int, T: int, B: int, dtype) -> cer.Kernel:
    """The main script's fused kernel for n_nets stacked nets of `variant`."""
    return cer.Kernel(n_nets, T, B, n_cells(cfg), variant == "forget", variant == "reset",
                      dtype)


def reset_keep(x, variant: str):
    """`reset`: keep_t = 0 where x_t is an E (state zeroed before it); else None."""
    return (x != SYM_E) if variant == "reset" else None


# ---------------------------------------------------------------------------------------
# Loss: cross-entropy of the 8 logistic outputs at the sequence ends only
# ---------------------------------------------------------------------------------------
def end_loss(logits, cls):
    """Per-net loss and dL/dnet_k. logits (T, N, B, 8); cls (T, N, B), -1 where no target.

    L_n = sum over ends and outputs of BCE(y^k, one-hot class) / (ends of net n in the
    chunk); every other step is masked out. Also returns the outputs y and the ends per net.
    """
    mask = cls >= 0
    target = np.eye(N_CLASSES, dtype=logits.dtype)[np.maximum(cls, 0)]
    target *= mask[..., None]
    ends = mask.sum(axis=(0, 2))
    scale = (1.0 / np.maximum(ends, 1)).astype(logits.dtype)
    y = 0.5 * (1.0 + np.tanh(0.5 * logits))  # y^k = f(net_k)
    per = (np.logaddexp(0.0, logits) - target * logits).sum(-1) * mask
    per_net = np.ascontiguousarray(per.transpose(1, 0, 2), dtype=np.float64)
    loss = per_net.reshape(per_net.shape[0], -1).sum(-1) * scale  # one row per net: the
    # same summation order whichever nets share the stack
    dl = (y - target) * mask[..., None] * scale[None, :, None, None]
    return loss, dl, y, ends


def wrong_ends(y, cls):
    """Per net: how many sequence ends of the chunk are misclassified (the 0.3 criterion)."""
    mask = cls >= 0
    ok = cnto_correct(y, np.maximum(cls, 0))
    return (mask & ~ok).sum(axis=(0, 2))


def _single(params, batch, cfg, want_grads):
    variant = "forget" if cer.has_forget_gates(params) else (
        "reset" if batch["reset"] else "no_forget")
    pk = cer.pack({k: v[None] for k, v in params.items()}, variant == "forget", np.float64)
    T, B = batch["x"].shape
    ker = new_kernel(cfg, variant, 1, T, B, np.float64)
    x = batch["x"][:, None]
    logits = ker.forward(pk, x, reset_keep(x, variant), batch["u0"][None], batch["y0"][None])
    loss_v, dl, _y, _e = end_loss(logits, batch["cls"][:, None])
    if not want_grads:
        return float(loss_v[0])
    g = cer.unpack_grads(*ker.backward(pk, x, dl), variant == "forget", cfg.n_blocks)
    return float(loss_v[0]), {k: g[k][0] for k in params}


def loss(params: dict, batch: dict, cfg: Config) -> float:
    """Mean end-of-sequence loss of one net on one chunk (float64)."""
    return _single(params, batch, cfg, want_grads=False)


def loss_and_grads(params: dict, batch: dict, cfg: Config):
    """Loss and its full BPTT gradient over the chunk (carried-in state held fixed)."""
    return _single(params, batch, cfg, want_grads=True)


def sample_batch(cfg: Config, rng, variant: str | None = None) -> dict:
    """One training chunk of `cfg.batch` streams x `cfg.chunk` steps, entered part-way into a
    stream (so it holds sequence ends and markers), with a random carried-in state."""
    variant = variant or cfg.variants[0]
    streams = TrainingStreams(rng, cfg.batch, refill=4)
    streams.take(int(rng.integers(1, 100)))
    x, cls = streams.take(cfg.chunk)
    c = n_cells(cfg)
    return dict(x=x, cls=cls, reset=variant == "reset",
                u0=rng.uniform(-1.0, 1.0, (cfg.batch, c)),
                y0=rng.uniform(-0.5, 0.5, (cfg.batch, c)))


GRADCHECK_CASES = [(v, Config(variants=(v,), batch=2, chunk=120, kernel_dtype="float64"))
                   for v in VARIANTS]


# ---------------------------------------------------------------------------------------
# Evaluation: test streams of 100 sequences from zero state, forward only
# ---------------------------------------------------------------------------------------
def make_test_streams(cfg, rng) -> tuple:
    """cfg.test_streams streams of cfg.test_sequences sequences: x, cls and the sequence
    index at each end (-1 elsewhere), each (L, S), padded with distractors to one length."""
    sts = [cnto_stream(rng, cfg.test_sequences) for _ in range(cfg.test_streams)]
    L = max(st["x"].size for st in sts)
    x = np.full((L, len(sts)), SYM_PAD, dtype=np.int64)
    cls = np.full((L, len(sts)), -1, dtype=np.int64)
    seq = np.full((L, len(sts)), -1, dtype=np.int64)
    for s, st in enumerate(sts):
        x[:st["x"].size, s] = st["x"]
        cls[st["ends"], s] = st["classes"]
        seq[st["ends"], s] = np.arange(cfg.test_sequences)
    return x, cls, seq


def stack_test_data(cfg, rngs) -> tuple:
    """Every net's test data, padded to one length (a multiple of test_block): (L, N, S)."""
    parts = [make_test_streams(cfg, r) for r in rngs]
    Lb = cfg.test_block
    L = -(-max(p[0].shape[0] for p in parts) // Lb) * Lb
    out = [np.full((L, len(parts), cfg.test_streams), fill, dtype=np.int64)
           for fill in (SYM_PAD, -1, -1)]
    for n, p in enumerate(parts):
        for arr, part in zip(out, p, strict=True):
            arr[:part.shape[0], n] = part
    return tuple(out)


def evaluate(cfg, variant: str, stacked: dict, rngs, early_exit: bool) -> dict:
    """Run each stacked net on its own test streams (drawn from rngs[n]) from zero state.

    Returns per net: correct (S, sequences) at the sequence ends, perfect (the criterion),
    correct_fraction. early_exit stops once every net has a wrong end (a stop test only
    asks "perfect or not"); the correct flags after that point are not computed (True).
    """
    N, S, Lb, c = len(rngs), cfg.test_streams, cfg.test_block, n_cells(cfg)
    dt = np.dtype(cfg.kernel_dtype)
    x, cls, seq = stack_test_data(cfg, rngs)
    pk = cer.pack(stacked, variant == "forget", dt)
    ker = new_kernel(cfg, variant, N, Lb, S, dt)
    u0, y0 = np.zeros((N, S, c), dt), np.zeros((N, S, c), dt)
    correct = np.ones((N, S, cfg.test_sequences), dtype=bool)
    for start in range(0, x.shape[0], Lb):
        xb, cb = x[start:start + Lb], cls[start:start + Lb]
        logits = ker.forward(pk, xb, reset_keep(xb, variant), u0, y0)
        t, n, s = np.nonzero(cb >= 0)
        y_end = 0.5 * (1.0 + np.tanh(0.5 * logits[t, n, s].astype(np.float64)))
        correct[n, s, seq[start + t, n, s]] = cnto_correct(y_end, cb[t, n, s])
        u0, y0 = ker.U[Lb].copy(), ker.Y[Lb].copy()
        if early_exit and (~correct).any(axis=(1, 2)).all():
            break
    perfect = np.array([cnto_perfect(correct[n], cfg.test_sequences) for n in range(N)])
    return dict(correct=correct, perfect=perfect, correct_fraction=correct.mean(axis=(1, 2)))


def first_wrong(correct) -> list:
    """Per test stream: correct sequences in a row from its start."""
    return [int(np.argmin(r)) if not r.all() else int(r.size) for r in correct]


# ---------------------------------------------------------------------------------------
# Training (modern scheme): seeds of one variant stacked, Adam over BPTT chunks
# ---------------------------------------------------------------------------------------
class Adam:
    """Adam on stacked flat params (N, P), one learning rate per net."""

    def __init__(self, flat, beta1=0.9, beta2=0.999, eps=1e-8):
        self.m1, self.m2 = np.zeros_like(flat), np.zeros_like(flat)
        self.beta1, self.beta2, self.eps, self.k = beta1, beta2, eps, 0

    def step(self, flat, grads, lr):
        """flat -= lr * Adam direction (in place); lr (N, 1)."""
        b1, b2 = self.beta1, self.beta2
        self.k += 1
        self.m1 *= b1
        self.m1 += (1 - b1) * grads
        self.m2 *= b2
        self.m2 += (1 - b2) * grads * grads
        a = lr * np.sqrt(1 - b2 ** self.k) / (1 - b1 ** self.k)
        flat -= a * self.m1 / (np.sqrt(self.m2) + self.eps)

    def take(self, idx):
        self.m1, self.m2 = self.m1[idx], self.m2[idx]


def lr_at(cfg: Config, sequences_since_decay_start):
    """lr until the decay starts, then geometric decay to lr_final over lr_decay_sequences."""
    frac = np.clip(sequences_since_decay_start / max(cfg.lr_decay_sequences, 1), 0.0, 1.0)
    return cfg.lr * (cfg.lr_final / cfg.lr) ** frac


def new_record(cfg, variant: str, seed: int) -> dict:
    return dict(seed=int(seed), variant=variant, n_weights=n_weights(cfg, variant),
                solved=False, sequences_to_solve=None, stop_tests=[],
                curves=dict(sequences=[], loss=[], wrong_fraction=[], lr=[]))


class Stack:
    """The training state of the nets of one variant still training (rows = nets)."""

    def __init__(self, cfg: Config, variant: str, seeds):
        vi = VARIANTS.index(variant)
        inits = [init_params(cfg, data_rng(s, "init", vi), variant) for s in seeds]
        self.fp = cer.FlatParams(net_config(cfg), variant,
                                 {k: np.stack([p[k] for p in inits]) for k in inits[0]})
        self.adam = Adam(self.fp.flat)
        self.streams = [TrainingStreams(data_rng(s, "train"), cfg.batch) for s in seeds]
        N, c, dt = len(seeds), n_cells(cfg), np.dtype(cfg.kernel_dtype)
        self.alive = list(range(N))  # indices into seeds
        self.u0, self.y0 = np.zeros((N, cfg.batch, c), dt), np.zeros((N, cfg.batch, c), dt)
        self.sequences = np.zeros(N, dtype=np.int64)  # training sequence ends seen
        self.err_avg = np.ones(N)  # running mean of the fraction of wrong ends per chunk
        self.decay_from = np.full(N, -1, dtype=np.int64)  # sequences where the lr decay began
        self.tests_done = np.zeros(N, dtype=np.int64)
        self.win = np.zeros((3, N))  # curve window: loss sum, chunks, wrong ends
        self.win_ends = np.zeros(N)
        self.ker = new_kernel(cfg, variant, N, cfg.chunk, cfg.batch, dt)
        self.cfg, self.variant = cfg, variant

    def params(self, j) -> dict:
        return {k: v[j].copy() for k, v in self.fp.views().items()}

    def keep_only(self, idx):
        """Drop every net but the rows idx (nets that stopped)."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            self.alive = []
            return
        views = self.fp.views()
        self.fp = cer.FlatParams(net_config(self.cfg), self.variant,
                                 {k: views[k][idx] for k, _s in self.fp.shapes})
        self.adam.take(idx)
        self.streams = [self.streams[j] for j in idx]
        self.alive = [self.alive[j] for j in idx]
        for k in ("u0", "y0", "sequences", "err_avg", "decay_from", "tests_done", "win_ends"):
            setattr(self, k, getattr(self, k)[idx])
        self.win = self.win[:, idx]
        cfg = self.cfg
        self.ker = new_kernel(cfg, self.variant, len(idx), cfg.chunk, cfg.batch,
                              np.dtype(cfg.kernel_dtype))

    def train_chunk(self):
        """One chunk of every net's streams forward and back, one Adam update per net.
        Returns (loss, wrong ends, ends) per net."""
        cfg, forget = self.cfg, self.variant == "forget"
        data = [s.take(cfg.chunk) for s in self.streams]
        x = np.stack([d[0] for d in data], axis=1)  # (T, N, B)
        cls = np.stack([d[1] for d in data], axis=1)
        pk = cer.pack(self.fp.views(), forget, self.ker.dtype)
        logits = self.ker.forward(pk, x, reset_keep(x, self.variant), self.u0, self.y0)
        loss_v, dl, y, ends = end_loss(logits, cls)
        wrong = wrong_ends(y, cls)
        grads = self.fp.flatten(cer.unpack_grads(*self.ker.backward(pk, x, dl), forget,
                                                 cfg.n_blocks))
        if not (np.isfinite(grads).all() and np.isfinite(loss_v).all()):
            raise FloatingPointError("non-finite loss or gradient")
        frac = np.where(ends > 0, wrong / np.maximum(ends, 1), self.err_avg)
        self.err_avg = 0.95 * self.err_avg + 0.05 * frac
        start = (self.decay_from < 0) & (self.err_avg < cfg.decay_after_error)
        self.decay_from = np.where(start, self.sequences, self.decay_from)
        lr = lr_at(cfg, np.where(self.decay_from < 0, 0, self.sequences - self.decay_from))
        self.adam.step(self.fp.flat, grads, lr[:, None])
        if not np.isfinite(self.fp.flat).all():
            raise FloatingPointError("non-finite weights")
        self.u0, self.y0 = self.ker.U[cfg.chunk].copy(), self.ker.Y[cfg.chunk].copy()
        self.sequences += ends
        self.lr = lr
        return loss_v, wrong, ends


def log_curves(stack: Stack, rec: list, loss_v, wrong, ends, before) -> None:
    """Add to the curve window; close it (one point) for nets that crossed log_every."""
    st, cfg = stack, stack.cfg
    st.win += np.stack([loss_v, np.ones_like(loss_v), wrong])
    st.win_ends += ends
    due = st.sequences // cfg.log_every > before // cfg.log_every
    for j in np.flatnonzero(due):
        cv = rec[st.alive[j]]["curves"]
        cv["sequences"].append(int(st.sequences[j]))
        cv["loss"].append(float(st.win[0, j] / st.win[1, j]))
        cv["wrong_fraction"].append(float(st.win[2, j] / max(st.win_ends[j], 1)))
        cv["lr"].append(float(st.lr[j]))
        st.win[:, j], st.win_ends[j] = 0.0, 0.0


def stop_tests(stack: Stack, rec: list, seeds, before) -> list:
    """Stop tests for the nets that crossed a multiple of test_every; the rows that passed."""
    st, cfg = stack, stack.cfg
    due = np.flatnonzero(st.sequences // cfg.test_every > before // cfg.test_every)
    if not due.size:
        return []
    sub = {k: v[due] for k, v in st.fp.views().items()}
    rngs = [data_rng(seeds[st.alive[j]], "stop_test", int(st.tests_done[j])) for j in due]
    ev = evaluate(cfg, st.variant, sub, rngs, early_exit=True)
    st.tests_done[due] += 1
    for i, j in enumerate(due):
        rec[st.alive[j]]["stop_tests"].append(dict(sequences=int(st.sequences[j]),
                                                   perfect=bool(ev["perfect"][i])))
    return [int(j) for i, j in enumerate(due) if ev["perfect"][i]]


def train_stack(cfg: Config, variant: str, seeds, log=None) -> list:
    """Train one net per seed (all of `variant`) in lock-step; return one record per seed.

    Per chunk every net runs its `batch` continual streams `chunk` steps forward and back and
    makes one Adam update. Every `test_every` training sequences a net gets a stop test (10
    test streams x 100 sequences from zero state); a perfect one stops it (solved). Every net,
    solved or not, is then confirmed on 10 further streams.
    """
    seeds = [int(s) for s in seeds]
    c0, t0, t_log = time.process_time(), time.perf_counter(), time.perf_counter()
    st = Stack(cfg, variant, seeds)
    rec = [new_record(cfg, variant, s) for s in seeds]
    final = [None] * len(seeds)

    def finish(rows, solved):
        for j in rows:
            n = st.alive[j]
            rec[n]["solved"] = solved
            rec[n]["sequences_to_solve"] = int(st.sequences[j]) if solved else None
            rec[n]["training_sequences"] = int(st.sequences[j])
            dfrom = int(st.decay_from[j])
            rec[n]["lr_decay_start_sequences"] = dfrom if dfrom >= 0 else None
            final[n] = st.params(j)

    while st.alive:
        before = st.sequences.copy()
        try:
            loss_v, wrong, ends = st.train_chunk()
        except FloatingPointError as e:
            raise FloatingPointError(f"{e} ({variant}, seeds "
                                     f"{[seeds[n] for n in st.alive]})") from None
        log_curves(st, rec, loss_v, wrong, ends, before)
        passed = stop_tests(st, rec, seeds, before)
        out = [j for j in range(len(st.alive)) if st.sequences[j] >= cfg.max_sequences
               and j not in passed]
        finish(passed, True)
        finish(out, False)
        if log is not None:
            for j in passed:
                log(f"[{variant}] seed {seeds[st.alive[j]]} PERFECT after "
                    f"{int(st.sequences[j])} sequences")
            if time.perf_counter() - t_log > 10.0:
                t_log = time.perf_counter()
                log(f"[{variant} seeds {[seeds[n] for n in st.alive]}] sequences "
                    f"{st.sequences.tolist()} loss {np.round(loss_v, 3).tolist()} "
                    f"wrong/ends {[f'{w}/{e}' for w, e in zip(wrong, ends, strict=True)]} "
                    f"elapsed {t_log - t0:.0f}s")
        if passed or out:
            st.keep_only([j for j in range(len(st.alive)) if j not in passed + out])
    confirm(cfg, variant, rec, final)
    cpu = time.process_time() - c0
    total = sum(r["training_sequences"] for r in rec)
    for r, p in zip(rec, final, strict=True):  # this stack's CPU, shared out by sequences
        r["cpu_time_s"] = cpu * r["training_sequences"] / max(total, 1)
        r["final_params"] = p
    return rec


def confirm(cfg: Config, variant: str, rec: list, final: list) -> None:
    """Test every final net on 10 further streams that no stopping decision saw."""
    stacked = {k: np.stack([p[k] for p in final]) for k in final[0]}
    ev = evaluate(cfg, variant, stacked, [data_rng(r["seed"], "confirm") for r in rec],
                  early_exit=False)
    for i, r in enumerate(rec):
        r["confirm"] = dict(perfect=bool(ev["perfect"][i]),
                            correct_fraction=float(ev["correct_fraction"][i]),
                            correct_in_a_row=first_wrong(ev["correct"][i]))


def train(cfg: Config, seed: int, log=None) -> dict:
    """One seed: every variant in cfg.variants trained on the same streams; one record each."""
    return dict(seed=int(seed),
                variants={v: train_stack(cfg, v, [seed], log)[0] for v in cfg.variants})


# ---------------------------------------------------------------------------------------
# Training (the paper's scheme): online, one update per symbol, truncated gradient
# ---------------------------------------------------------------------------------------
# online_training's OnlineNets: after every symbol every weight moves by -alpha dE(t)/dw with
# the truncated LSTM gradient computed forward (error reaches a cell only from the outputs at
# the same step and flows back in time only through s_c). Here E(t) = 1/2 sum_k (y^k - t^k)^2
# at a sequence end and no error elsewhere: alpha is zero at every other step. One continual
# training stream per net; it ends at its first misclassified sequence end and the next
# stream starts from zero state (the CERG rule, transposed). Every test_every training
# sequences the net is tested on its current weights (training waits): 10 fresh streams x
# 100 sequences with early exit at the first wrong end; a perfect test stops the net.
class OnlineGroup:
    """Nets [(variant, seed), ...] trained online in lock-step (one row per net)."""

    def __init__(self, ocfg: OnlineConfig, nets):
        self.ocfg, self.nets = ocfg, [(v, int(s)) for v, s in nets]
        params = [init_params(ocfg, data_rng(s, "init", VARIANTS.index(v)), v)
                  for v, s in self.nets]
        self.net = ot.OnlineNets(params, [v == "forget" for v, _s in self.nets],
                                  ocfg.n_blocks, ocfg.cells_per_block)
        N = len(self.nets)
        self.ids = np.arange(N)  # rows -> index into nets
        self.streams = [TrainingStreams(data_rng(s, "train"), 1) for _v, s in self.nets]
        self.reset = np.array([v == "reset" for v, _s in self.nets])
        self.fresh = np.ones(N, dtype=bool)  # a training stream starts at the next step
        self.sequences = np.zeros(N, dtype=np.int64)
        self.symbols = np.zeros(N, dtype=np.int64)
        self.stream_count = np.ones(N, dtype=np.int64)  # training streams begun
        self.win = np.zeros((2, N))  # curve window: sequence ends, wrong ends
        self.recs = [dict(seed=s, variant=v, n_weights=n_weights(ocfg, v), solved=False,
                          sequences_to_solve=None, tests=0, best_test_fraction=0.0,
                          curves=dict(sequences=[], wrong_fraction=[], streams_begun=[]))
                     for v, s in self.nets]
        self.final = [None] * N
        self.eye = np.eye(N_CLASSES)
        self.cpu_s = 0.0  # training CPU seconds so far (kept across a resume)

    def params(self, j) -> dict:
        v = self.nets[self.ids[j]][0]
        return ot.unfuse_online(self.net.W[j], self.net.Wk[j], v, self.ocfg.n_blocks)

    def finish(self, rows, solved: bool):
        for j in rows:
            r = self.recs[self.ids[j]]
            r["solved"] = solved
            r["sequences_to_solve"] = int(self.sequences[j]) if solved else None
            r["training_sequences"] = int(self.sequences[j])
            r["training_symbols"] = int(self.symbols[j])
            r["training_streams"] = int(self.stream_count[j])
            self.final[self.ids[j]] = self.params(j)

    def keep_only(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        self.net.take(rows)
        self.ids, self.reset, self.fresh = self.ids[rows], self.reset[rows], self.fresh[rows]
        self.sequences, self.symbols = self.sequences[rows], self.symbols[rows]
        self.stream_count, self.win = self.stream_count[rows], self.win[:, rows]
        self.streams = [self.streams[j] for j in rows]

    def test(self, rows) -> list:
        """Test the nets `rows` on their current weights; the rows whose test is perfect."""
        passed = []
        for v in VARIANTS:
            sub = [j for j in rows if self.nets[self.ids[j]][0] == v]
            if not sub:
                continue
            ps = [self.params(j) for j in sub]
            stacked = {k: np.stack([p[k] for p in ps]) for k in ps[0]}
            rngs = [data_rng(self.nets[self.ids[j]][1], "stop_test",
                             self.recs[self.ids[j]]["tests"]) for j in sub]
            ev = evaluate(self.ocfg, v, stacked, rngs, early_exit=True)
            for i, j in enumerate(sub):
                r = self.recs[self.ids[j]]
                r["tests"] += 1
                row_ok = ev["correct"][i].all(axis=1)  # streams without a wrong end
                r["best_test_fraction"] = max(r["best_test_fraction"], float(row_ok.mean()))
                if ev["perfect"][i]:
                    passed.append(j)
        return passed

    def run_block(self):
        """coin_block lock-step steps of every net still training."""
        ocfg, net, B = self.ocfg, self.net, self.ocfg.coin_block
        data = [s.take(B) for s in self.streams]
        X = np.concatenate([d[0] for d in data], axis=1)  # (B, N)
        C = np.concatenate([d[1] for d in data], axis=1)
        alive = np.ones(len(self.ids), dtype=bool)
        for i in range(B):
            x, cls = X[i], C[i]
            wipe = self.fresh | (self.reset & (x == SYM_E))
            if wipe.any():  # new training stream, or `reset` before an E
                net.zero_state((~wipe).astype(np.float64))
            end = (cls >= 0) & alive
            target = self.eye[np.maximum(cls, 0)]
            net.step(x, target, ocfg.lr * end)  # alpha = 0 off the ends: no error there
            self.symbols += alive
            if not end.any():
                self.fresh[:] = False
                continue
            wrong = end & ~cnto_correct(net.y, np.maximum(cls, 0))
            self.fresh = wrong  # a wrong end ends the training stream
            self.stream_count += wrong
            self.sequences += end
            self.win += np.stack([end, wrong])
            self.log_curves(end)
            due = np.flatnonzero(end & (self.sequences % ocfg.test_every == 0))
            passed = self.test(due) if due.size else []
            over = np.flatnonzero(end & (self.sequences >= ocfg.max_sequences))
            over = [j for j in over if j not in passed]
            self.finish(passed, True)
            self.finish(over, False)
            alive[passed] = False
            alive[over] = False
        if not (np.isfinite(net.W).all() and np.isfinite(net.Wk).all()):
            bad = [self.nets[n] for j, n in enumerate(self.ids)
                   if not (np.isfinite(net.W[j]).all() and np.isfinite(net.Wk[j]).all())]
            raise FloatingPointError(f"non-finite weights: {bad}")
        self.keep_only(np.flatnonzero(alive))

    def log_curves(self, end):
        due = end & (self.sequences % self.ocfg.log_every == 0)
        for j in np.flatnonzero(due):
            cv = self.recs[self.ids[j]]["curves"]
            cv["sequences"].append(int(self.sequences[j]))
            cv["wrong_fraction"].append(float(self.win[1, j] / max(self.win[0, j], 1)))
            cv["streams_begun"].append(int(self.stream_count[j]))
            self.win[:, j] = 0.0


class _GroupUnpickler(pickle.Unpickler):
    """Finds this module's classes under either name it may have run as."""

    def find_class(self, module, name):
        if module in ("__main__", "cnto") and hasattr(sys.modules[__name__], name):
            return getattr(sys.modules[__name__], name)
        return super().find_class(module, name)


def save_group(g: OnlineGroup, path: Path) -> None:
    """Pickle a group between two blocks (atomically): it resumes bit-identically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(g, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def load_group(path: Path) -> OnlineGroup:
    with open(path, "rb") as f:
        return _GroupUnpickler(f).load()


def train_online(ocfg: OnlineConfig, nets, log=None, checkpoint: Path | None = None,
                 every: float = 600.0) -> list:
    """Train nets [(variant, seed), ...] online in lock-step; confirm each; one record per
    net. A net's record does not depend on which nets share its group. With `checkpoint`,
    the group resumes from that file if it exists and is saved to it every `every` s."""
    t0 = t_log = t_save = time.perf_counter()
    if checkpoint is not None and checkpoint.exists():
        g = load_group(checkpoint)
        if log is not None:
            log(f"resumed {checkpoint.name}: {len(g.ids)} nets training")
    else:
        g = OnlineGroup(ocfg, nets)
    c0 = time.process_time() - g.cpu_s  # CPU spent before a resume counts
    while g.ids.size:
        g.run_block()
        g.cpu_s = time.process_time() - c0
        now = time.perf_counter()
        if checkpoint is not None and now - t_save > every and g.ids.size:
            save_group(g, checkpoint)
            t_save = now
        if log is not None and now - t_log > 60.0 and g.ids.size:
            t_log = now
            done = sum(r["solved"] for r in g.recs)
            log(f"{len(g.ids)} nets training, {done} perfect, sequences "
                f"{g.sequences.min()}-{g.sequences.max()}, elapsed {now - t0:.0f}s")
    train_cpu = g.cpu_s
    for v in VARIANTS:
        rows = [n for n, (vn, _s) in enumerate(g.nets) if vn == v]
        if rows:
            confirm(ocfg, v, [g.recs[n] for n in rows], [g.final[n] for n in rows])
    cpu = time.process_time() - c0
    total = sum(r["training_symbols"] for r in g.recs)
    for r, p in zip(g.recs, g.final, strict=True):  # CPU shared out by training symbols
        r["cpu_time_s"] = cpu * r["training_symbols"] / max(total, 1)
        # training net-symbols per CPU-second of the whole group (the same in every record)
        r["throughput_net_symbols_per_cpu_s"] = total / max(train_cpu, 1e-9)
        r["final_params"] = p
    return g.recs


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------
def progress_report(outdir: Path) -> str:
    """What the paper-scheme checkpoints in outdir hold (progress, not a result): per
    checkpoint its nets, those still training, their training sequences and the CPU spent;
    per variant, over all checkpoints, nets perfect so far and still training."""
    ckpts = sorted(outdir.glob("cnto_checkpoint_*.pkl"))
    if not ckpts:
        return f"no paper-scheme checkpoints in {outdir}"
    lines, rows = [], {}
    for ck in ckpts:
        g = load_group(ck)
        seq = g.sequences if g.ids.size else np.zeros(1, dtype=np.int64)
        lines.append(f"- `{ck.name}`: {len(g.nets)} nets, {g.ids.size} still training "
                     f"(training sequences {seq.min():,}–{seq.max():,}), "
                     f"{g.cpu_s:,.0f} CPU-seconds so far")
        training = {int(n) for n in g.ids}
        for n, (v, _s) in enumerate(g.nets):
            d = rows.setdefault(v, [0, 0, 0])
            d[0] += 1
            d[1] += g.recs[n]["solved"]
            d[2] += n in training
    lines += ["", "Per variant, all checkpoints together (nets; perfect so far; still "
              "training):"]
    lines += [f"- `{v}`: {n}; {k}; {t}" for v, (n, k, t) in rows.items()]
    return "\n".join(lines)


def summarize(records: list) -> dict:
    """Per variant: nets perfect at a stop test (one run per net), confirmed, sequences."""
    out = {}
    for v in VARIANTS:
        rs = [r for r in records if r["variant"] == v]
        if not rs:
            continue
        out[v] = dict(
            n_seeds=len(rs), solved=sum(r["solved"] for r in rs),
            n_runs=len(rs), runs_solved=sum(r["solved"] for r in rs),  # one run per seed
            runs_confirmed=sum(r["confirm"]["perfect"] for r in rs),
            sequences_total=int(sum(r["training_sequences"] for r in rs)),
            sequences_to_solve=cer._stat([r["sequences_to_solve"] for r in rs]),
            training_sequences=cer._stat([r["training_sequences"] for r in rs]),
            confirm_correct_fraction=cer._stat([r["confirm"]["correct_fraction"] for r in rs]),
            cpu_time_s=cer._stat([r["cpu_time_s"] for r in rs]),
        )
        if all("training_streams" in r for r in rs):  # the paper's scheme
            out[v]["streams_total"] = int(sum(r["training_streams"] for r in rs))
            out[v]["training_streams"] = cer._stat([r["training_streams"] for r in rs])
    return out


def finalize_results(results: dict) -> dict:
    """Sort the records canonically and recompute the summary from them."""
    results["seeds"] = sorted(results["seeds"],
                              key=lambda r: (VARIANTS.index(r["variant"]), r["seed"]))
    results["summary"] = summarize(results["seeds"])
    return results


def results_table(results: dict) -> str:
    """Per variant: perfect nets (stop test), confirmed, sequences to perfect."""
    rows = ["| variant | perfect per seed (= per run) | confirmed | training sequences to "
            "perfect, median (min–max) | confirmation: sequences correct, median |",
            "|---|---|---|---|---|"]
    for v, d in results["summary"].items():
        s = d["sequences_to_solve"]
        seq = "–" if s["median"] is None else \
            f"{cer._fmt(s['median'])} ({cer._fmt(s['min'])}–{cer._fmt(s['max'])})"
        rows.append(f"| `{v}` | {d['solved']}/{d['n_seeds']} | {d['runs_confirmed']} | {seq} | "
                    f"{100 * d['confirm_correct_fraction']['median']:.1f}% |")
    return "\n".join(rows)


def headline(results: dict, paper_runs=None) -> str:
    """tools/run_all.py's summary cell of one run: perfect nets per variant."""
    scheme = "paper's scheme" if results.get("preset") == "paper" else results.get("preset")
    return (f"Table 3 (paper: only forget gates solve it), {scheme}: " + ", ".join(
        f"{v} {d['runs_solved']}/{d['n_runs']}" for v, d in results["summary"].items())
        + " perfect (per net = per run)")


def capped_nets(results: dict, variant: str) -> list:
    """The variant's nets that the sequence cap stopped unsolved: [(seed, streams), ...]."""
    cap = results["config"]["max_sequences"]
    return [(r["seed"], r["training_streams"]) for r in results["seeds"]
            if r["variant"] == variant and not r["solved"] and r["training_sequences"] >= cap]


def hidden_weight_shift(results: dict, arrays, variant: str, seed: int) -> float:
    """How far training moved a net's hidden layer (gates and cell inputs): the largest
    |w - w_init| over those weights, w from run.npz, w_init redrawn from the net's seed."""
    c = results["config"]
    net = OnlineConfig(n_blocks=c["n_blocks"], cells_per_block=c["cells_per_block"],
                       init_range=c["init_range"])
    p0 = init_params(net, data_rng(seed, "init", VARIANTS.index(variant)), variant)
    return float(max(np.abs(arrays[f"{variant}/seed{seed}/{k}"] - w).max()
                     for k, w in p0.items() if k not in ("W_k", "b_k")))


def paper_results_table(results: dict) -> str:
    """The paper-scheme run per variant: perfect nets with their 95% Wilson interval and
    mean training streams, confirmed, sequences to perfect, the mean training-stream
    length of the nets that stayed imperfect, and the nets the cap stopped."""
    rows = ["| variant | perfect per net (= per run) [95% CI] (mean training streams) | "
            "confirmed on 10 fresh streams | training sequences to perfect, median (min–max) "
            "| imperfect nets: mean training-stream length (sequences) | stopped by the cap |",
            "|---|---|---|---|---|---|"]
    for v, d in results["summary"].items():
        k, n = d["runs_solved"], d["n_runs"]
        streams = [r["training_streams"] for r in results["seeds"]
                   if r["variant"] == v and r["solved"]]
        perfect = f"{k}/{n}, " + cer._pct(k, n, cer.wilson(k, n)) + \
            (f" ({np.mean(streams):,.0f})" if streams else "")
        rest = [r["training_sequences"] / r["training_streams"] for r in results["seeds"]
                if r["variant"] == v and not r["solved"]]
        length = f"{np.mean(rest):,.1f}" if rest else "–"
        capped = capped_nets(results, v)
        cap = f"{len(capped)} of {n}" if capped else "none"
        rows.append(f"| `{v}` | {perfect} | {d['runs_confirmed']}/{k} | "
                    f"{cer._mmm(d['sequences_to_solve'])} | {length} | {cap} |")
    return "\n".join(rows)


# The paper's finding per row as our sources give it (its Table 3 numbers are not in them)
PAPER_FINDING = {"forget": "learns it", "no_forget": "fails", "reset": "–"}


def comparison_table(paper: dict, modern: dict) -> str:
    """Per variant: the paper's finding, ours under its scheme, ours under the modern one
    (perfect nets per run, confirmed)."""
    def cell(d):
        return f"{d['runs_solved']}/{d['n_runs']} ({d['runs_confirmed']} confirmed)" if d \
            else "not run"
    rows = ["| variant | paper | ours, paper's scheme | ours, modern scheme |",
            "|---|---|---|---|"]
    for v in VARIANTS:
        rows.append(f"| `{v}` | {PAPER_FINDING[v]} | {cell(paper['summary'].get(v))} | "
                    f"{cell(modern['summary'].get(v))} |")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
def _variants(text):
    vs = tuple(t.strip() for t in text.split(","))
    if not vs or any(v not in VARIANTS for v in vs) or len(set(vs)) != len(vs):
        raise argparse.ArgumentTypeError(f"unknown or repeated variants: {text!r} "
                                         f"(from {','.join(VARIANTS)})")
    return vs


def build_parser():
    ap = argparse.ArgumentParser(
        description="Continual noisy temporal order (Gers et al. 2000, Table 3).",
        formatter_class=cer._HelpFormatter)
    ap.add_argument("--preset", choices=("modern", "paper", "quick"), default="modern",
                    help="modern = Adam over BPTT chunks, quick = seconds, paper = the "
                         "paper's online scheme")
    ap.add_argument("--variants", type=_variants, default=None,
                    help="comma list from forget,no_forget,reset (default: the preset's)")
    ap.add_argument("--seeds", type=cer.parse_seeds, default="0-9",
                    help="seeds: 3 (seed 3), 0,2,5 (a list) or 0-9 (a range)")
    ap.add_argument("--jobs", type=cer._positive(int), default=os.cpu_count() or 1,
                    help="parallel worker processes")
    ap.add_argument("--stack", type=cer._positive(int), default=5,
                    help="modern/quick: nets (seeds of one variant) trained in lock-step per "
                         "process task")
    ap.add_argument("--outdir", default=None,
                    help=f"where results.json and run.npz go (default: runs/{cer.FOLDER}/cnto/ "
                         "at the repo root, git-ignored)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--max-sequences", type=cer._positive(int), default=None,
                    help="training budget per net in sequences (default: the preset's)")
    ap.add_argument("--checkpoint-every", type=cer._positive(float), default=600.0,
                    help="paper: seconds between checkpoints (outdir/cnto_checkpoint_*.pkl; "
                         "a rerun with the same arguments resumes from them)")
    ap.add_argument("--progress", action="store_true",
                    help="paper: print what the checkpoints in --outdir hold, then exit "
                         "(trains nothing)")
    return ap


def config_from_args(ap, args):
    over = dict(variants=args.variants, max_sequences=args.max_sequences)
    return dataclasses.replace(PRESETS[args.preset],
                               **{k: v for k, v in over.items() if v is not None})


def _run_task(task):
    cfg, variant, seeds, quiet = task
    log = None if quiet else (lambda s: print(s, flush=True))
    return train_stack(cfg, variant, seeds, log)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.outdir is not None and not args.outdir.strip():
        ap.error("--outdir must not be empty")
    cfg = config_from_args(ap, args)
    outdir = Path(args.outdir) if args.outdir is not None else DEFAULT_OUTDIR
    if args.progress:
        if not outdir.is_dir():
            ap.error(f"--outdir {outdir} is not a folder")
        try:
            print(progress_report(outdir))
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint
            print(f"error: cannot read the checkpoints in {outdir}: {e}", file=sys.stderr)
            return 2
        return 0
    cer.check_outdir(ap, outdir)
    command = ["python", f"{cer.FOLDER}/{Path(__file__).name}", *argv]
    try:
        if args.preset == "paper":
            return main_paper(args, cfg, outdir, command)
        return main_modern(args, cfg, outdir, command)
    except KeyboardInterrupt:
        print("interrupted: no results written", file=sys.stderr)
        return 130


def main_modern(args, cfg: Config, outdir: Path, command) -> int:
    """The modern scheme: seeds of one variant stacked --stack at a time per task."""
    t0 = time.perf_counter()
    env = cer.env_info(args.jobs, stack=args.stack)  # the tree as the run starts
    order = sorted(cfg.variants, key=lambda v: v != "no_forget")  # longest tasks first
    tasks = [(cfg, v, args.seeds[i:i + args.stack], args.quiet)
             for v in order for i in range(0, len(args.seeds), args.stack)]
    try:
        outs = cer.run_tasks(_run_task, tasks, args.jobs)
    except FloatingPointError as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 1
    return write_results(args, cfg, outdir, command, env, t0, [r for o in outs for r in o])


def _run_online_task(task):
    ocfg, nets, quiet, ckpt, every = task
    log = None if quiet else (lambda s: print(f"{time.strftime('%H:%M:%S')} {s}", flush=True))
    return train_online(ocfg, nets, log, ckpt, every)


def main_paper(args, ocfg: OnlineConfig, outdir: Path, command) -> int:
    """The paper's scheme: every (variant, seed) net of a group in lock-step; seeds dealt
    round-robin over --jobs groups, every variant of a seed in the same group."""
    t0 = time.perf_counter()
    env = cer.env_info(args.jobs)
    k = min(args.jobs, len(args.seeds))
    tasks = []
    for i in range(k):
        nets = [(v, s) for v in ocfg.variants for s in args.seeds[i::k]]
        ckpt = outdir / f"cnto_checkpoint_{i + 1}of{k}.pkl"
        if ckpt.exists():
            try:
                old = load_group(ckpt)
            except Exception as e:  # noqa: BLE001 - any unreadable checkpoint
                print(f"error: cannot read checkpoint {ckpt}: {e}", file=sys.stderr)
                return 2
            if old.nets != nets or old.ocfg != ocfg:
                print(f"error: checkpoint {ckpt} belongs to another run (other seeds, "
                      "variants, config or --jobs); remove it or use another --outdir",
                      file=sys.stderr)
                return 2
        tasks.append((ocfg, nets, args.quiet, ckpt, args.checkpoint_every))
    try:
        outs = cer.run_tasks(_run_online_task, tasks, args.jobs)
    except FloatingPointError as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 1
    code = write_results(args, ocfg, outdir, command, env, t0, [r for o in outs for r in o])
    for task in tasks:
        task[3].unlink(missing_ok=True)
    return code


def write_results(args, cfg, outdir: Path, command, env, t0, records) -> int:
    """results.json (records without weights) and run.npz (final weights per net)."""
    arrays = {f"{r['variant']}/seed{r['seed']}/{k}": v
              for r in records for k, v in r["final_params"].items()}
    clean = [{k: v for k, v in r.items() if k != "final_params"} for r in records]
    results = dict(experiment=EXPERIMENT, paper=PAPER_CITATION, command=command,
                   preset=args.preset, config=dataclasses.asdict(cfg), env=env,
                   wallclock_s=time.perf_counter() - t0, paper_reference=PAPER_REFERENCE,
                   summary={}, seeds=clean)
    results = finalize_results(cer._jsonable(results))
    np.savez_compressed(outdir / "run.npz", **arrays)
    cer.atomic_write_json(outdir / "results.json", results)
    if not args.quiet:
        print(results_table(results))
    print(f"wrote {outdir / 'results.json'}")
    print(f"wrote {outdir / 'run.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
