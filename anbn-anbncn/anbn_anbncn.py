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

Plain Adam rarely generalises to n = 1000: its counters' up and down increments differ by
~1e-3. The method here (documented in the README) pushes training towards saturated gates,
where every increment i*g is exactly +-1: a gate-saturation penalty switched on after a
third of the updates, and restarts. Each (language, model, seed) trains a population of
nets at once (a leading population axis on every array; Adam is elementwise, so the nets
never interact). Restart 0 gets no penalty: it is the plain run (`<model>_plain`). The
method's result (`<model>`) is, of the penalised restarts that accept every training
string, the most saturated on the training strings - chosen on n, m <= 10 only.

Headline command (about 550 s of CPU; 4.6 min wall on the idle 2-core machine):

    python anbn-anbncn/anbn_anbncn.py --jobs 2
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
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
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
    grid_max: int = 100  # test the (n, m) grid 1..grid_max squared (a^n b^m B^m A^n)
    restarts: int = 16  # independent nets trained at once per run (population axis)
    updates: int = 3000  # full-batch parameter updates per run
    language_budget: tuple = (("anbncn", 16, 3000, 0.01), ("anbmBmAn", 3, 2000, 0.03))
    # ^ (language, restarts, updates, lr) overriding restarts, updates, lr for that language
    grid_models: tuple = ("peephole",)  # models run on a^n b^m B^m A^n (the costly language)
    rnn_hidden_per_cell: int = 4  # tanh-RNN hidden units per LSTM cell of the language
    init_scale: float = 1.0  # weights and biases drawn from U[-init_scale, init_scale]
    forget_bias: float = 2.0  # added to the forget-gate bias at init (remember by default)
    optimizer: str = "adam"  # "adam" (default) or "sgd" (the paper's: momentum SGD)
    lr: float = 0.01  # learning rate
    sat_penalty: float = 0.1  # weight of the gate-saturation penalty (0 = plain training)
    sat_start: float = 1 / 3  # fraction of the updates before the penalty is switched on
    plain_first: bool = True  # restart 0 never gets the penalty: the plain-training baseline
    momentum: float = 0.99  # momentum for --optimizer sgd (paper: 0.99)
    n_snapshots: int = 40  # parameter snapshots of every restart kept for the GIF
    n_curve: int = 60  # points on the saved training-loss curve
    log_every_s: float = 5.0  # progress line period (seconds)


