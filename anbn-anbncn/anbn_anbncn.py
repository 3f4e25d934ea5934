"""Counting languages with peephole LSTM: trained on n <= 10, tested up to n = 1000.

Reproduces F. A. Gers and J. Schmidhuber, "LSTM recurrent networks learn simple
context-free and context-sensitive languages", IEEE Transactions on Neural Networks 12(6),
1333-1340, 2001.

Claim: an LSTM with forget gates and peephole connections, trained to predict the set of
legal next symbols on the short strings of a^n b^n, a^n b^n c^n and a^n b^m B^m A^n
(n, m <= 10), generalises to much longer strings; a^n b^n c^n is a context-sensitive
language. The Kalman-filter follow-up (Gers, Perez-Ortiz, Eck & Schmidhuber 2002) reports
a^n b^n c^n correct up to n = 1000 from the 10 shortest strings: that is the bar here.

Every net is judged by the paper's criterion: a string is accepted iff at every step the
thresholded sigmoid outputs equal the set of legal next symbols. Test: every n = 1...1000
(a^n b^n, a^n b^n c^n) and the (n, m) grid up to 100 x 100 (a^n b^m B^m A^n). Training,
stopping and model selection see only the training strings (n, m <= 10).

Presets. `modern` (the headline): plain Adam rarely generalises to n = 1000 (its counters'
up and down increments differ by ~1e-3), so training is pushed towards saturated gates,
where every increment i*g is exactly +-1: a gate-saturation penalty switched on after a
third of the updates, and restarts. Each (language, model, seed) trains a population of
nets at once (a leading population axis on every array; Adam is elementwise, so the nets
never interact). Restart 0 gets no penalty: it is the plain run (`<model>_plain`). The
method's result (`<model>`) is, of the penalised restarts that accept every training
string, the most saturated on the training strings - chosen on n, m <= 10 only. Every
restart is tested on the whole test range, so per-run rates are reported beside the
per-seed ones; nets that accept every n <= 1000 are tested on to n = 10,000.
`paper`: the paper's procedure as far as known - one net per trial, online momentum SGD
(lr 1e-5, momentum 0.99), stop when every training string is accepted, at a stated budget.
`quick`: seconds, for the tests.

Headline command (writes the committed run; without --outdir it writes runs/anbn-anbncn/):

    python anbn-anbncn/anbn_anbncn.py --jobs 2 --outdir anbn-anbncn
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
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
FOLDER = HERE.name  # "anbn-anbncn"
DEFAULT_OUTDIR = HERE.parent / "runs" / FOLDER  # git-ignored; committed runs only on request
LANGUAGES = ("anbn", "anbncn", "anbmBmAn")
MODELS = ("peephole", "no_peephole", "rnn")
# Input alphabet (S = start, never a target) and output alphabet (T = end, never an input).
INPUTS = {"anbn": "Sab", "anbncn": "Sabc", "anbmBmAn": "SabBA"}
OUTPUTS = {"anbn": "abT", "anbncn": "abcT", "anbmBmAn": "abBAT"}
# Memory cells per language (one cell per memory block): one counter per nested pair.
CELLS = {"anbn": 1, "anbncn": 2, "anbmBmAn": 2}
EARLIER_E1 = {"anbn": 66, "anbncn": 30}  # earlier public version: accepted 1..65 / 1..29


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    languages: tuple = LANGUAGES  # languages run by main/train; languages[0] for the low-level API
    models: tuple = MODELS  # models run by main/train; models[0] for the low-level API
    train_max_n: int = 10  # training strings: every n (and m) in 1..train_max_n
    test_max_n: int = 1000  # test every n = 1..test_max_n (a^n b^n, a^n b^n c^n)
    long_test_max_n: int = 10000  # nets accepting every n <= test_max_n: tested on to here
    grid_max: int = 100  # test the (n, m) grid 1..grid_max squared (a^n b^m B^m A^n)
    restarts: int = 16  # independent nets trained at once per run (population axis)
    updates: int = 3000  # parameter updates per run (full batch; online: one per string)
    language_budget: tuple = (("anbncn", 16, 3000, 0.01), ("anbmBmAn", 3, 2000, 0.03))
    # ^ (language, restarts, updates, lr) overriding restarts, updates, lr for that language
    grid_models: tuple = ("peephole",)  # models run on a^n b^m B^m A^n (the costly language)
    rnn_hidden_per_cell: int = 4  # tanh-RNN hidden units per LSTM cell of the language
    init_scale: float = 1.0  # weights and biases drawn from U[-init_scale, init_scale]
    forget_bias: float = 2.0  # added to the forget-gate bias at init (remember by default)
    optimizer: str = "adam"  # "adam", "sgd" (momentum SGD, the paper's) or "dekf" (the
    # decoupled extended Kalman filter of the follow-ups: online, one net, LSTM only)
    lr: float = 0.01  # learning rate
    momentum: float = 0.99  # momentum for optimizer "sgd" (paper: 0.99)
    online: bool = False  # True: one update per training string (the paper's online
    # training, strings in a fresh random order each epoch); False: full-batch updates
    stop_when_solved: bool = False  # stop once every training string is accepted (checked
    # after every epoch over the training set: the paper's stopping rule)
    dekf_p0: float = 100.0  # DEKF: initial covariance P_i = dekf_p0 * I per weight group [?]
    dekf_r: tuple = (100.0, 3.0)  # DEKF: measurement noise R, annealed first -> second [?]
    dekf_q: tuple = (1e-2, 1e-6)  # DEKF: process noise Q, annealed first -> second [?]
    dekf_anneal: int = 1000  # DEKF: strings over which R and Q are annealed [?]
    gradient: str = "full"  # "full" BPTT, or "truncated": no error flows back through the
    # peepholes into the cell state (the 2002 peephole paper's rule)
    sat_penalty: float = 0.1  # weight of the gate-saturation penalty (0 = plain training)
    sat_start: float = 1 / 3  # fraction of the updates before the penalty is switched on
    plain_first: bool = True  # restart 0 never gets the penalty: the plain-training baseline
    n_snapshots: int = 40  # parameter snapshots of the selected restart kept for the GIF
    n_curve: int = 60  # points on the saved training-loss curves
    checkpoint_every_s: float = 0.0  # > 0: a run checkpoints this often (main's --outdir)
    log_every_s: float = 5.0  # progress line period (seconds)


PRESETS = {
    # Today's fast headline: Adam, full batch, 16 restarts (15 penalised), selection.
    "modern": Config(),
    # The paper's procedure as far as known: one net per trial, online momentum SGD
    # (lr 1e-5, momentum 0.99), no penalty, no restarts, stop when the training set is
    # accepted; budget: 20,000 training strings per trial (the paper's budget is [?]).
    "paper": Config(languages=("anbn", "anbncn"), models=("peephole",), restarts=1,
                    updates=20_000, language_budget=(), optimizer="sgd", lr=1e-5,
                    momentum=0.99, online=True, stop_when_solved=True, sat_penalty=0.0,
                    init_scale=0.1, n_curve=100, checkpoint_every_s=120.0),
    "quick": Config(languages=("anbn", "anbmBmAn"), models=("peephole", "rnn"),
                    test_max_n=60, long_test_max_n=120, grid_max=12, restarts=3,
                    updates=60, n_snapshots=4, n_curve=5,
                    language_budget=(("anbmBmAn", 2, 30, 0.03),)),
}
# The committed runs of each preset: {preset: {subdir: extra argv}} (SPEC section 2).
RUNS = {"modern": {".": []},
        "paper": {"paper": ["--preset", "paper"],
                  "paper_dekf": ["--preset", "paper", "--optimizer", "dekf", "--updates",
                                 "10000"]},
        "quick": {".": ["--preset", "quick"]}}


def single(cfg: Config, language: str, model: str) -> Config:
    """The config of one (language, model) run (its language's restarts and updates)."""
    restarts, updates, lr = cfg.restarts, cfg.updates, cfg.lr
    for lang, r, u, rate in cfg.language_budget:
        if lang == language:
            restarts, updates, lr = r, u, rate
    return dataclasses.replace(cfg, languages=(language,), models=(model,),
                               restarts=restarts, updates=updates, lr=lr, language_budget=())


# ---------------------------------------------------------------------------------------
# Task: strings, legal next-symbol sets, padding
# ---------------------------------------------------------------------------------------
def string_lengths(language: str, n: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Number of input symbols (S plus the string body; T is only ever a target)."""
    if language == "anbn":
        return 2 * n + 1
    if language == "anbncn":
        return 3 * n + 1
    return 2 * n + 2 * m + 1


def make_strings(language: str, n, m=None) -> dict:
    """Padded batch of strings S w (w in the language) with legal-next-symbol targets.

    Returns sym (T, B) input-symbol indices, target (T, B, K) bool (the legal set after each
    input), mask (T, B) bool (real steps), length (B,), n, m. Strings are stored in the
    given order; padding repeats the last input and is masked out.
    """
    n = np.asarray(n, dtype=np.int64).reshape(-1)
    m = np.zeros_like(n) if m is None else np.asarray(m, dtype=np.int64).reshape(-1)
    if n.size == 0 or np.any(n < 1) or (language == "anbmBmAn" and np.any(m < 1)):
        raise ValueError("every n (and m) must be >= 1")
    length = string_lengths(language, n, m)
    t = np.arange(int(length.max()))[:, None]  # (T, 1) position of the input symbol
    n_, m_ = n[None, :], m[None, :]
    ins, outs = INPUTS[language], OUTPUTS[language]
    ii = {ch: k for k, ch in enumerate(ins)}
    oi = {ch: k for k, ch in enumerate(outs)}
    T, B = t.shape[0], n.size
    sym = np.zeros((T, B), dtype=np.int64)
    target = np.zeros((T, B, len(outs)), dtype=bool)
    # Phases: (symbol, first t, last t) in input positions; S is at t = 0.
    if language == "anbn":
        phases = [("a", 1, n_), ("b", n_ + 1, 2 * n_)]
    elif language == "anbncn":
        phases = [("a", 1, n_), ("b", n_ + 1, 2 * n_), ("c", 2 * n_ + 1, 3 * n_)]
    else:
        phases = [("a", 1, n_), ("b", n_ + 1, n_ + m_), ("B", n_ + m_ + 1, n_ + 2 * m_),
                  ("A", n_ + 2 * m_ + 1, 2 * n_ + 2 * m_)]
    target[:, :, oi["a"]] |= t == 0  # after S: a (n >= 1)
    for k, (ch, lo, hi) in enumerate(phases):
        inside = (t >= lo) & (t <= hi)
        sym[np.broadcast_to(inside, (T, B))] = ii[ch]
        last = t == hi
        if ch == "a":  # after any a: another a or the next phase's first symbol
            target[:, :, oi["a"]] |= inside
            target[:, :, oi["b"]] |= inside
        elif language == "anbmBmAn" and ch == "b":  # after any b: b or B
            target[:, :, oi["b"]] |= inside
            target[:, :, oi["B"]] |= inside
        else:  # counted phase: same symbol until the count is used up, then the next
            nxt = phases[k + 1][0] if k + 1 < len(phases) else "T"
            target[:, :, oi[ch]] |= inside & ~last
            target[:, :, oi[nxt]] |= inside & last
    mask = t < length[None, :]
    # Padding repeats the last real input (masked anyway).
    pad = ~mask
    sym[pad] = np.broadcast_to(sym[length - 1, np.arange(B)][None, :], (T, B))[pad]
    return dict(sym=sym, target=target, mask=mask, length=length, n=n, m=m)


def training_set(cfg: Config, language: str) -> dict:
    """All training strings: n (and m) = 1..train_max_n, longest first."""
    ks = np.arange(1, cfg.train_max_n + 1)
    if language == "anbmBmAn":
        n, m = np.meshgrid(ks, ks, indexing="ij")
        n, m = n.ravel(), m.ravel()
    else:
        n, m = ks, None
    batch = make_strings(language, n, m)
    order = np.argsort(-batch["length"], kind="stable")
    return {k: (v[:, order] if v.ndim >= 2 else v[order]) for k, v in batch.items()}


def sample_batch(cfg: Config, rng: np.random.Generator) -> dict:
    """A small training batch (a random subset of the training strings, padded + masked)."""
    full = training_set(cfg, cfg.languages[0])
    B = full["length"].size
    pick = np.sort(rng.choice(B, size=min(B, 4), replace=False))
    out = {k: (v[:, pick] if v.ndim >= 2 else v[pick]) for k, v in full.items()}
    T = int(out["length"].max())
    return {k: (v[:T] if v.ndim >= 2 else v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------
# Model: parameters
# ---------------------------------------------------------------------------------------
def model_of(params: dict) -> str:
    if "W_hh" in params:
        return "rnn"
    return "peephole" if "p" in params else "no_peephole"


def n_units(cfg: Config, language: str, model: str) -> int:
    cells = CELLS[language]
    return cells * cfg.rnn_hidden_per_cell if model == "rnn" else cells


def init_params(cfg: Config, rng: np.random.Generator) -> dict:
    """Population of cfg.restarts nets for (cfg.languages[0], cfg.models[0]); float64.

    LSTM (H cells, one per block; gate order i, f, o, g along the 4H axis):
      W_x (P, D, 4H) inputs -> gates and cell input; W_h (P, H, 4H) cell outputs y^c_{t-1}
      -> gates and cell input; b (P, 4H); p (P, 3, H) peephole weights (rows i, f, o);
      V_y (P, H, K) cell outputs -> output units; V_x (P, D, K) input -> output shortcut;
      c (P, K) output biases.
    tanh RNN: W_x (P, D, R), W_hh (P, R, R), b (P, R), V_y, V_x, c as above.
    """
    language, model = cfg.languages[0], cfg.models[0]
    P, D, K = cfg.restarts, len(INPUTS[language]), len(OUTPUTS[language])
    H = n_units(cfg, language, model)
    G = H if model == "rnn" else 4 * H

    def u(*shape):
        return rng.uniform(-cfg.init_scale, cfg.init_scale, size=(P, *shape))

    params = {"W_x": u(D, G)}
    params["W_hh" if model == "rnn" else "W_h"] = u(H, G)
    params["b"] = u(G)
    if model != "rnn":
        params["b"][:, H:2 * H] += cfg.forget_bias
    if model == "peephole":
        params["p"] = u(3, H)
    params.update(V_y=u(H, K), V_x=u(D, K), c=u(K))
    return params


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# ---------------------------------------------------------------------------------------
# Forward pass (training: whole padded batch, every step stored for BPTT)
# ---------------------------------------------------------------------------------------
def forward(params: dict, sym: np.ndarray, peep_s=None) -> dict:
    """Run every net of the population over the batch; return logits and the cache.

    sym (T, B) input-symbol indices. Returns u (T, P, B, K) output logits and per-step
    activations, each (T, P, B, H). peep_s (T, P, B, H), if given, is what the peepholes
    read in place of the live cell states (s_{t-1} for i, f; s_t for o): held fixed, it
    turns the full gradient into the truncated one (used by the tests only).
    """
    model = model_of(params)
    W_x, b = params["W_x"], params["b"]
    T, B = sym.shape
    P, _, G = W_x.shape
    zx = np.ascontiguousarray((W_x[:, sym] + b[:, None, None, :]).transpose(1, 0, 2, 3))
    cache = {"model": model, "sym": sym}
    if model == "rnn":
        W_hh = params["W_hh"]
        Hs = np.empty((T, P, B, G))
        h = np.zeros((P, B, G))
        for t in range(T):
            # h_t = tanh(W_x x_t + W_hh h_{t-1} + b)
            h = np.tanh(zx[t] + h @ W_hh)
            Hs[t] = h
        cache["h"] = Hs
        Y = Hs
    else:
        W_h = params["W_h"]
        H = G // 4
        peep = model == "peephole"
        if peep:
            p_i, p_f, p_o = (params["p"][:, k, None, :] for k in range(3))  # (P, 1, H)
        Ig, Fg, Og, Gc, S, HS, Y = (np.empty((T, P, B, H)) for _ in range(7))
        s = np.zeros((P, B, H))
        y = np.zeros((P, B, H))
        for t in range(T):
            z = zx[t] + y @ W_h  # net inputs of i, f, o, g from x_t and y^c_{t-1}
            zi, zf, zo = z[..., :H], z[..., H:2 * H], z[..., 2 * H:3 * H]
            if peep:  # input and forget gates peep at s_{t-1}
                s_seen = s if peep_s is None else (peep_s[t - 1] if t else 0.0 * s)
                zi = zi + p_i * s_seen
                zf = zf + p_f * s_seen
            i = sigmoid(zi)  # y^in
            f = sigmoid(zf)  # y^phi
            g = np.tanh(z[..., 3 * H:])  # g(net_c)
            S_prev = s
            s = f * S_prev + i * g  # s_c(t) = y^phi s_c(t-1) + y^in g(net_c)
            if peep:  # the output gate peeps at s_t
                zo = zo + p_o * (s if peep_s is None else peep_s[t])
            o = sigmoid(zo)  # y^out
            hs = np.tanh(s)  # h(s_c)
            y = o * hs  # y^c = y^out h(s_c)
            Ig[t], Fg[t], Og[t], Gc[t], S[t], HS[t], Y[t] = i, f, o, g, s, hs, y
        cache.update(i=Ig, f=Fg, o=Og, g=Gc, s=S, hs=HS)
    cache["y"] = Y
    # Output units: y^k = sigmoid(V_y y^c_t + V_x x_t + c).
    ux = params["V_x"][:, sym].transpose(1, 0, 2, 3)  # (T, P, B, K)
    cache["u"] = Y @ params["V_y"] + ux + params["c"][None, :, None, :]
    return cache


# ---------------------------------------------------------------------------------------
# Loss: sigmoid cross-entropy per output unit, mean over real steps and units, per net
# ---------------------------------------------------------------------------------------
def _loss_from_logits(u, target, mask):
    """Sum over the population of each net's mean cross-entropy; and dL/du."""
    tgt = target[:, None, :, :].astype(np.float64)  # (T, 1, B, K)
    w = mask[:, None, :, None] / (mask.sum() * target.shape[-1])
    ce = np.logaddexp(0.0, u) - tgt * u  # -t log y - (1 - t) log(1 - y), y = sigmoid(u)
    return float(np.sum(ce * w)), (sigmoid(u) - tgt) * w


def _sat_weight(batch, cache, cfg):
    """(T, P, B, 1) weight of the saturation penalty: lambda_p / (real steps x units).

    lambda_p = cfg.sat_penalty for every restart except restart 0 when cfg.plain_first.
    """
    T, P, B, H = cache["y"].shape
    lam = np.full(P, cfg.sat_penalty)
    if cfg.plain_first:
        lam[0] = 0.0
    w = batch["mask"] / (batch["mask"].sum() * H)  # (T, B)
    return lam[None, :, None, None] * w[:, None, :, None]


def saturation_penalty(cache: dict, batch: dict, cfg: Config) -> float:
    """lambda * mean over real steps and cells of i(1-i) + f(1-f) + (1-g^2) (LSTM), or of
    (1-h^2) (RNN): zero only when every gate and squash is saturated, which makes the
    per-symbol increments i*g of a counter exactly +-1 and so symmetric."""
    if cfg.sat_penalty == 0.0:
        return 0.0
    w = _sat_weight(batch, cache, cfg)
    if cache["model"] == "rnn":
        act = 1.0 - cache["h"] ** 2
    else:
        i, f, g = cache["i"], cache["f"], cache["g"]
        act = i * (1.0 - i) + f * (1.0 - f) + (1.0 - g * g)
    return float(np.sum(w * act))


def loss(params: dict, batch: dict, cfg: Config) -> float:
    cache = forward(params, batch["sym"])
    L = _loss_from_logits(cache["u"], batch["target"], batch["mask"])[0]
    return L + saturation_penalty(cache, batch, cfg)


# ---------------------------------------------------------------------------------------
# Backward pass: hand-written BPTT through the whole padded batch
# ---------------------------------------------------------------------------------------
def _flat(a):
    """(T, P, B, G) -> (P, T*B, G)."""
    T, P, B, G = a.shape
    return a.transpose(1, 0, 2, 3).reshape(P, T * B, G)


def _outer_sum(a, b):
    """sum over t, b of a[t, p, b, :] outer b[t, p, b, :] -> (P, H, G)."""
    return _flat(a).transpose(0, 2, 1) @ _flat(b)


def loss_and_grads(params: dict, batch: dict, cfg: Config):
    cache = forward(params, batch["sym"])
    L, dU = _loss_from_logits(cache["u"], batch["target"], batch["mask"])
    L += saturation_penalty(cache, batch, cfg)
    wsat = _sat_weight(batch, cache, cfg)  # (T, P, B, 1)
    sat = cfg.sat_penalty != 0.0
    sym = batch["sym"]
    T, B = sym.shape
    D = params["W_x"].shape[1]
    X1 = np.eye(D)[sym].reshape(T * B, D).T  # (D, T*B) one-hot inputs
    Y = cache["y"]
    grads = {
        # u = Y V_y + V_x[x] + c
        "V_y": _outer_sum(Y, dU),
        "V_x": X1 @ _flat(dU),
        "c": dU.sum(axis=(0, 2)),
    }
    dY = dU @ params["V_y"].transpose(0, 2, 1)  # (T, P, B, H)
    P = dY.shape[1]
    if cache["model"] == "rnn":
        W_hh = params["W_hh"]
        Hs = cache["h"]
        dZ = np.empty_like(Hs)
        dh_next = np.zeros((P, B, Hs.shape[-1]))
        for t in range(T - 1, -1, -1):
            dh = dY[t] + dh_next  # h_t feeds u_t and z_{t+1}
            dZ[t] = dh * (1.0 - Hs[t] ** 2)  # inverts h_t = tanh(z_t)
            if sat:  # penalty (1 - h^2)
                dZ[t] -= wsat[t] * 2.0 * Hs[t] * (1.0 - Hs[t] ** 2)
            dh_next = dZ[t] @ W_hh.transpose(0, 2, 1)  # inverts z_t += W_hh h_{t-1}
        H_prev = np.concatenate([np.zeros_like(Hs[:1]), Hs[:-1]])
        grads["W_hh"] = _outer_sum(H_prev, dZ)
    else:
        peep = cache["model"] == "peephole"
        # truncated: the 2002 rule, no error flows from the gates back through the
        # peepholes into the cell state (the peephole weights still get their gradient)
        through = peep and cfg.gradient == "full"
        W_h = params["W_h"]
        Ig, Fg, Og, Gc, S, HS = (cache[k] for k in ("i", "f", "o", "g", "s", "hs"))
        H = Ig.shape[-1]
        if peep:
            p_i, p_f, p_o = (params["p"][:, k, None, :] for k in range(3))
        S_prev = np.concatenate([np.zeros_like(S[:1]), S[:-1]])
        dZ = np.empty((T, P, B, 4 * H))
        dy_next = np.zeros((P, B, H))  # error reaching y^c_t through z_{t+1}
        ds_next = np.zeros((P, B, H))  # error reaching s_t through s_{t+1} and peepholes
        W_hT = W_h.transpose(0, 2, 1)
        for t in range(T - 1, -1, -1):
            i, f, o, g, hs = Ig[t], Fg[t], Og[t], Gc[t], HS[t]
            dy = dY[t] + dy_next
            do = dy * hs  # inverts y^c = y^out h(s)
            dzo = do * o * (1.0 - o)  # inverts y^out = sigmoid(z_o)
            ds = ds_next + dy * o * (1.0 - hs * hs)  # inverts h(s) = tanh(s)
            if through:
                ds = ds + dzo * p_o  # inverts z_o += p_o s_t
            dzi = ds * g * i * (1.0 - i)  # inverts s += y^in g, y^in = sigmoid(z_i)
            dzg = ds * i * (1.0 - g * g)  # inverts g = tanh(z_g)
            dzf = ds * S_prev[t] * f * (1.0 - f)  # inverts s = y^phi s_{t-1} + ...
            if sat:  # penalty i(1-i) + f(1-f) + (1-g^2), differentiated locally
                dzi = dzi + wsat[t] * i * (1.0 - i) * (1.0 - 2.0 * i)
                dzf = dzf + wsat[t] * f * (1.0 - f) * (1.0 - 2.0 * f)
                dzg = dzg - wsat[t] * 2.0 * g * (1.0 - g * g)
            ds_next = ds * f  # inverts s_t = y^phi s_{t-1}
            if through:
                ds_next = ds_next + dzi * p_i + dzf * p_f  # inverts z_i, z_f += p s_{t-1}
            dz = dZ[t]
            dz[..., :H], dz[..., H:2 * H], dz[..., 2 * H:3 * H], dz[..., 3 * H:] = \
                dzi, dzf, dzo, dzg
            dy_next = dz @ W_hT  # inverts z_t += W_h y^c_{t-1}
        Y_prev = np.concatenate([np.zeros_like(Y[:1]), Y[:-1]])
        grads["W_h"] = _outer_sum(Y_prev, dZ)
        if peep:
            grads["p"] = np.stack([
                (dZ[..., :H] * S_prev).sum(axis=(0, 2)),
                (dZ[..., H:2 * H] * S_prev).sum(axis=(0, 2)),
                (dZ[..., 2 * H:3 * H] * S).sum(axis=(0, 2)),
            ], axis=1)
    # z_t = W_x x_t + b + ...
    grads["W_x"] = X1 @ _flat(dZ)
    grads["b"] = dZ.sum(axis=(0, 2))
    return L, {k: grads[k] for k in params}


# Every language x model with the saturation penalty on (one net); plus a population of
# two where restart 0 is the plain (penalty-free) net, and the plain loss alone.
GRADCHECK_CASES = [
    (f"{lang}-{model}", Config(languages=(lang,), models=(model,), restarts=1,
                               plain_first=False, train_max_n=3, sat_penalty=0.3,
                               sat_start=0.0))
    for lang in LANGUAGES for model in MODELS
] + [
    ("anbn-peephole-pop2", Config(languages=("anbn",), models=("peephole",), restarts=2,
                                  train_max_n=3, sat_penalty=0.3)),
    ("anbn-peephole-plain", Config(languages=("anbn",), models=("peephole",), restarts=1,
                                   train_max_n=3, sat_penalty=0.0)),
]


# ---------------------------------------------------------------------------------------
# The paper's criterion: accept iff every step's thresholded outputs equal the legal set
# ---------------------------------------------------------------------------------------
def training_scores(params: dict, batch: dict):
    """Per net, on the training strings only: (all accepted, margin, non-saturation).

    margin: min over steps, strings and output units of u * (2 target - 1) (> 0 iff every
    training string is accepted). non-saturation: mean over real steps and cells of
    i(1-i) + f(1-f) + (1-g^2) (LSTM) or 1-h^2 (RNN) - the penalty's quantity.
    """
    cache = forward(params, batch["sym"])
    u = cache["u"]  # (T, P, B, K)
    signed = u * np.where(batch["target"], 1.0, -1.0)[:, None]
    signed = np.where(batch["mask"][:, None, :, None], signed, np.inf)
    margin = signed.min(axis=(0, 2, 3))
    if cache["model"] == "rnn":
        act = 1.0 - cache["h"] ** 2
    else:
        i, f, g = cache["i"], cache["f"], cache["g"]
        act = i * (1.0 - i) + f * (1.0 - f) + (1.0 - g * g)
    m = batch["mask"][:, None, :, None]
    nonsat = (act * m).sum(axis=(0, 2, 3)) / (m.sum() * act.shape[-1])
    return margin > 0, margin, nonsat


def select_restart(train_ok, margin, nonsat, plain_first: bool) -> int:
    """The method's pick, from training-string scores only: among the penalised restarts
    that accept every training string, the most saturated one (smallest non-saturation);
    if none accepts them all, the one with the largest margin."""
    cand = np.arange(1 if plain_first and margin.size > 1 else 0, margin.size)
    good = cand[train_ok[cand]]
    if good.size:
        return int(good[np.argmin(nonsat[good])])
    return int(cand[np.argmax(margin[cand])])


def accept(params: dict, batch: dict, chunk: int = 0) -> np.ndarray:
    """(P, B) bool: string b accepted by net p. One pass over all strings at once.

    Strings are processed longest first, so the strings still running at step t are a
    prefix of the batch: each step touches only those (padding never computed).
    """
    model = model_of(params)
    order = np.argsort(-batch["length"], kind="stable")
    sym, target = batch["sym"][:, order], batch["target"][:, order]
    length = batch["length"][order]
    T, B = sym.shape
    W_x, b, V_y, V_x, c = (params[k] for k in ("W_x", "b", "V_y", "V_x", "c"))
    P, _, G = W_x.shape
    ok = np.ones((P, B), dtype=bool)
    active = np.searchsorted(-length, -np.arange(T), side="left")  # strings with len > t
    H = G if model == "rnn" else G // 4
    s = np.zeros((P, B, H))
    y = np.zeros((P, B, H))
    peep = model == "peephole"
    if peep:
        p_i, p_f, p_o = (params["p"][:, k, None, :] for k in range(3))
    for t in range(T):
        na = int(active[t])
        x = sym[t, :na]
        if model == "rnn":
            y = np.tanh(W_x[:, x] + b[:, None, :] + y[:, :na] @ params["W_hh"])
        else:
            z = W_x[:, x] + b[:, None, :] + y[:, :na] @ params["W_h"]
            sp = s[:, :na]
            zi, zf, zo = z[..., :H], z[..., H:2 * H], z[..., 2 * H:3 * H]
            if peep:
                zi = zi + p_i * sp
                zf = zf + p_f * sp
            s = sigmoid(zf) * sp + sigmoid(zi) * np.tanh(z[..., 3 * H:])
            if peep:
                zo = zo + p_o * s
            y = sigmoid(zo) * np.tanh(s)
        u = y @ V_y + V_x[:, x] + c[:, None, :]
        ok[:, :na] &= np.all((u > 0) == target[t, :na][None], axis=-1)
    out = np.empty_like(ok)
    out[:, order] = ok
    return out


def _bmm(y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """y (P, B, H) @ W (P, H, G); for H <= 2 as broadcast multiply-adds (faster than
    matmul for one or two cells)."""
    if y.shape[-1] > 2:
        return y @ W
    out = y[..., 0:1] * W[:, None, 0]
    for h in range(1, y.shape[-1]):
        out += y[..., h:h + 1] * W[:, None, h]
    return out


class _Stepper:
    """One step of every net of a population on a batch of strings that all read the same
    input symbol (the phased evaluator below): the forward equations of `forward`."""

    def __init__(self, params: dict, language: str):
        self.model = model_of(params)
        self.p = params
        self.G = params["W_x"].shape[-1]
        self.H = self.G if self.model == "rnn" else self.G // 4
        self.K = params["c"].shape[-1]
        self.ins, self.outs = INPUTS[language], OUTPUTS[language]

    def zero_state(self, B: int) -> list:
        P = self.p["W_x"].shape[0]
        return [np.zeros((P, B, self.H)) for _ in range(1 if self.model == "rnn" else 2)]

    def step(self, state: list, na: int, ch: str) -> np.ndarray:
        """Advance the first na strings of state (in place) by the input symbol ch;
        return their output logits (P, na, K)."""
        p, H, x = self.p, self.H, self.ins.index(ch)
        zx = (p["W_x"][:, x] + p["b"])[:, None, :]  # (P, 1, G) the same for every string
        if self.model == "rnn":
            h = np.tanh(zx + _bmm(state[0][:, :na], p["W_hh"]))
            state[0][:, :na] = h
            y = h
        else:
            sp, yp = state[0][:, :na], state[1][:, :na]
            z = zx + _bmm(yp, p["W_h"])
            zi, zf, zo = z[..., :H], z[..., H:2 * H], z[..., 2 * H:3 * H]
            if self.model == "peephole":
                zi = zi + p["p"][:, None, 0] * sp
                zf = zf + p["p"][:, None, 1] * sp
            s = sigmoid(zf) * sp + sigmoid(zi) * np.tanh(z[..., 3 * H:])
            if self.model == "peephole":
                zo = zo + p["p"][:, None, 2] * s
            y = sigmoid(zo) * np.tanh(s)
            state[0][:, :na], state[1][:, :na] = s, y
        u = _bmm(y, p["V_y"])
        u += (p["V_x"][:, x] + p["c"])[:, None, :]
        return u

    def legal(self, *chars) -> np.ndarray:
        t = np.zeros(self.K, dtype=bool)
        t[[self.outs.index(c) for c in chars]] = True
        return t


def _correct(u: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """(P, B) bool: thresholded outputs u (P, B, K) > 0 equal the legal set (K,)."""
    c = (u > 0) == legal
    r = c[..., 0]
    for k in range(1, c.shape[-1]):
        r &= c[..., k]
    return r


def a_phase(params: dict, language: str, N: int) -> dict:
    """The shared prefix S a^k of every string, k = 1..N, run once (one string).

    Returns ok (P, N): S a^k's steps all correct (after S only a; after each a, a or b),
    and the states after S a^k, each (N, P, H).
    """
    st = _Stepper(params, language)
    state = st.zero_state(1)
    ok = _correct(st.step(state, 1, "S"), st.legal("a"))[:, 0]  # (P,)
    want = st.legal("a", "b")
    oks = np.empty((N, ok.size), dtype=bool)
    states = [np.empty((N, *x[:, 0].shape)) for x in state]
    for k in range(N):
        ok = ok & _correct(st.step(state, 1, "a"), want)[:, 0]
        oks[k] = ok
        for dst, x in zip(states, state, strict=True):
            dst[k] = x[:, 0]
    return {"ok": oks.T, "states": states}


def accept_counts(params: dict, language: str, ns, prefix: dict | None = None) -> np.ndarray:
    """(P, len(ns)) bool: is S a^n b^n T (a^n b^n) or S a^n b^n c^n T accepted, for every
    net and every n in ns, by the paper's criterion. Exactly `accept` on those strings, but
    phase by phase: the prefix S a^n is run once for all n (`a_phase`, or `prefix` from an
    earlier call with N >= max(ns)); then the b phase (and the c phase) of every string runs
    at once, longest first, from its own state after a^n, so step j touches only the
    strings with n >= j and every step reads one input symbol (no padding, no (T, B, K)
    target array). Cost: sum of 2n (or 3n) symbols per net instead of the padded length.
    """
    ns = np.asarray(ns, dtype=np.int64).reshape(-1)
    if ns.size == 0 or ns.min() < 1:
        raise ValueError("every n must be >= 1")
    N = int(ns.max())
    if prefix is None or prefix["ok"].shape[1] < N:
        prefix = a_phase(params, language, N)
    st = _Stepper(params, language)
    order = np.argsort(-ns, kind="stable")
    nd = ns[order]  # descending
    ok = prefix["ok"][:, nd - 1].copy()  # (P, B)
    state = [x[nd - 1].transpose(1, 0, 2).copy() for x in prefix["states"]]  # (P, B, H)
    phases = [("b", "c" if language == "anbncn" else "T")]
    if language == "anbncn":
        phases.append(("c", "T"))
    js = np.arange(1, N + 1)
    n_ge = np.searchsorted(-nd, -js, side="right")  # strings with n >= j: a prefix
    n_gt = np.searchsorted(-nd, -js, side="left")  # strings with n > j
    for ch, nxt in phases:
        more, last = st.legal(ch), st.legal(nxt)
        for j in range(1, N + 1):
            na, ng = int(n_ge[j - 1]), int(n_gt[j - 1])
            u = st.step(state, na, ch)
            ok[:, :ng] &= _correct(u[:, :ng], more)  # the count is not used up yet
            ok[:, ng:na] &= _correct(u[:, ng:na], last)  # strings whose phase ends at j
    out = np.empty_like(ok)
    out[:, order] = ok
    return out


def first_failures(params: dict, language: str, lo: int, hi: int):
    """(P,) first rejected n in lo..hi (hi + 1 if none) for nets that accept every n < lo.

    Tests n in chunks that double in size (lo..2lo-1, 2lo..4lo-1, ...) and drops a net at
    its first chunk with a failure, so a net that fails early costs little. float64.
    """
    P = params["W_x"].shape[0]
    first = np.full(P, hi + 1, dtype=np.int64)
    prefix = a_phase(params, language, hi)
    alive = np.arange(P)
    start = lo
    while start <= hi and alive.size:
        ns = np.arange(start, min(2 * start, hi + 1))
        start = int(ns[-1]) + 1
        sub = {k: v[alive] for k, v in params.items()}
        pre = {"ok": prefix["ok"][alive], "states": [x[:, alive] for x in prefix["states"]]}
        acc = accept_counts(sub, language, ns, pre)
        failed = ~acc.all(axis=1)
        for j in np.flatnonzero(failed):
            first[alive[j]] = int(ns[np.argmin(acc[j])])
        alive = alive[~failed]
    return first


def test_sweep(params: dict, cfg: Config, language: str) -> dict:
    """Acceptance of every net over the test range: n = 1..test_max_n, or the (n, m) grid."""
    if language == "anbmBmAn":
        ks = np.arange(1, cfg.grid_max + 1)
        n, m = np.meshgrid(ks, ks, indexing="ij")
        acc = accept(params, make_strings(language, n.ravel(), m.ravel()))
        return {"accepted": acc.reshape(-1, cfg.grid_max, cfg.grid_max)}
    return {"accepted": accept_counts(params, language, np.arange(1, cfg.test_max_n + 1))}


def sweep_metrics(accepted: np.ndarray, language: str) -> dict:
    """e1 (smallest failing n; max + 1 if none fails), contiguous range, total accepted.

    For the (n, m) grid, e1 is the smallest max(n, m) of a rejected pair, so e1 - 1 is
    the side of the largest fully accepted square starting at (1, 1).
    """
    if language == "anbmBmAn":
        N = accepted.shape[0]
        fails = ~accepted
        kmax = np.maximum.outer(np.arange(1, N + 1), np.arange(1, N + 1))
        e1 = int(kmax[fails].min()) if fails.any() else N + 1
        return {"e1": e1, "largest_square": e1 - 1,
                "accepted_fraction": float(accepted.mean()),
                "total_accepted": int(accepted.sum())}
    N = accepted.size
    fails = np.flatnonzero(~accepted)
    e1 = int(fails[0]) + 1 if fails.size else N + 1
    return {"e1": e1, "contiguous_max_n": e1 - 1, "total_accepted": int(accepted.sum())}


# ---------------------------------------------------------------------------------------
# The decoupled extended Kalman filter (DEKF) trainer of the Kalman-filter follow-ups
# ---------------------------------------------------------------------------------------
def kalman_trainer():
    """dekf.py beside this file (`--optimizer dekf`). It imports this module, so it is
    imported on demand, with this module registered under its own name (a script runs as
    `__main__`) so that both see one module."""
    sys.modules.setdefault("anbn_anbncn", sys.modules[__name__])
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import dekf
    return dekf



# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
def per_net_loss(params: dict, batch: dict, cfg: Config, penalised: bool) -> np.ndarray:
    """(P,) each net's own training loss (cross-entropy, plus its penalty if penalised)."""
    cache = forward(params, batch["sym"])
    tgt = batch["target"][:, None].astype(np.float64)
    w = batch["mask"][:, None, :, None] / (batch["mask"].sum() * batch["target"].shape[-1])
    out = np.sum((np.logaddexp(0.0, cache["u"]) - tgt * cache["u"]) * w, axis=(0, 2, 3))
    if penalised and cfg.sat_penalty != 0.0:
        act = (1.0 - cache["h"] ** 2 if cache["model"] == "rnn" else
               cache["i"] * (1 - cache["i"]) + cache["f"] * (1 - cache["f"])
               + (1 - cache["g"] ** 2))
        out = out + np.sum(_sat_weight(batch, cache, cfg) * act, axis=(0, 2, 3))
    return out


def _string_batches(batch: dict) -> list:
    """The training set as one batch per string (online training), each cut to its length."""
    out = []
    for j in range(batch["length"].size):
        L = int(batch["length"][j])
        out.append({k: (v[:L, j:j + 1] if v.ndim >= 2 else v[j:j + 1])
                    for k, v in batch.items()})
    return out


def _save_checkpoint(path: Path, state: dict) -> None:
    import pickle

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_", suffix=".pkl")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(state, f)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, cfg: Config):
    import pickle

    if not path.is_file():
        return None
    with open(path, "rb") as f:
        state = pickle.load(f)
    saved, now = state.get("config") or {}, dataclasses.asdict(cfg)
    default = dataclasses.asdict(Config())
    # the same run: every saved field equal, and any field added since at its default
    same = all(now.get(k) == v for k, v in saved.items()) and \
        all(now[k] == default[k] for k in now if k not in saved)
    return state if same else None


def train_one(cfg: Config, language: str, model: str, seed: int, log=None,
              ckpt_dir: Path | None = None) -> dict:
    """Train a population of rcfg.restarts nets on the training strings; test every one.

    Every restart is tested on the whole test range (and, if it accepts all of it, on to
    cfg.long_test_max_n), so the per-run rate is known. Returns {"records": [...],
    "arrays": {...}}: with restarts > 1 two records, `<model>_plain` (restart 0, no
    penalty) and `<model>` (the penalised restart chosen on the training strings only);
    with one restart a single record `<model>`. ckpt_dir: checkpoint/resume folder.
    """
    rcfg = single(cfg, language, model)
    plain_cfg = dataclasses.replace(rcfg, sat_penalty=0.0)
    P = rcfg.restarts
    tag = f"{language}_{model}_{seed}"
    ckpt = None if ckpt_dir is None else Path(ckpt_dir) / f"{tag}.pkl"
    done = None if ckpt_dir is None else Path(ckpt_dir) / f"{tag}.done.pkl"
    if done is not None:
        finished = _load_checkpoint(done, rcfg)
        if finished is not None:
            return finished["result"]
    ss = np.random.SeedSequence([seed, LANGUAGES.index(language), MODELS.index(model)])
    rng_init, rng_data = (np.random.default_rng(s) for s in ss.spawn(2))
    batch = training_set(cfg, language)  # fixed: every string with n (m) <= train_max_n
    n_str = int(batch["length"].size)
    singles = _string_batches(batch) if rcfg.online else None
    snap_at = set(np.unique(np.round(np.geomspace(1, rcfg.updates, cfg.n_snapshots))
                            .astype(int)).tolist()) | {0}
    curve_at = set(np.unique(np.linspace(0, rcfg.updates, cfg.n_curve).astype(int)).tolist())
    check_every = n_str if rcfg.online else 10
    st = _load_checkpoint(ckpt, rcfg) if ckpt is not None else None
    if st is None:
        params = init_params(rcfg, rng_init)
        st = {"params": params, "mom": {k: np.zeros_like(v) for k, v in params.items()},
              "vel": {k: np.zeros_like(v) for k, v in params.items()}, "step": 0,
              "active": np.ones(P, dtype=bool), "updates_used": np.zeros(P, dtype=np.int64),
              "snaps": [], "snap_steps": [], "curve_steps": [], "curve_loss": [],
              "order": np.arange(n_str), "cpu_s": 0.0, "symbols": 0,
              "config": dataclasses.asdict(rcfg)}
    else:
        rng_data.bit_generator.state = st["rng_data"]
    params, mom, vel = st["params"], st["mom"], st["vel"]
    b1, b2, eps = 0.9, 0.999, 1e-8
    t0 = last_log = last_ckpt = time.perf_counter()
    cpu0 = time.process_time() - st["cpu_s"]
    step = st["step"]
    kalman = kalman_trainer() if cfg.optimizer == "dekf" else None
    while step <= rcfg.updates:
        if step in snap_at:
            st["snaps"].append(np.concatenate([v.reshape(P, -1) for v in params.values()],
                                              axis=1))
            st["snap_steps"].append(step)
        if step == rcfg.updates or not st["active"].any():
            break
        on = step >= cfg.sat_start * rcfg.updates
        if rcfg.online:
            if step % n_str == 0:  # a fresh random order of the strings every epoch
                st["order"] = rng_data.permutation(n_str)
            b = singles[int(st["order"][step % n_str])]
        else:
            b = batch
        if cfg.optimizer == "dekf":
            if st.get("kf") is None:
                st["kf"] = kalman.dekf_init(params, rcfg)
            R, Q = kalman.dekf_noise(rcfg, step)
            params = kalman.dekf_string(params, st["kf"], b, R, Q)
            st["params"] = params
            L, grads = loss(params, b, plain_cfg), None
        else:
            L, grads = loss_and_grads(params, b, rcfg if on else plain_cfg)
        if not np.isfinite(L):
            raise FloatingPointError(
                f"{language}/{model} seed {seed}: non-finite loss at update {step}")
        if step in curve_at:
            st["curve_steps"].append(step)
            st["curve_loss"].append(per_net_loss(params, batch, rcfg, on))
        act = st["active"].astype(np.float64)
        for k in params if grads is not None else ():
            shape = (P,) + (1,) * (params[k].ndim - 1)
            a_k = act.reshape(shape)
            if cfg.optimizer == "adam":
                mom[k] = b1 * mom[k] + (1 - b1) * grads[k]
                vel[k] = b2 * vel[k] + (1 - b2) * grads[k] ** 2
                mhat = mom[k] / (1 - b1 ** (step + 1))
                vhat = vel[k] / (1 - b2 ** (step + 1))
                params[k] = params[k] - a_k * (rcfg.lr * mhat / (np.sqrt(vhat) + eps))
            else:
                mom[k] = cfg.momentum * mom[k] - rcfg.lr * grads[k]
                params[k] = params[k] + a_k * mom[k]
        st["updates_used"] += st["active"]
        st["symbols"] += int(b["length"].sum()) * int(st["active"].sum())
        step += 1
        st["step"] = step
        if rcfg.stop_when_solved and step % check_every == 0:
            st["active"] &= ~training_scores(params, batch)[0]  # solved nets stop
        now = time.perf_counter()
        if log is not None and now - last_log > cfg.log_every_s:
            last_log = now
            ok = training_scores(params, batch)[0]
            seen = int(st["updates_used"].sum()) * (1 if rcfg.online else n_str)
            log(f"{language}/{model} seed {seed}: update {step}/{rcfg.updates}, "
                f"strings seen {seen}, mean loss {L / P:.4f}, restarts accepting all "
                f"training strings {int(ok.sum())}/{P}, {now - t0:.0f} s")
        if ckpt is not None and cfg.checkpoint_every_s > 0 and \
                now - last_ckpt > cfg.checkpoint_every_s:
            last_ckpt = now
            st["cpu_s"] = time.process_time() - cpu0
            st["rng_data"] = rng_data.bit_generator.state
            _save_checkpoint(ckpt, st)
    if st["snap_steps"][-1] != step:  # stopped early: the final weights as last frame
        st["snaps"].append(np.concatenate([v.reshape(P, -1) for v in params.values()], axis=1))
        st["snap_steps"].append(step)
    train_s = time.perf_counter() - t0
    train_cpu = time.process_time() - cpu0
    used = st["updates_used"]
    per_update = 1 if rcfg.online else n_str  # strings per update
    symbols = st["symbols"]
    # Model selection on the training strings only (before any test string is seen).
    train_ok, margin, nonsat = training_scores(params, batch)
    sel = select_restart(train_ok, margin, nonsat, cfg.plain_first)
    # Every restart on the test range; those accepting all of it on to long_test_max_n.
    t1, cpu1 = time.perf_counter(), time.process_time()
    accepted = test_sweep(params, cfg, language)["accepted"]
    mets = [sweep_metrics(accepted[p], language) for p in range(P)]
    e1_long = [m["e1"] for m in mets]
    limit = cfg.grid_max if language == "anbmBmAn" else cfg.test_max_n
    passing = [p for p in range(P) if mets[p]["e1"] > limit]
    if language != "anbmBmAn" and passing and cfg.long_test_max_n > cfg.test_max_n:
        sub = {k: v[passing] for k, v in params.items()}
        ff = first_failures(sub, language, cfg.test_max_n + 1, cfg.long_test_max_n)
        for p, f in zip(passing, ff, strict=True):
            e1_long[p] = int(f)
    long_limit = max(cfg.long_test_max_n, cfg.test_max_n)
    test_s, test_cpu = time.perf_counter() - t1, time.process_time() - cpu1
    curves = np.array(st["curve_loss"]).reshape(-1, P)
    rows = [(model, sel, list(range(P)))] if P == 1 else \
        [(f"{model}_plain", 0, [0]), (model, sel, list(range(1 if cfg.plain_first else 0, P)))]
    records = []
    for variant, idx, runs in rows:
        records.append({
            "language": language, "model": model, "variant": f"{language}/{variant}",
            "seed": seed, "restart": idx, "restarts": P,
            "train_accepted_all": bool(train_ok[idx]),
            "train_margin": float(margin[idx]),
            "train_nonsaturation": float(nonsat[idx]),
            "train_restarts_accepting_all": int(train_ok.sum()),
            **mets[idx],
            "e1_long": e1_long[idx],
            # the runs behind this row, each tested on its own like the chosen net
            "n_runs": len(runs),
            "runs_solved": int(sum(mets[p]["e1"] > limit for p in runs)),
            "runs_solved_long": int(sum(e1_long[p] > long_limit for p in runs)),
            "runs_train_accepted_all": int(sum(train_ok[p] for p in runs)),
            "run_e1": [mets[p]["e1"] for p in runs],
            "run_e1_long": [e1_long[p] for p in runs],
            "updates": int(used[idx]),
            "updates_total": int(sum(used[p] for p in runs)),
            "sequences_seen": int(used[idx]) * per_update,
            "sequences_total": int(sum(used[p] for p in runs)) * per_update,
            "curve_updates": list(st["curve_steps"]),
            "curve_loss": [float(x) for x in curves[:, idx]],
            "train_wall_s": train_s, "test_wall_s": test_s,
            "train_cpu_time_s": train_cpu, "test_cpu_time_s": test_cpu,
            "train_symbols_per_s": symbols / max(train_s, 1e-9),
            "train_symbols_per_s_cpu": symbols / max(train_cpu, 1e-9),
        })
    keep = [0, sel] if P > 1 else [0]
    arrays = {
        "params": {k: v[keep].copy() for k, v in params.items()},
        "accepted": accepted[keep],
        "accepted_all_runs": accepted,
        "train_margin_all": margin, "train_nonsaturation_all": nonsat,
        "train_ok_all": train_ok,
        "snapshots": np.stack(st["snaps"])[:, sel],
        "snapshot_updates": np.array(st["snap_steps"]),
    }
    result = {"records": records, "arrays": arrays}
    if done is not None:
        _save_checkpoint(done, {"config": dataclasses.asdict(rcfg), "result": result})
        if ckpt.exists():
            ckpt.unlink()
    return result


def run_list(cfg: Config) -> list:
    """(language, model) pairs run: a^n b^m B^m A^n only with cfg.grid_models."""
    return [(lang, model) for lang in cfg.languages for model in cfg.models
            if lang != "anbmBmAn" or model in cfg.grid_models]


def train(cfg: Config, seed: int, log=None) -> dict:
    """One seed: every (language, model) of cfg; the per-variant records."""
    runs = [train_one(cfg, lang, model, seed, log) for lang, model in run_list(cfg)]
    return {"seed": seed, "records": [r for run in runs for r in run["records"]]}


# ---------------------------------------------------------------------------------------
# Results: summary, tables
# ---------------------------------------------------------------------------------------
def stat(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "values": list(values)}
    a = np.asarray(vals, dtype=np.float64)
    return {"median": float(np.median(a)), "min": float(a.min()), "max": float(a.max()),
            "values": list(values)}


def _limit(cfg: dict, language: str) -> int:
    return cfg["grid_max"] if language == "anbmBmAn" else cfg["test_max_n"]


def _long_limit(cfg: dict, language: str) -> int:
    lim = _limit(cfg, language)
    return lim if language == "anbmBmAn" else max(lim, cfg.get("long_test_max_n", 0))


def _variant_order(v):
    lang, var = v.split("/")
    base = var.replace("_plain", "")
    return (LANGUAGES.index(lang), MODELS.index(base), var.endswith("_plain") is False)


def _record_order(r):
    return (*_variant_order(r["variant"]), r["seed"])


def summarize(records: list, cfg: dict) -> dict:
    """Per variant: seeds and runs meeting the paper's criterion on the test range (and on
    the long range), e1 statistics, and the training spent in all."""
    summary = {}
    for v in sorted({r["variant"] for r in records}, key=_variant_order):
        rs = sorted((r for r in records if r["variant"] == v), key=lambda r: r["seed"])
        lang = rs[0]["language"]
        lim, llim = _limit(cfg, lang), _long_limit(cfg, lang)
        s = {"n_seeds": len(rs), "solved": int(sum(r["e1"] > lim for r in rs)),
             "n_runs": int(sum(r["n_runs"] for r in rs)),
             "runs_solved": int(sum(r["runs_solved"] for r in rs)),
             "solved_long": int(sum(r["e1_long"] > llim for r in rs)),
             "runs_solved_long": int(sum(r["runs_solved_long"] for r in rs)),
             "runs_train_accepted_all": int(sum(r["runs_train_accepted_all"] for r in rs)),
             "train_accepted_all": int(sum(r["train_accepted_all"] for r in rs)),
             "updates_total": int(sum(r["updates_total"] for r in rs)),
             "sequences_total": int(sum(r["sequences_total"] for r in rs)),
             "e1": stat([r["e1"] for r in rs]),
             "e1_long": stat([r["e1_long"] for r in rs]),
             "total_accepted": stat([r["total_accepted"] for r in rs]),
             "sequences_seen": stat([r["sequences_seen"] for r in rs])}
        if lang == "anbmBmAn":
            s["accepted_fraction"] = stat([r["accepted_fraction"] for r in rs])
            s["largest_square"] = stat([r["largest_square"] for r in rs])
        summary[v] = s
    return summary


def finalize_results(results: dict) -> dict:
    """Canonical record order and every key derived from the records, recomputed (used by
    main and by tools/merge_runs.py on the concatenated records of several runs)."""
    results["seeds"] = sorted(results["seeds"], key=_record_order)
    recs = results["seeds"]
    results["seeds_run"] = sorted({r["seed"] for r in recs})
    results["summary"] = summarize(recs, results["config"])
    main_recs = [r for r in recs if not r["variant"].endswith("_plain")]  # one per run
    results["throughput"] = {
        "train_symbols_per_s_median": float(np.median([r["train_symbols_per_s"]
                                                       for r in recs])),
        "train_symbols_per_s_cpu_median": float(np.median([r["train_symbols_per_s_cpu"]
                                                           for r in recs])),
        "test_cpu_time_s_max_per_run": float(max(r["test_cpu_time_s"] for r in recs)),
        "cpu_time_s_total": float(sum(r["train_cpu_time_s"] + r["test_cpu_time_s"]
                                      for r in main_recs)),
        "note": "cpu_time_s: the processes' own CPU time (time.process_time); a test "
                "covers every restart of a run"}
    return results


def _fmt(x):
    if x is None:
        return "–"
    if float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:.3g}"


def _fmt_e1(x, limit):
    if x is None:
        return "–"
    return f"> {limit:,}" if x > limit else _fmt(x)


def _fmt_big(x: int) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x:,}"


def _budget(cfg: dict, language: str):
    """(restarts, updates, lr) of a language in a results.json config."""
    for lang, r, u, rate in cfg.get("language_budget", ()):
        if lang == language:
            return r, u, rate
    return cfg["restarts"], cfg["updates"], cfg["lr"]


# What the papers report, by their own criterion (no per-trial success rates are given
# in the public copies; the follow-ups give a range).
PAPER_NUMBERS = {
    "anbn": "beyond n ≤ 10 (ranges [?])",
    "anbncn": "beyond n ≤ 10 (ranges [?])",
    "anbmBmAn": "learned (ranges [?])",
}
DEKF_NUMBERS = {"anbn": "[?]", "anbncn": "n up to 1000 and more", "anbmBmAn": "not run"}
LABELS = {"anbn": "a^n b^n", "anbncn": "a^n b^n c^n", "anbmBmAn": "a^n b^m B^m A^n"}


def _rate_cell(s: dict | None, cfg: dict, language: str) -> str:
    """'seeds x/10, runs y/150' on the test range (and to the long range, a^n b^n(c^n))."""
    if s is None:
        return "not run"
    long = language != "anbmBmAn" and _long_limit(cfg, language) > _limit(cfg, language)
    if s["n_runs"] == s["n_seeds"]:  # one net per seed: the per-run rate is the same
        txt = f"{s['solved']}/{s['n_seeds']} (1 net/seed)"
        if long:
            txt += f"; to n = {_long_limit(cfg, language):,}: {s['solved_long']}/{s['n_seeds']}"
        return txt + f"; median e1 {_fmt_e1(s['e1']['median'], _limit(cfg, language))}"
    txt = (f"seeds {s['solved']}/{s['n_seeds']}, runs {s['runs_solved']}/{s['n_runs']}")
    if long:
        txt += (f"; to n = {_long_limit(cfg, language):,}: {s['solved_long']}/{s['n_seeds']}, "
                f"runs {s['runs_solved_long']}/{s['n_runs']}")
    return txt


def _paper_summary(paper_runs, language: str, dekf: bool = False):
    """(summary row, config) of the language in the committed paper-procedure runs: the
    DEKF one (optimizer dekf) or the gradient one; (None, None) if not run."""
    for res in (paper_runs or {}).values():
        if (res["config"].get("optimizer") == "dekf") != dekf:
            continue
        s = res["summary"].get(f"{language}/peephole")
        if s is not None:
            return s, res["config"]
    return None, None


def results_table(results: dict, paper_runs=None) -> str:
    """The README results table: per language the papers' numbers, ours under the paper's
    procedure (momentum SGD; DEKF) and ours modern (per seed and per run); then every
    variant of the modern run."""
    cfg = results["config"]
    summ = results["summary"]
    rows = ["| peephole LSTM, trained on n ≤ 10; every tested string accepted | paper "
            "(gradient descent) | ours, paper procedure (momentum SGD) | DEKF follow-up | "
            "ours, DEKF | ours, modern (chosen net per seed; every run) |",
            "|---|---|---|---|---|---|"]
    for lang in LANGUAGES:
        s = summ.get(f"{lang}/peephole")
        ps, pcfg = _paper_summary(paper_runs, lang)
        ds, dcfg = _paper_summary(paper_runs, lang, dekf=True)
        if s is None and ps is None and ds is None:
            continue
        test = (f"grid n, m ≤ {cfg['grid_max']}" if lang == "anbmBmAn"
                else f"n ≤ {cfg['test_max_n']:,}")
        rows.append(f"| {LABELS[lang]} ({test}) | {PAPER_NUMBERS[lang]} | "
                    f"{_rate_cell(ps, pcfg, lang)} | {DEKF_NUMBERS[lang]} | "
                    f"{_rate_cell(ds, dcfg, lang)} | {_rate_cell(s, cfg, lang)} |")
    rows += ["", "Every variant of the modern run:", "",
             ("| language / model | solved: seeds | runs | e1 to n = 10,000: median "
              "(min – max) | n ≤ 10,000: seeds, runs | fit training set: seeds, runs | "
              "strings in all |"),
             "|---|---|---|---|---|---|---|"]
    for v, s in summ.items():
        lang = v.split("/")[0]
        lim, llim = _limit(cfg, lang), _long_limit(cfg, lang)
        if lang == "anbmBmAn":
            e1 = (f"{_fmt(100 * s['accepted_fraction']['median'])}% of the grid; e1 "
                  f"{_fmt_e1(s['e1']['median'], lim)} ({_fmt_e1(s['e1']['min'], lim)} – "
                  f"{_fmt_e1(s['e1']['max'], lim)})")
            long = "–"
        else:
            e1 = (f"{_fmt_e1(s['e1_long']['median'], llim)} ({_fmt_e1(s['e1_long']['min'], llim)}"
                  f" – {_fmt_e1(s['e1_long']['max'], llim)})")
            long = f"{s['solved_long']}/{s['n_seeds']}, {s['runs_solved_long']}/{s['n_runs']}"
        rows.append(f"| {v} | {s['solved']}/{s['n_seeds']} | {s['runs_solved']}/{s['n_runs']} "
                    f"| {e1} | {long} | {s['train_accepted_all']}/{s['n_seeds']}, "
                    f"{s['runs_train_accepted_all']}/{s['n_runs']} | "
                    f"{_fmt_big(s['sequences_total'])} |")
    rows.append("")
    rows.append(f"Solved: every tested string accepted (n ≤ {cfg['test_max_n']:,}; grid n, m "
                f"≤ {cfg['grid_max']}). e1: smallest rejected n (grid: smallest max(n, m)). "
                "Seeds: the seed's chosen net; runs: every net of the row on its own. "
                "`_plain`: restart 0 (no penalty). Strings: training strings over all "
                "runs.")
    return "\n".join(rows)


def headline(results: dict, paper_runs=None) -> str:
    s = results["summary"]
    cfg = results["config"]
    parts = []
    for lang in ("anbn", "anbncn"):
        k = f"{lang}/peephole"
        if k not in s:
            continue
        lim, llim = _limit(cfg, lang), _long_limit(cfg, lang)
        x = s[k]
        txt = (f"{lang}: {x['solved']}/{x['n_seeds']} seeds ({x['runs_solved']}/{x['n_runs']} "
               f"runs) accept every n ≤ {lim}")
        if llim > lim:
            txt += f", {x['solved_long']}/{x['n_seeds']} ({x['runs_solved_long']}/" \
                   f"{x['n_runs']}) every n ≤ {llim:,}"
        plain = s.get(f"{lang}/peephole_plain")
        if plain:
            txt += f" (plain Adam {plain['solved']}/{plain['n_seeds']})"
        ps, _ = _paper_summary(paper_runs, lang)
        txt += (f"; paper procedure {ps['solved']}/{ps['n_seeds']}" if ps
                else "; paper procedure not run")
        ds, _ = _paper_summary(paper_runs, lang, dekf=True)
        if ds:
            txt += f"; DEKF {ds['solved']}/{ds['n_seeds']}"
        parts.append(txt)
    k = "anbmBmAn/peephole"
    if k in s:
        parts.append(f"anbmBmAn: {s[k]['solved']}/{s[k]['n_seeds']} seeds "
                     f"({s[k]['runs_solved']}/{s[k]['n_runs']} runs) accept the "
                     f"{cfg['grid_max']}² grid")
    return "; ".join(parts) + " — paper: beyond n ≤ 10 (ranges [?]); DEKF follow-up: " \
                              "anbncn to n = 1000 and more"


def overview(results: dict, paper_runs=None) -> list:
    """Rows for viz/overview.png: per language, the share of seeds whose net accepts every
    tested string (the paper gives no per-trial rate: None)."""
    out = []
    for lang in LANGUAGES:
        s = results["summary"].get(f"{lang}/peephole")
        ps, _ = _paper_summary(paper_runs, lang)
        if s is None and ps is None:
            continue
        out.append({"label": f"{LABELS[lang]} (peephole LSTM)", "paper": None,
                    "ours_paper": None if ps is None else ps["solved"] / ps["n_seeds"],
                    "ours_modern": None if s is None else s["solved"] / s["n_seeds"]})
    return out


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
def parse_seeds(text: str) -> list:
    """'3' is seed 3; '0,2,5' a list; '0-9' an inclusive range. Repeats are refused."""
    try:
        if "," in text:
            seeds = [int(x) for x in text.split(",")]
        elif "-" in text.strip()[1:]:
            lo, hi = (int(x) for x in text.split("-", 1))
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad seed list {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"empty or negative seed list {text!r}")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"repeated seeds in {text!r}")
    return seeds


def _pos_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return v


def _pos_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return v


def _nonneg_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return v


def _choice_list(allowed):
    def parse(text):
        items = [x for x in text.split(",") if x]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        bad = [x for x in items if x not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {list(allowed)}")
        return tuple(dict.fromkeys(items))
    return parse


def _outdir(text):
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="Gers & Schmidhuber 2001: LSTM learns a^n b^n, a^n b^n c^n, "
                    "a^n b^m B^m A^n from n <= 10; tested to n = 1000 (and on to 10,000).")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="modern",
                    help="modern: Adam + restarts + penalty (the headline); paper: the "
                         "paper's online momentum SGD; quick: seconds (default: modern)")
    ap.add_argument("--seeds", type=parse_seeds, default=list(range(10)),
                    help="seeds: '3' (seed 3), a list '0,2,5' or a range '0-9' "
                         "(default: 0-9)")
    ap.add_argument("--jobs", type=_pos_int, default=os.cpu_count() or 1,
                    help=f"parallel processes (default: the number of cores, "
                         f"{os.cpu_count() or 1})")
    ap.add_argument("--outdir", type=_outdir, default=str(DEFAULT_OUTDIR),
                    help="output folder; the committed runs are written only when named "
                         f"explicitly, e.g. --outdir {FOLDER} (default: runs/{FOLDER}/ at the "
                         "repo root)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--languages", type=_choice_list(LANGUAGES),
                    help=f"comma list from {','.join(LANGUAGES)} (default: the preset's)")
    ap.add_argument("--models", type=_choice_list(MODELS),
                    help=f"comma list from {','.join(MODELS)} (default: the preset's)")
    ap.add_argument("--optimizer", choices=("adam", "sgd", "dekf"),
                    help="adam, sgd with momentum (the paper's), or dekf (the decoupled "
                         "extended Kalman filter; online, one net per run, LSTM models "
                         "only) (default: the preset's)")
    ap.add_argument("--gradient", choices=("full", "truncated"),
                    help="full BPTT, or truncated: no error flows back through the "
                         "peepholes into the cell state (default: the preset's)")
    ap.add_argument("--stop", choices=("solved", "budget"),
                    help="solved: stop a net once every training string is accepted; "
                         "budget: always train the full --updates (default: the preset's)")
    ap.add_argument("--lr", type=_pos_float,
                    help="learning rate; setting --lr, --updates or --restarts applies one "
                         "budget to every language (default: the preset's)")
    ap.add_argument("--updates", type=_pos_int,
                    help="updates per run: full-batch, or one per string when online "
                         "(default: the preset's)")
    ap.add_argument("--restarts", type=_pos_int,
                    help="nets trained at once per run: restart 0 plain, the rest "
                         "penalised (default: the preset's)")
    ap.add_argument("--sat-penalty", type=_nonneg_float,
                    help="gate-saturation penalty weight; 0 = restarts and selection only "
                         "(default: the preset's)")
    ap.add_argument("--train-max-n", type=_pos_int,
                    help="train on n (and m) = 1..N (default: the preset's)")
    ap.add_argument("--test-max-n", type=_pos_int,
                    help="test n = 1..N; must be >= --train-max-n (default: the preset's)")
    ap.add_argument("--long-test-max-n", type=_pos_int,
                    help="nets accepting every tested n are tested on to N "
                         "(default: the preset's)")
    ap.add_argument("--grid-max", type=_pos_int,
                    help="test the (n, m) grid up to N x N; >= --train-max-n "
                         "(default: the preset's)")
    return ap