PRESETS = {
    "paper": Config(),
    "quick": Config(languages=("anbn", "anbmBmAn"), models=("peephole", "rnn"),
                    test_max_n=60, grid_max=12, restarts=3, updates=60, n_snapshots=4,
                    n_curve=5, language_budget=(("anbmBmAn", 2, 30, 0.03),)),
}


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
def forward(params: dict, sym: np.ndarray) -> dict:
    """Run every net of the population over the batch; return logits and the cache.

    sym (T, B) input-symbol indices. Returns u (T, P, B, K) output logits and per-step
    activations, each (T, P, B, H).
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
                zi = zi + p_i * s
                zf = zf + p_f * s
            i = sigmoid(zi)  # y^in
            f = sigmoid(zf)  # y^phi
            g = np.tanh(z[..., 3 * H:])  # g(net_c)
            S_prev = s
            s = f * S_prev + i * g  # s_c(t) = y^phi s_c(t-1) + y^in g(net_c)
            if peep:  # the output gate peeps at s_t
                zo = zo + p_o * s
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
            if peep:
                ds = ds + dzo * p_o  # inverts z_o += p_o s_t
            dzi = ds * g * i * (1.0 - i)  # inverts s += y^in g, y^in = sigmoid(z_i)
            dzg = ds * i * (1.0 - g * g)  # inverts g = tanh(z_g)
            dzf = ds * S_prev[t] * f * (1.0 - f)  # inverts s = y^phi s_{t-1} + ...
            if sat:  # penalty i(1-i) + f(1-f) + (1-g^2), differentiated locally
                dzi = dzi + wsat[t] * i * (1.0 - i) * (1.0 - 2.0 * i)
                dzf = dzf + wsat[t] * f * (1.0 - f) * (1.0 - 2.0 * f)
                dzg = dzg - wsat[t] * 2.0 * g * (1.0 - g * g)
            ds_next = ds * f  # inverts s_t = y^phi s_{t-1}
            if peep:
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


def test_sweep(params: dict, cfg: Config, language: str) -> dict:
    """Acceptance over the test range: n = 1..test_max_n, or the (n, m) grid."""
    if language == "anbmBmAn":
        ks = np.arange(1, cfg.grid_max + 1)
        n, m = np.meshgrid(ks, ks, indexing="ij")
        acc = accept(params, make_strings(language, n.ravel(), m.ravel()))
        return {"accepted": acc.reshape(-1, cfg.grid_max, cfg.grid_max)}
    n = np.arange(1, cfg.test_max_n + 1)
    return {"accepted": accept(params, make_strings(language, n))}


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
# Training
# ---------------------------------------------------------------------------------------
def train_one(cfg: Config, language: str, model: str, seed: int, log=None) -> dict:
    """Train a population of rcfg.restarts nets on the training strings; test two of them.

    Returns {"records": [plain record, selected record], "arrays": {...}} where arrays
    holds the nets' final parameters, acceptance maps and (optionally) snapshots.
    """
    rcfg = single(cfg, language, model)
    plain_cfg = dataclasses.replace(rcfg, sat_penalty=0.0)
    ss = np.random.SeedSequence([seed, LANGUAGES.index(language), MODELS.index(model)])
    rng_init, _rng_data = (np.random.default_rng(s) for s in ss.spawn(2))
    params = init_params(rcfg, rng_init)
    batch = training_set(cfg, language)  # fixed: every string with n (m) <= train_max_n
    mom = {k: np.zeros_like(v) for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    snap_at = set(np.unique(np.round(np.geomspace(1, rcfg.updates, cfg.n_snapshots))
                            .astype(int)).tolist()) | {0}
    snaps, snap_steps = [], []
    curve_at = set(np.unique(np.linspace(0, rcfg.updates, cfg.n_curve).astype(int)).tolist())
    curve_steps, curve_loss = [], []
    t0 = last_log = time.perf_counter()
    cpu0 = time.process_time()
    P = rcfg.restarts
    for step in range(rcfg.updates + 1):
        if step in snap_at:
            snaps.append(np.concatenate([v.reshape(P, -1) for v in params.values()], axis=1))
            snap_steps.append(step)
        if step == rcfg.updates:
            break
        on = step >= cfg.sat_start * rcfg.updates
        L, grads = loss_and_grads(params, batch, rcfg if on else plain_cfg)
        if not np.isfinite(L):
            raise FloatingPointError(
                f"{language}/{model} seed {seed}: non-finite loss at update {step}")
        if step in curve_at:
            curve_steps.append(step)
            curve_loss.append(L / P)
        for k in params:
            if cfg.optimizer == "adam":
                mom[k] = b1 * mom[k] + (1 - b1) * grads[k]
                vel[k] = b2 * vel[k] + (1 - b2) * grads[k] ** 2
                mhat = mom[k] / (1 - b1 ** (step + 1))
                vhat = vel[k] / (1 - b2 ** (step + 1))
                params[k] = params[k] - rcfg.lr * mhat / (np.sqrt(vhat) + eps)
            else:
                mom[k] = cfg.momentum * mom[k] - rcfg.lr * grads[k]
                params[k] = params[k] + mom[k]
        now = time.perf_counter()
        if log is not None and now - last_log > cfg.log_every_s:
            last_log = now
            ok = training_scores(params, batch)[0]
            log(f"{language}/{model} seed {seed}: update {step + 1}/{rcfg.updates}, "
                f"strings seen {(step + 1) * batch['length'].size * P}, "
                f"mean loss {L / P:.4f}, restarts accepting all training strings "
                f"{int(ok.sum())}/{P}, {now - t0:.0f} s")
    train_s = time.perf_counter() - t0
    train_cpu = time.process_time() - cpu0
    symbols = rcfg.updates * P * int(batch["length"].sum())
    # Model selection on the training strings only.
    train_ok, margin, nonsat = training_scores(params, batch)
    sel = select_restart(train_ok, margin, nonsat, cfg.plain_first)
    picks = [0, sel]
    sub = {k: v[picks] for k, v in params.items()}
    t1, cpu1 = time.perf_counter(), time.process_time()
    sweep = test_sweep(sub, cfg, language)
    test_s, test_cpu = time.perf_counter() - t1, time.process_time() - cpu1
    records = []
    for j, (variant, idx) in enumerate(((f"{model}_plain", 0), (model, sel))):
        met = sweep_metrics(sweep["accepted"][j], language)
        records.append({
            "language": language, "model": model, "variant": f"{language}/{variant}",
            "seed": seed, "restart": idx, "restarts": P,
            "train_accepted_all": bool(train_ok[idx]),
            "train_margin": float(margin[idx]),
            "train_nonsaturation": float(nonsat[idx]),
            "train_restarts_accepting_all": int(train_ok.sum()),
            **met,
            "updates": rcfg.updates,
            "sequences_seen": rcfg.updates * int(batch["length"].size),
            "curve_updates": curve_steps,
            "curve_loss": [float(x) for x in curve_loss],
            "train_wall_s": train_s, "test_wall_s": test_s,
            "train_cpu_time_s": train_cpu, "test_cpu_time_s": test_cpu,
            "train_symbols_per_s": symbols / max(train_s, 1e-9),
            "train_symbols_per_s_cpu": symbols / max(train_cpu, 1e-9),
        })
    arrays = {
        "params": {k: v.copy() for k, v in sub.items()},
        "accepted": sweep["accepted"],
        "train_margin_all": margin, "train_nonsaturation_all": nonsat,
        "train_ok_all": train_ok,
        "snapshots": np.stack(snaps)[:, sel], "snapshot_updates": np.array(snap_steps),
    }
    return {"records": records, "arrays": arrays}


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


def summarize(records: list, cfg: Config) -> dict:
    summary = {}
    variants = sorted({r["variant"] for r in records}, key=lambda v: _variant_order(v))
    for v in variants:
        rs = sorted((r for r in records if r["variant"] == v), key=lambda r: r["seed"])
        limit = (cfg.grid_max if rs[0]["language"] == "anbmBmAn" else cfg.test_max_n) + 1
        s = {"n_seeds": len(rs), "solved": int(sum(r["e1"] >= limit for r in rs)),
             "e1": stat([r["e1"] for r in rs]),
             "total_accepted": stat([r["total_accepted"] for r in rs]),
             "train_accepted_all": int(sum(r["train_accepted_all"] for r in rs))}
        if rs[0]["language"] == "anbmBmAn":
            s["accepted_fraction"] = stat([r["accepted_fraction"] for r in rs])
            s["largest_square"] = stat([r["largest_square"] for r in rs])
        summary[v] = s
    return summary


def _variant_order(v):
    lang, var = v.split("/")
    base = var.replace("_plain", "")
    return (LANGUAGES.index(lang), MODELS.index(base), var.endswith("_plain") is False)


def _fmt(x):
    if x is None:
        return "–"
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.3g}"


def _limit(cfg: dict, language: str) -> int:
    return cfg["grid_max"] if language == "anbmBmAn" else cfg["test_max_n"]


def _fmt_e1(x, limit):
    if x is None:
        return "–"
    return f"> {limit}" if x > limit else _fmt(x)


def _budget(cfg: dict, language: str):
    """(restarts, updates, lr) of a language in a results.json config."""
    for lang, r, u, rate in cfg.get("language_budget", ()):
        if lang == language:
            return r, u, rate
    return cfg["restarts"], cfg["updates"], cfg["lr"]


def results_table(results: dict) -> str:
    cfg = results["config"]
    rows = ["| language / model | seeds | solved: every tested string accepted | e1 median "
            "| e1 min – max | accepted in test range (median) | training strings all "
            "accepted | restarts × updates |",
            "|---|---|---|---|---|---|---|---|"]
    for v, s in results["summary"].items():
        lang = v.split("/")[0]
        lim = _limit(cfg, lang)
        if lang == "anbmBmAn":
            acc = (f"{_fmt(100 * s['accepted_fraction']['median'])}% of the {lim}×{lim} "
                   f"grid; square {_fmt(s['largest_square']['median'])}")
        else:
            acc = f"{_fmt(s['total_accepted']['median'])} of n ≤ {lim}"
        r, u, _ = _budget(cfg, lang)
        rows.append(f"| {v} | {s['n_seeds']} | {s['solved']}/{s['n_seeds']} | "
                    f"{_fmt_e1(s['e1']['median'], lim)} | {_fmt_e1(s['e1']['min'], lim)} – "
                    f"{_fmt_e1(s['e1']['max'], lim)} | {acc} | "
                    f"{s['train_accepted_all']}/{s['n_seeds']} | "
                    f"{'1' if v.endswith('_plain') else r - 1} × {u} |")
    rows.append("")
    rows.append("e1 = smallest rejected n (grid: smallest max(n, m) of a rejected pair; "
                "square = e1 − 1). `<model>_plain`: restart 0, plain Adam, no penalty. "
                "`<model>`: gate-saturation penalty, and of the penalised restarts the most "
                "saturated one that accepts every training string (chosen on n, m ≤ "
                f"{cfg['train_max_n']} only). Both are trained side by side in one "
                "population with the same updates.")
    return "\n".join(rows)


def headline(results: dict) -> str:
    s = results["summary"]
    cfg = results["config"]
    parts = []
    for lang in ("anbn", "anbncn"):
        k = f"{lang}/peephole"
        if k in s:
            lim = _limit(cfg, lang)
            plain = s.get(f"{lang}/peephole_plain")
            ptxt = f" (plain Adam {plain['solved']}/{plain['n_seeds']})" if plain else ""
            parts.append(f"{lang}: {s[k]['solved']}/{s[k]['n_seeds']} seeds accept every "
                         f"n ≤ {lim}{ptxt}, median e1 {_fmt_e1(s[k]['e1']['median'], lim)}")
    k = "anbmBmAn/peephole"
    if k in s:
        parts.append(f"anbmBmAn: {_fmt(100 * s[k]['accepted_fraction']['median'])}% of the "
                     f"{cfg['grid_max']}² grid (median)")
    return "; ".join(parts) + " — bar (Kalman follow-up): anbncn to n = 1000"


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
def parse_seeds(text: str) -> list:
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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="Gers & Schmidhuber 2001: LSTM learns a^n b^n, a^n b^n c^n, "
                    "a^n b^m B^m A^n from n <= 10; tested to n = 1000.")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                    help="configuration preset (default: paper)")
    ap.add_argument("--seeds", type=parse_seeds, default=list(range(10)),
                    help="seeds: a count '3', a list '0,2,5' or a range '0-9' (default 0-9)")
    ap.add_argument("--jobs", type=_pos_int, default=os.cpu_count() or 1,
                    help="parallel processes (default: number of cores)")
    ap.add_argument("--outdir", default=str(HERE), help="output folder (default: this folder)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--languages", type=_choice_list(LANGUAGES), default=None,
                    help=f"comma list from {','.join(LANGUAGES)} (default: preset's)")
    ap.add_argument("--models", type=_choice_list(MODELS), default=None,
                    help=f"comma list from {','.join(MODELS)} (default: preset's)")
    ap.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                    help="adam (default) or sgd with momentum 0.99 (the paper's)")
    ap.add_argument("--lr", type=_pos_float, default=None,
                    help="learning rate (paper preset: 0.01, 0.03 for anbmBmAn); setting "
                         "--lr, --updates or --restarts applies one budget to every language")
    ap.add_argument("--updates", type=_pos_int, default=None,
                    help="full-batch updates per run (paper preset: 3000)")
    ap.add_argument("--restarts", type=_pos_int, default=None,
                    help="nets trained at once per run: restart 0 plain, the rest penalised "
                         "(paper preset: 16 anbn, 16 anbncn, 3 anbmBmAn)")
    ap.add_argument("--sat-penalty", type=_nonneg_float, default=None,
                    help="gate-saturation penalty weight (paper preset 0.1; 0 = restarts "
                         "and selection only)")
    ap.add_argument("--train-max-n", type=_pos_int, default=None,
                    help="train on n (and m) = 1..N (default 10)")
    ap.add_argument("--test-max-n", type=_pos_int, default=None,
                    help="test n = 1..N (default 1000); must be >= --train-max-n")
    ap.add_argument("--grid-max", type=_pos_int, default=None,
                    help="test the (n, m) grid up to N x N (default 100); >= --train-max-n")
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
            "grid_max": args.grid_max, "sat_penalty": args.sat_penalty}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in over.items() if v is not None})
    if cfg.test_max_n < cfg.train_max_n or cfg.grid_max < cfg.train_max_n:
        ap.error("the test range must not be below the training range "
                 f"(train n <= {cfg.train_max_n}, test n <= {cfg.test_max_n}, "
                 f"grid <= {cfg.grid_max})")
    return cfg


def _job(args):
    cfg, lang, model, seed, quiet = args
    log = None if quiet else (lambda msg: print(msg, flush=True))
    return (lang, model, seed), train_one(cfg, lang, model, seed, log)


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
    jobs = [(cfg, lang, model, seed, args.quiet) for lang, model in run_list(cfg)
            for seed in args.seeds]
    cost = {"anbmBmAn": 3, "anbncn": 2, "anbn": 1}
    jobs.sort(key=lambda j: -cost[j[1]])  # longest first: better packing over processes
    t0 = time.perf_counter()
    results_by = {}
    try:
        if args.jobs == 1:
            for j in jobs:
                k, v = _job(j)
                results_by[k] = v
        else:
            with ProcessPoolExecutor(max_workers=args.jobs) as ex:
                for k, v in ex.map(_job, jobs):
                    results_by[k] = v
    except FloatingPointError as e:
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
        npz[f"{tag}/accepted"] = arr["accepted"]
        npz[f"{tag}/param_names"] = np.array(list(arr["params"]))
        for k in ("train_margin_all", "train_nonsaturation_all", "train_ok_all"):
            npz[f"{tag}/{k}"] = arr[k]
        if seed == min(args.seeds):
            npz[f"{tag}/snapshots"] = arr["snapshots"]
            npz[f"{tag}/snapshot_updates"] = arr["snapshot_updates"]
    train_rate = [r["train_symbols_per_s"] for r in records]
    test_s = [r["test_wall_s"] for r in records]
    results = {
        "experiment": "anbn-anbncn",
        "paper": "F. A. Gers and J. Schmidhuber, LSTM recurrent networks learn simple "
                 "context-free and context-sensitive languages, IEEE TNN 12(6), 2001",
        "command": [sys.executable, *sys.argv] if argv is None
        else ["anbn_anbncn.py", *argv],
        "preset": args.preset,
        "config": dataclasses.asdict(cfg),
        "seeds_run": args.seeds,
        "env": {"python": platform.python_version(), "numpy": np.__version__,
                "platform": platform.platform(),
                "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "jobs": args.jobs},
        "wallclock_s": wall,
        "throughput": {
            "train_symbols_per_s_median": float(np.median(train_rate)),
            "train_symbols_per_s_cpu_median": float(np.median(
                [r["train_symbols_per_s_cpu"] for r in records])),
            "test_sweep_wall_s_max_per_pair_of_nets": float(np.max(test_s)),
            "test_sweep_cpu_time_s_max_per_pair_of_nets": float(np.max(
                [r["test_cpu_time_s"] for r in records])),
            "cpu_time_s_total": float(sum(r["train_cpu_time_s"] + r["test_cpu_time_s"]
                                          for r in records[::2])),
            "note": "wall times ran on a 2-core machine shared with other jobs; "
                    "cpu_time_s is the processes' own CPU time"},
        "paper_reference": {
            "criterion": "a string is accepted iff every step's thresholded outputs equal "
                         "the legal next-symbol set; trained on n <= 10",
            "gers_2001": "peephole LSTM generalises a^n b^n, a^n b^n c^n and a^n b^m B^m "
                         "A^n well beyond the training range (exact ranges [?] here)",
            "kalman_followup_2002": "a^n b^n c^n correct up to n = 1000 and more from the "
                                    "10 shortest strings",
            "earlier_public_version": {"anbn_best_e1": 66, "anbncn_best_e1": 30,
                                       "tested_up_to": 100},
        },
        "summary": summarize(records, cfg),
        "seeds": records,
    }
    _atomic_json(outdir / "results.json", _json_clean(results))
    fd, tmp = tempfile.mkstemp(dir=outdir, prefix=".tmp_", suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **npz)
    os.chmod(tmp, 0o644)
    os.replace(tmp, outdir / "run.npz")
    if not args.quiet:
        print(results_table(results))
        print(f"wall time {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