def config_from_args(args, ap) -> Config:
    cfg = PRESETS[args.preset]
    if args.updates is not None or args.restarts is not None or args.lr is not None:
        cfg = dataclasses.replace(cfg, language_budget=())  # one budget for every language
    if args.models is not None:
        cfg = dataclasses.replace(cfg, grid_models=args.models)
    over = {"languages": args.languages, "models": args.models, "optimizer": args.optimizer,
            "lr": args.lr, "updates": args.updates, "restarts": args.restarts,
            "train_max_n": args.train_max_n, "test_max_n": args.test_max_n,
            "long_test_max_n": args.long_test_max_n, "gradient": args.gradient,
            "grid_max": args.grid_max, "sat_penalty": args.sat_penalty}
    if args.stop is not None:
        over["stop_when_solved"] = args.stop == "solved"
    cfg = dataclasses.replace(cfg, **{k: v for k, v in over.items() if v is not None})
    if cfg.optimizer == "dekf":
        if "rnn" in cfg.models or single(cfg, cfg.languages[0], cfg.models[0]).restarts > 1 \
                or any(r > 1 for _, r, _, _ in cfg.language_budget):
            ap.error("--optimizer dekf trains one LSTM net per run: use --restarts 1 and "
                     "peephole / no_peephole models")
        cfg = dataclasses.replace(cfg, online=True, sat_penalty=0.0)
    if cfg.test_max_n < cfg.train_max_n or cfg.grid_max < cfg.train_max_n:
        ap.error("the test range must not be below the training range "
                 f"(train n <= {cfg.train_max_n}, test n <= {cfg.test_max_n}, "
                 f"grid <= {cfg.grid_max})")
    return cfg


def _job(args):
    cfg, lang, model, seed, quiet, ckpt_dir = args
    log = None if quiet else (lambda msg: print(msg, flush=True))
    return (lang, model, seed), train_one(cfg, lang, model, seed, log, ckpt_dir)


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # pool workers: the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # ... and terminates them with SIGTERM


def _sigterm(signum, frame):
    raise KeyboardInterrupt  # `kill PID` stops a run like Ctrl-C: no worker left behind


def _git(*args):
    try:
        r = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True,
                           timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def git_state() -> dict:
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain")
    return {"git_commit": None if commit is None else commit.strip(),
            "git_dirty": None if status is None else bool(status.strip())}


def _atomic_json(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _json_clean(x):
    if isinstance(x, dict):
        return {k: _json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def main(argv=None) -> int:
    old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, old)


def _main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = build_parser()
    args = ap.parse_args(argv)
    cfg = config_from_args(args, ap)
    outdir = Path(args.outdir)
    try:  # probe the output folder before any training
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        ap.error(f"cannot write to --outdir {outdir}: {e}")
    ckpt_dir = None
    if cfg.checkpoint_every_s > 0:
        ckpt_dir = outdir / "checkpoints"
        ckpt_dir.mkdir(exist_ok=True)
    git = git_state()  # the tree the run starts from (the code that runs)
    jobs = [(cfg, lang, model, seed, args.quiet, ckpt_dir) for lang, model in run_list(cfg)
            for seed in args.seeds]
    cost = {"anbmBmAn": 3, "anbncn": 2, "anbn": 1}
    jobs.sort(key=lambda j: -cost[j[1]])  # longest first: better packing over processes
    t0 = time.perf_counter()
    results_by = {}
    pool = None
    try:
        if args.jobs == 1:
            for j in jobs:
                k, v = _job(j)
                results_by[k] = v
        else:
            pool = multiprocessing.get_context("fork").Pool(
                min(args.jobs, len(jobs)), initializer=_ignore_sigint)
            for k, v in pool.imap_unordered(_job, jobs):
                results_by[k] = v
            pool.close()
            pool.join()
    except KeyboardInterrupt:
        if pool is not None:
            pool.terminate()
            pool.join()
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    except FloatingPointError as e:
        if pool is not None:
            pool.terminate()
            pool.join()
        print(f"stopped: {e}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - t0
    records, npz = [], {}
    for (lang, model, seed), run in sorted(results_by.items(),
                                           key=lambda kv: (LANGUAGES.index(kv[0][0]),
                                                           MODELS.index(kv[0][1]), kv[0][2])):
        records.extend(run["records"])
        tag = f"{lang}/{model}/{seed}"
        arr = run["arrays"]
        for k, v in arr["params"].items():
            npz[f"{tag}/params/{k}"] = v
        npz[f"{tag}/param_names"] = np.array(list(arr["params"]))
        for k in ("accepted", "accepted_all_runs", "train_margin_all",
                  "train_nonsaturation_all", "train_ok_all", "snapshots", "snapshot_updates"):
            npz[f"{tag}/{k}"] = arr[k]
    results = {
        "experiment": FOLDER,
        "paper": "F. A. Gers and J. Schmidhuber, LSTM recurrent networks learn simple "
                 "context-free and context-sensitive languages, IEEE TNN 12(6), 2001",
        "command": ["python", f"{FOLDER}/{Path(__file__).name}", *argv],
        "preset": args.preset,
        "config": dataclasses.asdict(cfg),
        "env": {"python": platform.python_version(), "numpy": np.__version__,
                "platform": platform.platform(),
                "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "jobs": args.jobs,
                **git},
        "wallclock_s": wall,
        "paper_reference": {
            "criterion": "a string is accepted iff every step's thresholded outputs equal "
                         "the legal next-symbol set; trained on n <= 10",
            "gers_2001": "peephole LSTM generalises a^n b^n, a^n b^n c^n and a^n b^m B^m "
                         "A^n well beyond the training range (exact ranges [?] here)",
            "kalman_followup_2002": "a^n b^n c^n correct up to n = 1000 and more from the "
                                    "10 shortest strings (DEKF training)",
            "earlier_public_version": {"anbn_best_e1": 66, "anbncn_best_e1": 30,
                                       "tested_up_to": 100},
        },
        "summary": {},
        "seeds": records,
    }
    results = finalize_results(_json_clean(results))
    _atomic_json(outdir / "results.json", _json_clean(results))
    fd, tmp = tempfile.mkstemp(dir=outdir, prefix=".tmp_", suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **npz)
    os.chmod(tmp, 0o644)
    os.replace(tmp, outdir / "run.npz")
    if ckpt_dir is not None:  # the run is complete: its checkpoints are not needed
        for f in ckpt_dir.glob("*.pkl"):
            f.unlink()
        try:
            ckpt_dir.rmdir()
        except OSError:
            pass
    if not args.quiet:
        print(results_table(results))
        print(f"wall time {wall:.0f} s")
    print(f"wrote {outdir / 'results.json'}")
    print(f"wrote {outdir / 'run.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
