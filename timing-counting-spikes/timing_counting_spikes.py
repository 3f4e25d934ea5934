"""Learning precise timing with peephole LSTM: MSD, GTS and PFG on the paper's 17-weight net.

Gers, F. A., Schraudolph, N. N. & Schmidhuber, J. (2002). "Learning Precise Timing with LSTM
Recurrent Networks." Journal of Machine Learning Research 3, 115-143.

Claim reproduced: one memory block of one cell with peephole connections (cell state -> gates)
learns to measure spike delays (MSD, up to telling 49 from 50 steps apart), to generate
precisely timed spikes (GTS) and to generate periodic functions (PFG: cosine, triangle,
rectangle), on continual test streams of 1000 spikes / 1000 periods with no resets and no
teacher forcing. The same net without peepholes learns far less (the paper: of the PFG tasks
only the cosine with period 10); without a forget gate GTS fails.

Headline command (all 12 task settings x variants, 10 seeds each, about 16 min on 2 cores):

    python timing-counting-spikes/timing_counting_spikes.py --jobs 2

Every seed, variant and optimisation restart of one task setting is one slice of a leading
"net" axis: the 17-weight net is pure numpy-call overhead, so one process carries them all.
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
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
PAPER = ("Gers, Schraudolph & Schmidhuber (2002), Learning Precise Timing with LSTM Recurrent "
         "Networks, JMLR 3:115-143")
VARIANTS = ("peephole", "no_peephole", "no_forget")
# initialisations: "counter" (the modern headline's counter prior, see init_params) and
# "paper" (the paper's: weights U[-0.1, 0.1], gate biases input 0, forget -2, output +2)
INITS = ("counter", "paper")
PAPER_INIT = dict(scale=0.1, bias_in=0.0, bias_forget=-2.0, bias_out=2.0)
# units of the block, rows of W: cell input (g), input gate, forget gate, output gate
C, IN, FG, OUT = 0, 1, 2, 3

# ---------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------
# A task setting is named by a string:
#   msd_F<F>_I<digits>  measuring spike delays: input spikes at T(n) = T(n-1) + F + I(n),
#                       I(n) drawn uniformly from the digits (msd_F10_I01: I in {0,1});
#                       target at every spike but a stream's first: I(n).
#   gts_F<F>            generating timed spikes: one input spike at the stream's start,
#                       target 1 every F steps after it, 0 elsewhere.
#   pfg_<wave>_F<F>     periodic function generation, no input: wave in cos, tri, rect.
#   nmsd_F<F>_I<digits> MSD with one interval per sequence (the paper's NMSD): a spike, a
#                       second spike F + I(n) steps later (target I(n)), then the next
#                       sequence starts from the zero state. Not in the headline.
TASK_RE = re.compile(r"^(?:(n?msd)_F(-?\d+)_I(\d*)|(gts)_F(-?\d+)|pfg_(cos|tri|rect)_F(-?\d+))$")
PAPER_TASKS = ("msd_F10_I01", "msd_F10_I012", "msd_F49_I01", "gts_F10", "gts_F25", "gts_F50",
               "pfg_cos_F10", "pfg_cos_F25", "pfg_tri_F10", "pfg_tri_F25", "pfg_rect_F10",
               "pfg_rect_F25")


@dataclass(frozen=True)
class Task:
    name: str
    kind: str            # "msd", "gts", "pfg" or "nmsd"
    F: int               # period / minimum spike spacing
    delays: tuple = ()   # MSD: the delay set I(n) is drawn from
    wave: str = ""       # PFG: cos, tri, rect

    @property
    def linear(self) -> bool:
        """Output unit: linear for PFG and for MSD with delays > 1, logistic otherwise."""
        return self.kind == "pfg" or (self.delays != () and max(self.delays) > 1)

    @property
    def threshold(self) -> float:
        """The paper's success criterion: |error| below this at every scored step."""
        return 0.3 if self.kind == "pfg" else 0.49


def parse_task(name: str) -> Task:
    """Task from its name; ValueError with a one-line reason on a bad name."""
    m = TASK_RE.match(name)
    if m is None:
        raise ValueError(f"unknown task {name!r} (msd_F<F>_I<digits>, gts_F<F>, "
                         "pfg_{cos,tri,rect}_F<F>, nmsd_F<F>_I<digits>)")
    if m.group(1):
        F, digits = int(m.group(2)), m.group(3)
        if not digits:
            raise ValueError(f"task {name!r}: empty delay set")
        delays = tuple(sorted({int(d) for d in digits}))
        task = Task(name, m.group(1), F, delays=delays)
    elif m.group(4):
        task = Task(name, "gts", int(m.group(5)))
    else:
        task = Task(name, "pfg", int(m.group(7)), wave=m.group(6))
    if task.F <= 1:
        raise ValueError(f"task {name!r}: period F must be >= 2")
    return task


def wave_table(task: Task) -> np.ndarray:
    """Target over one period, indexed by phase tau mod F (GTS: spike at phase 0)."""
    ph = np.arange(task.F, dtype=np.float64)
    if task.kind in ("msd", "nmsd"):
        return np.zeros(task.F)
    if task.kind == "gts":
        return (ph == 0).astype(np.float64)
    if task.wave == "cos":      # f_cos(t) = 1/2 (1 - cos(2 pi t / F))
        return 0.5 * (1.0 - np.cos(2.0 * np.pi * ph / task.F))
    if task.wave == "tri":      # 0 at t = 0, 1 at t = F/2, linear in between
        return 1.0 - np.abs(2.0 * ph / task.F - 1.0)
    if task.wave == "rect":     # 0 in the first half period, 1 in the second
        return (ph >= task.F / 2.0).astype(np.float64)
    raise ValueError(task.wave)


def trivial_error(task: Task) -> float:
    """Max abs error of the best constant output (the trivial fixed point)."""
    if task.kind in ("msd", "nmsd"):
        return (max(task.delays) - min(task.delays)) / 2.0
    tab = wave_table(task)
    return float((tab.max() - tab.min()) / 2.0)


def new_streams(task: Task, n: int, b: int) -> dict:
    """Counters of n x b fresh streams (all start at step 0, zero cell state)."""
    z = np.zeros((n, b), dtype=np.int64)
    return dict(tau=z.copy(), count=z.copy(), cd=z.copy(), cur=z.copy(), bad=z - 1,
                okrun=z.copy(), first=np.ones((n, b), dtype=bool), s=np.zeros((n, b)),
                yc=np.zeros((n, b)))


def stream_step(task: Task, st: dict, table: np.ndarray, draw: np.ndarray, offset=None):
    """Input x_t, target d_t, scored mask for step tau of every stream; advance counters.

    draw: fresh delays I (used by MSD at a spike). Counters are updated in place.
    table: the target over one period; several settings' tables one after the other when
    offset (N, 1) gives each net's start in it (settings stacked in one call).
    """
    tau = st["tau"]
    if task.kind in ("msd", "nmsd"):
        spike = st["cd"] == 0
        x = spike.astype(np.float64)
        target = st["cur"].astype(np.float64)
        scored = spike & ~st["first"]
        st["cur"] = np.where(spike, draw, st["cur"])
        st["cd"] = np.where(spike, task.F + draw, st["cd"]) - 1
        st["first"] &= ~spike
        st["count"] += scored
    else:
        phase = tau % task.F
        x = (tau == 0).astype(np.float64) if task.kind == "gts" else np.zeros(tau.shape)
        target = table[phase] if offset is None else table[offset + phase]
        if task.kind == "gts":
            target = np.where(tau == 0, 0.0, target)
        scored = np.ones(tau.shape, dtype=bool)
        st["count"] += (phase == task.F - 1)
    st["tau"] = tau + 1
    return x, target, scored


def restart_streams(task: Task, st: dict, reset: np.ndarray) -> None:
    """Streams flagged in `reset` start afresh (paper: a training stream ends at its first
    error or after 100 spikes; the next one starts from the zero state). okrun (NMSD: the
    correct sequences in a row on this stream slot) carries over."""
    for k in ("tau", "count", "cd", "cur"):
        st[k] = np.where(reset, 0, st[k])
    st["bad"] = np.where(reset, -1, st["bad"])
    st["first"] = st["first"] | reset


# ---------------------------------------------------------------------------------------
# Model: 1 input, 1 memory block of 1 cell, input/forget/output gates, peepholes, 1 output
# ---------------------------------------------------------------------------------------
# Weights of one net (17 with peepholes):
#   W[u] = (w_ux, w_uc, b_u) for u in (cell input c, in, forget, out): each unit reads the
#          input x_t, the cell output y^c_{t-1} (recurrent) and a bias           4 x 3 = 12
#   P    = (p_in, p_forget, p_out) peepholes from the cell state                        3
#   V    = (w_k, b_k) output unit from y^c_t                                            2
# no_peephole masks P (14 weights); no_forget is the peephole net without the forget unit
# and its peephole (f = 1, 13 weights). All nets of a run share one array with a leading net axis.
def n_weights(variant: str) -> int:
    return int(param_masks(np.array([VARIANTS.index(variant)]))["W"].sum()
               + param_masks(np.array([VARIANTS.index(variant)]))["P"].sum() + 2)


def param_masks(var_ids: np.ndarray) -> dict:
    """1 where a weight exists in the net's variant, 0 where it is absent."""
    n = len(var_ids)
    wm, pm = np.ones((n, 4, 3)), np.ones((n, 3))
    pm[var_ids == 1] = 0.0                        # no_peephole: no peepholes
    nf = var_ids == 2
    wm[nf, FG, :] = 0.0                           # no_forget: no forget unit ...
    pm[nf, 1] = 0.0                               # ... and no forget peephole
    return dict(W=wm, P=pm, V=np.ones((n, 2)))


def row_name(variant: str, init: str) -> str:
    """Summary-row name of a variant under an init: `peephole`, `peephole_paper_init`."""
    return variant if init == "counter" else f"{variant}_{init}_init"


def split_row(name: str) -> tuple:
    """(variant, init) of a row name (inverse of row_name)."""
    for init in INITS[1:]:
        if name.endswith(f"_{init}_init"):
            return name[:-len(f"_{init}_init")], init
    return name, "counter"


def rows_of(cfg) -> list:
    """(variant, init) of every row a seed trains: init-major, then variant."""
    return [(v, init) for init in cfg.inits for v in cfg.variants]


def net_layout(cfg, n_seeds: int = 1) -> np.ndarray:
    """Variant id of every net, seed-major, then row (init, variant), then restart."""
    ids = [VARIANTS.index(v) for v, _ in rows_of(cfg)]
    return np.tile(np.repeat(np.array(ids), cfg.restarts), n_seeds)


def init_params(cfg, rng: np.random.Generator, task: Task | None = None) -> dict:
    """Nets of one seed: rows (init x variant) x restarts. Restart r of every row starts
    from the same draw (a paired comparison), with absent weights zeroed.

    "counter" rows: weights ~ U[-a, a] plus the Config's bias offsets; with counter_init, a
    counter prior (see the comments below) that knows the task's period F only to within
    [F, 1.5 F]. "paper" rows: the same draw rescaled to U[-0.1, 0.1], gate biases input 0,
    forget -2, output +2 (the paper's initialisation)."""
    task = task or parse_task(cfg.tasks[0])
    r, a = cfg.restarts, cfg.init_scale
    U = (rng.uniform(-a, a, size=(r, 4, 3)), rng.uniform(-a, a, size=(r, 3)),
         rng.uniform(-a, a, size=(r, 2)))
    blocks = {}
    if "paper" in cfg.inits:
        k = PAPER_INIT["scale"] / a
        W0, P0, V0 = (u * k for u in U)
        W0[:, IN, 2] += PAPER_INIT["bias_in"]
        W0[:, FG, 2] += PAPER_INIT["bias_forget"]
        W0[:, OUT, 2] += PAPER_INIT["bias_out"]
        blocks["paper"] = {v: (W0, P0, V0) for v in cfg.variants}
    if "counter" in cfg.inits:
        blocks["counter"] = _counter_init(cfg, rng, task, *(u.copy() for u in U))
    p = {k: np.concatenate([blocks[init][v][j] for v, init in rows_of(cfg)])
         for j, k in enumerate(("W", "P", "V"))}
    m = param_masks(net_layout(cfg))
    return {k: (p[k] * m[k]).astype(np.float64) for k in ("W", "P", "V")}


def _counter_init(cfg, rng, task: Task, W0, P0, V0) -> dict:
    """The modern rows' init, per variant: {variant: (W, P, V)} for the restarts."""
    if cfg.counter_init and cfg.state_ref > 0:
        # the random weights that read the state (recurrent y^c_{t-1}, peepholes, output
        # unit) scaled to the count's range ~F: their reach over a count of F stays what it
        # is at F = state_ref (the draws are unchanged, so F <= state_ref is untouched)
        k = min(1.0, cfg.state_ref / task.F)
        W0[:, :, 1] *= k
        P0 *= k
        V0[:, 0] *= k
    W0[:, IN, 2] += cfg.bias_in
    W0[:, FG, 2] += cfg.bias_forget
    W0[:, OUT, 2] += cfg.bias_out
    W0[:, C, 2] += cfg.bias_cell
    if cfg.counter_init:
        # a counter of random period Pc: g = 1, input gate open, the forget gate closes
        # when s_{t-1} passes Pc - 1/2 (peephole) so s counts 1, 2, ..., Pc, 1, 2, ...
        r, F = len(W0), task.F
        Pc = F * (1.0 + rng.uniform(0.0, cfg.counter_spread, size=r))
        W0[:, C, 2] += 1.0
        W0[:, IN, 2] += 4.0
        P0[:, 1] += -cfg.counter_gain
        W0[:, FG, 2] += cfg.counter_gain * (Pc - 0.5) - cfg.bias_forget
        if cfg.counter_out:
            # the output gate a step in s (random sign, threshold in [0, 1.5 F])
            ko = cfg.counter_gain / 4 * rng.choice(np.array([-1.0, 1.0]), size=r)
            theta = rng.uniform(0.0, 1.5 * F, size=r)
            P0[:, 2] += ko
            W0[:, OUT, 2] += -ko * theta - cfg.bias_out
    if cfg.forget_self_neg:
        W0[:, FG, 1] = -np.abs(W0[:, FG, 1])
        P0[:, 1] = -np.abs(P0[:, 1])
    out = {}
    for v in cfg.variants:
        W = W0.copy()
        if cfg.counter_init and v == "no_peephole":
            # without peepholes the state reaches the forget gate only through y^c_{t-1}:
            # the counter's reset slope goes there instead of onto the (absent) peephole
            W[:, FG, 1] -= cfg.counter_gain
            if cfg.counter_out:
                W[:, OUT, 1] += P0[:, 2]
        out[v] = (W, P0, V0)
    return out


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def group_spec(batch: dict) -> tuple:
    """What forward needs to know of the batch's task settings.

    batch["task"] is one setting's name, or a tuple of settings of one kind and period F
    stacked in one call with batch["task_ids"] (N,) naming each net's setting. Returns
    (first task, target table, per-net table offset or None, linear output: True / False /
    (N, 1) mask, criterion threshold: a float or (N, 1))."""
    names = batch["task"] if isinstance(batch["task"], (tuple, list)) else (batch["task"],)
    tasks = [parse_task(n) for n in names]
    task = tasks[0]
    if len(tasks) == 1:
        return task, wave_table(task), None, task.linear, task.threshold
    tid = np.asarray(batch["task_ids"])
    lin = np.array([t.linear for t in tasks])[tid][:, None]
    linear = True if lin.all() else False if not lin.any() else lin
    thr = np.array([t.threshold for t in tasks])[tid][:, None]
    table = np.concatenate([wave_table(t) for t in tasks])
    return task, table, (tid * task.F)[:, None], linear, thr


CACHE_KEYS = ("x", "sp", "ycp", "g", "i", "f", "s", "o", "yc", "y", "w", "e", "keep")


def workspace(shape: tuple, work: dict | None) -> dict:
    """Arrays of the forward cache (and backward's), allocated once per shape and reused
    by every update of a training run (`work` is the caller's dict; None: fresh arrays)."""
    if work is not None and work.get("shape") == shape:
        return work
    new = {k: np.empty(shape) for k in CACHE_KEYS}
    new.update(dA=np.empty((4,) + shape), dZ=np.empty(shape), shape=shape)
    if work is not None:
        work.clear()
        work.update(new)
    return new


def forward(params: dict, batch: dict, cfg, keep_cache: bool = True, work: dict | None = None):
    """Run every net over its chunk of L steps. Returns (per-net losses, cache, end state).

    batch: task, var_ids (N,), draws (L, N, B) delay draws, streams (counters + s, y^c),
    terminate (bool: a stream restarts after its first error / after max_spikes), u (L, N, B)
    uniforms for random restarts (cfg.restart_life > 0: a stream restarts at each step with
    probability 1 / (restart_life F), a mean life of restart_life periods).
    work: a workspace dict (see workspace) whose arrays the cache reuses.
    """
    task, table, offset, linear, thr = group_spec(batch)
    m = param_masks(batch["var_ids"])
    W, P, V = params["W"] * m["W"], params["P"] * m["P"], params["V"]
    nf = (batch["var_ids"] == 2)[:, None]            # no_forget nets: f = 1
    st = {k: np.array(v, copy=True) for k, v in batch["streams"].items()}
    draws = batch["draws"]
    L, N, B = draws.shape
    wx, wc, wb = (W[:, :, j].T[:, :, None] for j in range(3))   # (4, N, 1)
    pi, pf, po = (P[:, j][:, None] for j in range(3))
    vk, vb = V[:, 0][:, None], V[:, 1][:, None]
    ws = workspace((L, N, B), work)
    cache = {k: ws[k] for k in CACHE_KEYS}
    s, yc = st.pop("s"), st.pop("yc")
    reset = np.zeros((N, B), dtype=bool)
    n_full = np.zeros(N, dtype=np.int64)
    spike_w = cfg.spike_weight * (task.F - 1) if task.kind == "gts" else 1.0
    nmsd = task.kind == "nmsd"                       # one interval per sequence
    restarts = batch["terminate"] or cfg.restart_life > 0 or nmsd
    p_restart = 1.0 / (cfg.restart_life * task.F) if cfg.restart_life > 0 else -1.0
    for t in range(L):
        if restarts:
            restart_streams(task, st, reset)
        keep = (~reset).astype(np.float64)
        sp, ycp = s * keep, yc * keep                # s_{t-1}, y^c_{t-1} (0 after a restart)
        x, d, scored = stream_step(task, st, table, draws[t], offset)
        a = wx * x + wc * ycp + wb                   # net_u = w_ux x + w_uc y^c_{t-1} + b_u
        g = a[C]                                     # g(net_c) = net_c (identity squash)
        i = sigmoid(a[IN] + pi * sp)                 # y^in = f(net_in + p_in s_{t-1})
        f = sigmoid(a[FG] + pf * sp)                 # y^phi = f(net_phi + p_phi s_{t-1})
        f = np.where(nf, 1.0, f)
        s = f * sp + i * g                           # s_t = y^phi s_{t-1} + y^in g
        o = sigmoid(a[OUT] + po * s)                 # y^out = f(net_out + p_out s_t)
        yc = o * s                                   # y^c = y^out s_t (no h)
        z = vk * yc + vb                             # net_k = w_k y^c + b_k
        y = z if linear is True else sigmoid(z) if linear is False else \
            np.where(linear, z, sigmoid(z))          # y^k: linear or logistic
        e = np.where(scored, y - d, 0.0)             # error at scored steps
        w = scored * np.where(d > 0.5, spike_w, 1.0) if task.kind == "gts" else scored * 1.0
        if batch["terminate"]:
            err = ~(np.abs(e) < thr)                 # (a non-finite error is one too)
            st["bad"] = np.where((st["bad"] >= 0) | err, st["bad"] + 1, -1)
            full = st["count"] >= (1 if nmsd else cfg.max_spikes)
            if nmsd:        # solved: nmsd_solved correct sequences in a row on one slot
                ok = np.where(full & (st["bad"] < 0), st["okrun"] + 1,
                              np.where(st["bad"] >= cfg.grace, 0, st["okrun"]))
                n_full += (ok >= cfg.nmsd_solved).sum(axis=1)
                st["okrun"] = np.where(ok >= cfg.nmsd_solved, 0, ok)
            else:
                n_full += (full & (st["bad"] < 0)).sum(axis=1)  # error-free to the end
            reset = (st["bad"] >= cfg.grace) | full
        elif nmsd:
            reset = st["count"] >= 1                 # the sequence ends; zero state next
        elif restarts:
            reset = np.zeros((N, B), dtype=bool)       # no error-triggered restarts
        if restarts and p_restart > 0:
            reset = reset | (batch["u"][t] < p_restart)    # random restarts, fresh each step
        if keep_cache:
            for k, v in (("x", x), ("sp", sp), ("ycp", ycp), ("g", g), ("i", i), ("f", f),
                         ("s", s), ("o", o), ("yc", yc), ("y", y), ("w", w), ("e", e),
                         ("keep", keep)):
                cache[k][t] = v
        else:
            cache["w"][t], cache["e"][t] = w, e
    if restarts:
        restart_streams(task, st, reset)
        s, yc = s * ~reset, yc * ~reset
    st["s"], st["yc"] = s, yc
    cache["completed"] = n_full
    # E = sum_t w_t e_t^2 / (L B) per net; the loss sums the nets (independent problems)
    per_net = np.einsum("lnb,lnb,lnb->n", cache["w"], cache["e"], cache["e"]) / (L * B)
    return per_net, cache, st


def loss(params: dict, batch: dict, cfg) -> float:
    return float(np.sum(forward(params, batch, cfg, keep_cache=False)[0]))


def backward(params: dict, batch: dict, cfg, cache: dict, work: dict | None = None) -> dict:
    """Full BPTT gradient of sum(per-net loss), peephole paths included."""
    linear = group_spec(batch)[3]
    m = param_masks(batch["var_ids"])
    W, P, V = params["W"] * m["W"], params["P"] * m["P"], params["V"]
    L, N, B = cache["x"].shape
    wc = W[:, :, 1].T[:, :, None]
    pi, pf, po = (P[:, j][:, None] for j in range(3))
    vk = V[:, 0][:, None]
    ws = workspace((L, N, B), work)
    dA, dZ = ws["dA"], ws["dZ"]                      # dE/dnet_u per unit and step, dE/dnet_k
    ds_next = np.zeros((N, B))                       # dE/ds_t through step t+1
    dyc_next = np.zeros((N, B))                      # dE/dy^c_t through step t+1
    trunc = cfg.truncated
    for t in range(L - 1, -1, -1):
        y, s, o = cache["y"][t], cache["s"][t], cache["o"][t]
        i, f, g, sp = cache["i"][t], cache["f"][t], cache["g"][t], cache["sp"][t]
        dy = 2.0 * cache["w"][t] * cache["e"][t] / (L * B)      # E = sum w e^2 / (L B)
        dz = dy if linear is True else dy * y * (1.0 - y) if linear is False else \
            np.where(linear, dy, dy * y * (1.0 - y))            # y^k = f(net_k)
        dyc = dz * vk + dyc_next                                # net_k = w_k y^c + b_k
        dao = dyc * s * o * (1.0 - o)                           # y^c = y^out s_t
        ds = dyc * o + ds_next                                  # y^c = y^out s_t
        if not trunc:
            ds += dao * po                                      # y^out = f(.. + p_out s_t)
        dai = ds * g * i * (1.0 - i)                            # s_t = f s_{t-1} + i g
        daf = ds * sp * f * (1.0 - f)                           # (0 where f = 1)
        dac = ds * i                                            # g = net_c
        dZ[t], dA[C, t], dA[IN, t], dA[FG, t], dA[OUT, t] = dz, dac, dai, daf, dao
        if trunc:                                               # the paper's truncation:
            dsp, dycp = ds * f, 0.0                             # error flows via the CEC only
        else:
            dsp = ds * f + dai * pi + daf * pf                  # peepholes read s_{t-1}
            dycp = dac * wc[C] + dai * wc[IN] + daf * wc[FG] + dao * wc[OUT]  # net_u(y^c_t-1)
        keep = cache["keep"][t]                                 # a restart cuts the past
        ds_next, dyc_next = dsp * keep, dycp * keep
    dz = dZ
    x, ycp, sp, s = cache["x"], cache["ycp"], cache["sp"], cache["s"]
    gW = np.empty((N, 4, 3))
    gW[:, :, 0] = np.einsum("ulnb,lnb->nu", dA, x)
    gW[:, :, 1] = np.einsum("ulnb,lnb->nu", dA, ycp)
    gW[:, :, 2] = np.einsum("ulnb->nu", dA)
    gP = np.stack([np.einsum("lnb,lnb->n", dA[1], sp), np.einsum("lnb,lnb->n", dA[2], sp),
                   np.einsum("lnb,lnb->n", dA[3], s)], axis=1)
    gV = np.stack([np.einsum("lnb,lnb->n", dz, cache["yc"]), np.einsum("lnb->n", dz)], axis=1)
    return dict(W=gW * m["W"], P=gP * m["P"], V=gV)


def loss_and_grads(params: dict, batch: dict, cfg):
    """Loss and its gradient: the full gradient unless cfg.truncated (the paper's)."""
    per_net, cache, _ = forward(params, batch, cfg)
    return float(np.sum(per_net)), backward(params, batch, cfg, cache)


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    tasks: tuple = PAPER_TASKS            # task settings (see TASK_RE)
    variants: tuple = ("peephole", "no_peephole")  # GTS settings add "no_forget"
    inits: tuple = INITS                  # initialisations, each a row per variant (INITS)
    restarts: int = 12                    # optimisation restarts per seed, best by training error
    streams: int = 1                      # training streams per net (MSD: random; GTS/PFG: 1)
    msd_streams: int = 4                  # training streams per net for MSD
    chunk_periods: float = 2.0            # BPTT chunk length in periods F (state carried)
    min_chunk: int = 20                   # ... but at least this many steps
    train_steps: int = 500_000            # training steps per net and stream (updates =
                                          # train_steps / chunk length) ...
    steps_per_F: int = 0                  # ... but at least this many times the period F
                                          # (0: off)
    lr: float = 1e-2                      # learning rate at the start ...
    lr_final: float = 1e-3                # ... decaying geometrically to this at the end
    optimizer: str = "adam"               # adam | sgd (the paper's: SGD with momentum)
    adam_relative: bool = False           # Adam steps scaled by max(1, |weight|)
    momentum: float = 0.99                # SGD momentum
    clip: float = 1.0                     # per-net gradient-norm clip in the training loop
                                          # (0: none)
    init_scale: float = 0.3               # weights ~ U[-a, a] (paper: 0.1)
    bias_in: float = 0.0                  # input gate bias offset (paper: 0)
    bias_forget: float = 2.0              # forget gate bias offset (paper: -2)
    bias_out: float = 2.0                 # output gate bias offset (paper: +2)
    bias_cell: float = 0.0                # cell input bias offset
    forget_self_neg: bool = False         # init p_forget, w_forget,c <= 0 (state closes f)
    counter_init: bool = True             # start near a counter (see init_params)
    counter_gain: float = 20.0            # slope k of the counter's forget gate
    counter_spread: float = 0.5           # its period is drawn from F [1, 1 + spread]
    counter_out: bool = True              # ... and its output gate a random step in s
    state_ref: float = 0.0                # > 0: random weights reading s / y^c scaled by
                                          # min(1, state_ref / F) (0: off)
    spike_weight: float = 1.0             # GTS: spike steps weigh spike_weight * (F - 1)
    terminate: bool = True                # a training stream ends at its first error
    grace: int = 0                        # ... plus this many steps (0: the paper)
    restart_life: float = 0.0             # > 0: streams also restart at random, mean life
                                          # restart_life periods (0: off)
    max_spikes: int = 100                 # ... or after this many spikes / periods
    nmsd_solved: int = 100                # NMSD: training stops after this many correct
                                          # sequences in a row (one sequence = one stream)
    stop_all_frozen: bool = False         # end the training loop once every net stopped
    test_spikes: int = 1000               # test stream length in spikes / periods
    select_spikes: int = 100              # selection stream for choosing among restarts
    select_state: float = 0.5             # ... which starts from a cell state ~ U[-a, a]
                                          # (the test starts from 0, so they differ)
    snapshots: int = 40                   # parameter snapshots kept for the GIF
    truncated: bool = False               # the paper's truncated gradient (error flows back
                                          # in time only through the CEC, not through
                                          # peepholes or recurrent y^c); False: full BPTT
    stop_when_solved: bool = True         # a net's training stops at its first error-free
                                          # full-length training stream (the paper's rule)
    pbt_every: int = 5000                 # > 0: every this many training steps, per seed
                                          # and variant, replace the restarts whose training
                                          # streams die soonest by noisy copies of the best
    pbt_frac: float = 0.25                # ... this fraction of them
    pbt_noise: float = 0.1                # ... multiplicative noise on the copied weights
    pbt_until: float = 0.8                # ... only during this fraction of the updates


def n_updates(cfg, task: Task) -> int:
    steps = max(cfg.train_steps, cfg.steps_per_F * task.F)
    return max(1, -(-steps // chunk_len(cfg, task)))


def chunk_len(cfg, task: Task) -> int:
    return max(cfg.min_chunk, int(round(cfg.chunk_periods * task.F)))


def n_streams(cfg, task: Task) -> int:
    return cfg.msd_streams if task.kind in ("msd", "nmsd") else cfg.streams


def make_batch(cfg, task: Task, var_ids: np.ndarray, streams: dict, rng, L: int) -> dict:
    N, B = streams["s"].shape
    draws = rng.choice(np.array(task.delays or (0,)), size=(L, N, B))
    return dict(task=task.name, var_ids=var_ids, draws=draws, streams=streams,
                terminate=cfg.terminate, u=rng.random(size=(L, N, B)))


def sample_batch(cfg, rng: np.random.Generator) -> dict:
    """A chunk of training streams for the first task, mid-stream (nonzero state)."""
    task = parse_task(cfg.tasks[0])
    var_ids = net_layout(cfg)
    N, B = len(var_ids), n_streams(cfg, task)
    st = new_streams(task, N, B)
    st["tau"] = rng.integers(0, 3 * task.F, size=(N, B))
    st["cd"] = rng.integers(0, task.F, size=(N, B))
    st["cur"] = rng.choice(np.array(task.delays or (0,)), size=(N, B))
    st["first"] = np.zeros((N, B), dtype=bool)
    st["s"] = rng.uniform(0.0, 2.0, size=(N, B))
    st["yc"] = rng.uniform(0.0, 1.0, size=(N, B))
    return make_batch(cfg, task, var_ids, st, rng, chunk_len(cfg, task))


# ---------------------------------------------------------------------------------------
# The paper's criterion: max |error| over a continual stream (no resets, no teacher forcing)
# ---------------------------------------------------------------------------------------
def task_variants(cfg, task: Task) -> tuple:
    """no_forget is run on GTS only (the paper's no-forget experiment)."""
    return tuple(v for v in cfg.variants if v != "no_forget" or task.kind == "gts")


ERR_CAP = 1e6          # errors of nets whose state blew up are reported as this


def run_stream(params: dict, var_ids: np.ndarray, cfg, task: Task, n_spikes: int, rngs: list,
               s0: np.ndarray | None = None, block: int = 2000, tasks: tuple | None = None,
               task_ids: np.ndarray | None = None) -> dict:
    """Free-run every net on one continual stream, no resets, scored over its first n_spikes
    spikes (MSD) or n_spikes periods (GTS, PFG).

    The nets are len(rngs) equal groups (one per seed); group j's delays come from rngs[j]
    and are shared by all its nets (every net of a seed sees the same stream), so a net's
    result depends only on its own weights and its seed. s0: initial cell state per net
    (default 0, the test); y^c starts at 0. Returns per net the max |error| over the scored
    window, the first step with |error| >= the criterion's threshold (-1 if none), the mse
    and the steps the window spans. tasks, task_ids: settings of task's kind and F stacked
    in the call (see group_spec); each group of nets holds one setting.
    """
    N, G = len(var_ids), len(rngs)
    per = N // G
    names = tasks or (task.name,)
    tid = np.zeros(N, dtype=np.int64) if task_ids is None else np.asarray(task_ids)
    group_delays = [np.array(parse_task(names[tid[j * per]]).delays or (0,)) for j in range(G)]
    thr = np.array([parse_task(n).threshold for n in names])[tid]
    st = new_streams(task, N, 1)
    if s0 is not None:
        st["s"] = np.asarray(s0, dtype=np.float64).reshape(N, 1).copy()
    limit = n_spikes * (1 if task.kind in ("msd", "nmsd") else task.F)   # scored steps
    max_err, first_err = np.zeros(N), np.full(N, -1, dtype=np.int64)
    sq, n_sc, steps, t0 = np.zeros(N), np.zeros(N, dtype=np.int64), np.zeros(N, np.int64), 0
    ecfg = dataclasses.replace(cfg, terminate=False, restart_life=0.0)
    work: dict = {}
    while n_sc.min() < limit:
        draws = np.concatenate([np.repeat(r.choice(dl, size=(block, 1, 1)), per, axis=1)
                                for r, dl in zip(rngs, group_delays, strict=True)], axis=1)
        batch = dict(task=names if tasks else task.name, task_ids=tid, var_ids=var_ids,
                     draws=draws, streams=st, terminate=False, u=None)
        with np.errstate(all="ignore"):
            _, cache, st = forward(params, batch, ecfg, keep_cache=False, work=work)
        scored = cache["w"][:, :, 0] > 0                            # (L, N)
        cum = n_sc + np.cumsum(scored, axis=0)
        win = scored & (cum <= limit)                               # the first `limit` only
        ae = np.nan_to_num(np.abs(cache["e"][:, :, 0]), nan=np.inf)   # blown up: inf
        ae = np.where(win, ae, 0.0)
        max_err = np.maximum(max_err, ae.max(axis=0))
        bad = ae >= thr
        hit = bad.any(axis=0) & (first_err < 0)
        first_err[hit] = t0 + bad.argmax(axis=0)[hit]
        # per-net sums in one fixed order (row-wise), whatever the number of nets
        sq += np.ascontiguousarray((np.minimum(ae, ERR_CAP) ** 2).T).sum(axis=1)
        done = (cum[-1] >= limit) & (n_sc < limit)                  # window ends in this block
        steps[done] = t0 + np.argmax(cum[:, done] >= limit, axis=0) + 1
        n_sc = np.minimum(cum[-1], limit)
        t0 += block
    max_err = np.minimum(max_err, ERR_CAP)                     # keeps results.json finite
    return dict(max_err=max_err, first_err=first_err, mse=sq / np.maximum(n_sc, 1),
                steps=steps)


def trace(params: dict, var_ids: np.ndarray, cfg, task: Task, steps: int, rng) -> dict:
    """Free-run the nets from the zero state and keep every activation (for the figures)."""
    N = len(var_ids)
    st = new_streams(task, N, 1)
    ecfg = dataclasses.replace(cfg, terminate=False, restart_life=0.0)
    batch = make_batch(ecfg, task, var_ids, st, rng, steps)
    _, cache, _ = forward(params, batch, ecfg)
    d = cache["y"] - cache["e"]                                  # target where scored
    out = {k: cache[k][:, :, 0].T.copy() for k in ("x", "s", "i", "f", "o", "y")}
    out["d"] = np.where(cache["w"][:, :, 0].T > 0, d[:, :, 0].T, np.nan)
    return out


# ---------------------------------------------------------------------------------------
# Training: Adam on chunked BPTT; training streams end at their first error (the paper)
# ---------------------------------------------------------------------------------------
def seed_rngs(seed: int, task: Task) -> tuple:
    """Independent init / train / test / selection generators for (seed, task)."""
    key = [seed] + [ord(ch) for ch in task.name]
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(key).spawn(4))


def adam_step(p, g, m, v, k, lr, relative=False, b1=0.9, b2=0.999, eps=1e-8):
    """Adam; relative=True scales each step by max(1, |weight|) so that the large counter
    thresholds (O(gain x F)) move as fast, relative to their size, as the O(1) weights."""
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    step = lr * (m / (1 - b1 ** k)) / (np.sqrt(v / (1 - b2 ** k)) + eps)
    p -= step * np.maximum(1.0, np.abs(p)) if relative else step


def clip_per_net(grads: dict, clip: float) -> None:
    """Scale each net's gradient to norm <= clip (nets are independent problems)."""
    sq = sum(np.sum(g.reshape(len(g), -1) ** 2, axis=1) for g in grads.values())
    scale = np.minimum(1.0, clip / (np.sqrt(sq) + 1e-12))
    for g in grads.values():
        g *= scale.reshape((-1,) + (1,) * (g.ndim - 1))


def exploit_explore(params, mom, vel, st, ended, rngs, cfg, task, frozen) -> None:
    """Population step inside each (seed, variant) group of restarts: the nets whose training
    streams ended most often (= died soonest at an error) since the last call are replaced by
    noisy copies of the longest-living ones, with fresh streams. Uses training streams only."""
    S, nv, R = ended.shape
    n_rep = max(1, int(R * cfg.pbt_frac))
    for si in range(S):
        noise_rng = rngs[si]
        for vi in range(nv):
            order = np.argsort(ended[si, vi], kind="stable")    # fewest endings first
            live = [j for j in order if not frozen[si, vi, j]]  # frozen nets stay as they are
            n = min(n_rep, len(live))
            base = (si * nv + vi) * R
            for dst, src in zip(live[len(live) - n:], order[:n], strict=True):
                if dst == src:
                    continue
                d, s_ = base + dst, base + src
                for name in params:
                    eps = noise_rng.normal(size=params[name][d].shape)
                    params[name][d] = params[name][s_] * (1 + cfg.pbt_noise * eps)
                    mom[name][d], vel[name][d] = mom[name][s_], vel[name][s_]
                reset = np.zeros(st["s"].shape, dtype=bool)
                reset[d] = True
                restart_streams(task, st, reset)
                st["s"][d], st["yc"][d] = 0.0, 0.0


def stop_diverged(bad, k, params, mom, vel, store, st, task, diverged_at, names) -> None:
    """Runs (nets) whose loss went non-finite at update k stop there and count as failed:
    their weights, optimizer state and streams are zeroed, so the stacked kernel stays finite,
    and they are never trained, chosen or tested again. One line on stderr per run."""
    diverged_at[bad] = k
    for name in params:
        for arr in (params, mom, vel, store):
            arr[name][bad] = 0.0
    restart_streams(task, st, np.repeat(bad[:, None], st["tau"].shape[1], axis=1))
    st["s"][bad], st["yc"][bad] = 0.0, 0.0
    for j in np.flatnonzero(bad):
        print(f"warning: {names[j]}: non-finite loss at update {k}; this run stops and counts "
              f"as failed", file=sys.stderr, flush=True)


def train_setting(cfg, task_name: str, seeds, log=None) -> list:
    """Train rows (init x variant) x restarts x seeds of one task setting as one batch of nets
    (see train_group)."""
    return train_group(cfg, (task_name,), seeds, log)


def stack_groups(task_names) -> list:
    """Settings that share one kernel call: same kind and period F (so the same chunk
    length, streams per net and variants), in their given order."""
    groups: dict = {}
    for name in task_names:
        t = parse_task(name)
        groups.setdefault((t.kind, t.F), []).append(name)
    return [tuple(g) for g in groups.values()]


def train_group(cfg, task_names, seeds, log=None) -> list:
    """Train rows (init x variant) x restarts x seeds of settings of one kind and period as
    one batch of nets: seed-major, then setting, then row, then restart. A (seed, setting)
    block is exactly the nets, streams and generators of that seed and setting alone.

    Every restart is a run of its own: all are tested on the seed's test stream; the seed's
    net of a row is the restart chosen on a separate selection stream (never the test)."""
    names = tuple(task_names)
    tasks = [parse_task(n) for n in names]
    task = tasks[0]
    tcfg = dataclasses.replace(cfg, variants=task_variants(cfg, task))
    rows = rows_of(tcfg)
    seeds = list(seeds)
    S, T, nv, R = len(seeds), len(tasks), len(rows), cfg.restarts
    npr = nv * R                                     # nets per seed and setting
    G = S * T                                        # (seed, setting) blocks
    var_ids = np.tile(net_layout(tcfg), G)
    task_ids = np.tile(np.repeat(np.arange(T), npr), S)
    rngs = [seed_rngs(sd, t) for sd in seeds for t in tasks]
    inits = [init_params(tcfg, r[0], t) for r, t in zip(rngs, tasks * S, strict=True)]
    params = {k: np.concatenate([p[k] for p in inits]) for k in inits[0]}
    N, B, L = G * npr, n_streams(cfg, task), chunk_len(cfg, task)
    st = new_streams(task, N, B)
    mom = {k: np.zeros_like(v) for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    n_upd = n_updates(cfg, task)
    pbt_every = -(-cfg.pbt_every // L) if cfg.pbt_every else 0
    snap_every = max(1, n_upd // cfg.snapshots)
    snaps, curve_loss, curve_upd = [], [], []
    acc, t_start, t_log = np.zeros(N), time.perf_counter(), time.perf_counter()
    cpu_start = time.process_time()
    streams_started, window_streams = np.zeros(N), np.zeros(N)
    frozen, solved_at = np.zeros(N, dtype=bool), np.full(N, -1, dtype=np.int64)
    store = {n: v.copy() for n, v in params.items()}
    delays = [np.array(t.delays or (0,)) for t in tasks] * S
    work: dict = {}
    draws, u = np.empty((L, N, B), dtype=np.int64), np.empty((L, N, B))
    random_restarts = cfg.restart_life > 0
    label = "+".join(names)
    diverged_at = np.zeros(N, dtype=np.int64)       # > 0: the update a run diverged at
    run_names = [f"{tk.name} seed {sd} {row_name(*rw)} restart {ri}"
                 for sd in seeds for tk in tasks for rw in rows for ri in range(R)]
    for k in range(1, n_upd + 1):
        for j, r in enumerate(rngs):
            draws[:, j * npr:(j + 1) * npr] = r[1].choice(delays[j], size=(L, npr, B))
            if random_restarts:
                u[:, j * npr:(j + 1) * npr] = r[1].random(size=(L, npr, B))
        batch = dict(task=names if T > 1 else task.name, task_ids=task_ids, var_ids=var_ids,
                     draws=draws, streams=st, terminate=cfg.terminate, u=u)
        per_net, cache, st = forward(params, batch, tcfg, work=work)
        bad = ~np.isfinite(per_net)
        if bad.any():                                # a diverged run stops (and fails)
            stop_diverged(bad, k, params, mom, vel, store, st, task, diverged_at, run_names)
            frozen |= bad
            per_net[bad] = 0.0
        lval = float(np.sum(per_net))
        grads = backward(params, batch, tcfg, cache, work=work)
        if diverged_at.any():                        # no update for a stopped run
            for g in grads.values():
                g[diverged_at > 0] = 0.0
        ended = (cache["keep"] == 0).sum(axis=(0, 2))
        streams_started += ended * ~frozen           # a stopped net trains no more streams
        if cfg.stop_when_solved:
            # the paper's stopping rule, per net: a training stream that ran its full
            # max_spikes without an error ends that net's training (its weights are frozen)
            new = (cache["completed"] > 0) & ~frozen
            solved_at[new] = k
            frozen |= new
            for name in params:
                store[name][new] = params[name][new]
        if cfg.clip > 0:
            clip_per_net(grads, cfg.clip)
        lr = cfg.lr * (cfg.lr_final / cfg.lr) ** ((k - 1) / max(1, n_upd - 1))
        for name in params:
            if cfg.optimizer == "adam":
                adam_step(params[name], grads[name], mom[name], vel[name], k, lr,
                          cfg.adam_relative)
            else:                                    # SGD with momentum (the paper)
                mom[name] *= cfg.momentum
                mom[name] -= lr * grads[name]
                params[name] += mom[name]
        if cfg.stop_when_solved:
            for name in params:
                params[name][frozen] = store[name][frozen]
        acc += per_net
        window_streams += ended
        if pbt_every and k % pbt_every == 0 and k < n_upd * cfg.pbt_until:
            ranked = np.where(diverged_at > 0, np.inf, window_streams)  # never a source
            exploit_explore(params, mom, vel, st, ranked.reshape(G, nv, R),
                            [r[1] for r in rngs], cfg, task, frozen.reshape(G, nv, R))
            window_streams[:] = 0
        if k % snap_every == 0:
            snaps.append({n: v.copy() for n, v in params.items()})
            curve_loss.append(acc / snap_every)
            curve_upd.append(k)
            acc = np.zeros(N)
        if cfg.stop_all_frozen and frozen.all():
            break
        if log is not None and time.perf_counter() - t_log > 5.0:
            t_log = time.perf_counter()
            log(f"{label}: update {k}/{n_upd}, streams "
                f"{int(streams_started.sum())}, loss {lval / N:.4g}, "
                f"{time.perf_counter() - t_start:.0f} s")
    train_s = time.perf_counter() - t_start
    train_cpu = time.process_time() - cpu_start
    # choose among restarts by max error on a selection stream: its own delays (MSD) and a
    # random initial cell state, so it differs from every test stream (which starts at 0)
    s0 = np.concatenate([r[3].uniform(-cfg.select_state, cfg.select_state, size=npr)
                         for r in rngs])
    sel = run_stream(params, var_ids, tcfg, task, cfg.select_spikes, [r[3] for r in rngs],
                     s0=s0, tasks=names, task_ids=task_ids)
    score = sel["max_err"] + 1e-3 * np.minimum(sel["mse"], 1e3)
    score[diverged_at > 0] = np.inf                  # a diverged run is never chosen
    pick = score.reshape(G, nv, R).argmin(axis=2)                # (G, nv)
    # every restart (run) is tested on its seed's test stream, from the zero state
    t_eval = time.perf_counter()
    test = run_stream(params, var_ids, tcfg, task, cfg.test_spikes, [r[2] for r in rngs],
                      tasks=names, task_ids=task_ids)
    eval_s = time.perf_counter() - t_eval
    steps_per_s = n_upd * N * B * L / train_s
    runs_upd = np.where(solved_at > 0, solved_at, np.where(diverged_at > 0, diverged_at, n_upd))
    ok = diverged_at == 0                            # a diverged run has no test score

    def score_of(values, j):
        return float(values[j]) if ok[j] else None

    records = []
    for gi, (seed, tk) in enumerate((sd, t) for sd in seeds for t in tasks):
        for vi, (variant, init) in enumerate(rows):
            base = gi * npr + vi * R
            net = base + pick[gi, vi]
            runs = slice(base, base + R)
            err = score_of(test["max_err"], net)
            run_ids = range(base, base + R)
            run_ok = ok[runs] & (test["max_err"][runs] < tk.threshold)
            records.append(dict(
                task=tk.name, variant=row_name(variant, init), arch=variant, init=init,
                seed=seed, solved=bool(ok[net] and err < tk.threshold),
                test_max_abs_error=err,
                trivial_max_abs_error=trivial_error(tk),
                test_mse=score_of(test["mse"], net),
                test_first_error_step=int(test["first_err"][net]) if ok[net] else None,
                test_steps=int(test["steps"][net]),
                restart_chosen=int(pick[gi, vi]),
                select_max_abs_error=[score_of(sel["max_err"], j) for j in run_ids],
                n_runs=R, runs_solved=int(run_ok.sum()),
                runs_test_max_abs_error=[score_of(test["max_err"], j) for j in run_ids],
                runs_diverged_at_update=[int(diverged_at[j]) or None for j in run_ids],
                training_streams=int(streams_started[net]),
                sequences_total=int(streams_started[runs].sum()),
                updates_to_solve=int(solved_at[net]) if solved_at[net] > 0 else None,
                updates_total=int(runs_upd[runs].sum()),
                training_updates=n_upd, updates_run=k, chunk_steps=L, streams_per_net=B,
                curve_updates=list(curve_upd),
                curve_loss=[float(c[net]) for c in curve_loss],
                train_wall_s=train_s / G, eval_wall_s=eval_s / G, stacked_with=list(names),
                train_cpu_time_per_net_s=train_cpu / N,
                throughput_steps_per_s=steps_per_s,
                n_weights=n_weights(variant),
                artifacts=dict(params={n: v[net] for n, v in params.items()},
                               snaps={n: np.stack([sn[n][net] for sn in snaps])
                                      for n in params} if snaps else {},
                               snap_updates=np.array(curve_upd))))
    return records


def train(cfg, seed: int, log=None) -> dict:
    """One seed: every task setting x variant (restarts chosen by training error)."""
    runs = []
    for group in stack_groups(cfg.tasks):
        runs += train_group(cfg, group, [seed], log)
    return dict(seed=seed, runs=runs)


# ---------------------------------------------------------------------------------------
# Presets, gradient-check cases
# ---------------------------------------------------------------------------------------
PRESETS = {
    # the paper's procedure as far as stated: its init (U[-0.1, 0.1], gate biases 0/-2/+2),
    # SGD lr 1e-5 with momentum 0.99, the truncated gradient, one training stream at a
    # time, streams end at the first error or after 100 spikes, training stops at the first
    # error-free stream, one run per trial (10 trials = seeds 0-9), no clipping, no
    # restarts or population step. Budget: 5M training steps per net (500k * F for F > 10).
    "paper": Config(variants=VARIANTS, inits=("paper",), restarts=1, msd_streams=1,
                    optimizer="sgd", lr=1e-5, lr_final=1e-5, momentum=0.99, clip=0.0,
                    truncated=True, pbt_every=0, train_steps=5_000_000,
                    steps_per_F=500_000),
    # the modern headline: Adam, counter prior (and paper-init rows), 12 restarts with a
    # population step; 25 000 updates of 2F-step chunks for every setting
    # (side_runs/period_scaling, arm D)
    "modern": Config(variants=VARIANTS, steps_per_F=50_000),
    "quick": Config(tasks=("msd_F4_I01", "gts_F4", "pfg_cos_F4"), variants=VARIANTS,
                    restarts=2, msd_streams=2, train_steps=1200, pbt_every=200, test_spikes=40,
                    select_spikes=10, snapshots=6),
}
# the committed runs of each preset: {preset: {subdir of the folder: extra argv}}
RUNS = {"modern": {".": []}, "paper": {"paper": ["--preset", "paper", "--checkpoint-units"]},
        "quick": {".": ["--preset", "quick"]}}

# Restarts inside a chunk cut the gradient (keep mask); the stream-restarts cases draw them
# at random (restart_life = 1 period: a restart every F = 3-4 steps on average, about 2 in
# each 8-step chunk, see test_gradcheck_cases_restart) so that the loss is smooth in the
# weights. Error-triggered restarts use the same cut; only their trigger differs (a step
# function of the weights, no gradient). Every case holds both inits' rows.
GRADCHECK_CASES = [
    (f"{task}/{'stream-restarts' if life else 'no-restarts'}",
     Config(tasks=(task,), variants=VARIANTS, restarts=1, streams=2, msd_streams=2,
            min_chunk=8, terminate=False, restart_life=life, init_scale=0.1,
            counter_init=False))
    for task in ("msd_F3_I01", "msd_F3_I012", "gts_F3", "pfg_cos_F4")
    for life in (0.0, 1.0)
] + [  # NMSD: every sequence ends after its one interval (a deterministic restart)
    ("nmsd_F3_I01/sequences", Config(tasks=("nmsd_F3_I01",), variants=("peephole",
     "no_peephole"), restarts=1, msd_streams=2, min_chunk=12, terminate=False,
     init_scale=0.1, counter_init=False))
]


# ---------------------------------------------------------------------------------------
# Results: summary, README table, catalog cell, overview rows
# ---------------------------------------------------------------------------------------
def paper_finding(task_name: str, variant: str) -> str:
    """What the paper reports for a setting and variant (learned / not learned / -)."""
    task = parse_task(task_name)
    if variant == "peephole":
        return "learned"
    if variant == "no_forget":
        return "fails"
    if task.kind == "msd":
        return "learned" if task.F == 10 else "–"
    if task.kind == "pfg":
        return "learned" if (task.wave == "cos" and task.F == 10) else "not learned"
    return "–"


def _stat(values: list) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return dict(median=None, min=None, max=None, values=values)
    return dict(median=float(np.median(vals)), min=float(min(vals)), max=float(max(vals)),
                values=values)


def _row_order(task: str, variant: str) -> tuple:
    v, init = split_row(variant)
    return (PAPER_TASKS.index(task) if task in PAPER_TASKS else 99, task,
            INITS.index(init), VARIANTS.index(v))


def summarize(records: list) -> dict:
    out = {}
    keys = sorted({(r["task"], r["variant"]) for r in records}, key=lambda k: _row_order(*k))
    for task, variant in keys:
        rs = sorted((r for r in records if r["task"] == task and r["variant"] == variant),
                    key=lambda r: r["seed"])
        out[f"{task}/{variant}"] = dict(
            n_seeds=len(rs), solved=int(sum(r["solved"] for r in rs)),
            n_runs=int(sum(r["n_runs"] for r in rs)),
            runs_solved=int(sum(r["runs_solved"] for r in rs)),
            runs_diverged=int(sum(d is not None for r in rs
                                  for d in r.get("runs_diverged_at_update", []))),
            sequences_total=int(sum(r["sequences_total"] for r in rs)),
            updates_total=int(sum(r["updates_total"] for r in rs)),
            trivial_max_abs_error=rs[0]["trivial_max_abs_error"],
            test_max_abs_error=_stat([r["test_max_abs_error"] for r in rs]),
            training_streams=_stat([r["training_streams"] for r in rs]),
        )
    return out


def finalize_results(results: dict) -> dict:
    """Seeds in canonical order (setting, init, variant, seed); summary from the records."""
    results["seeds"] = sorted(results["seeds"],
                              key=lambda r: _row_order(r["task"], r["variant"]) + (r["seed"],))
    results["summary"] = summarize(results["seeds"])
    return results


def _cell(s: dict | None) -> str:
    if not s:
        return "–"
    return f"{s['solved']}/{s['n_seeds']} ({s['runs_solved']}/{s['n_runs']})"


def _paper_summary(paper_runs) -> dict:
    """The summary of the committed paper-procedure run (subdir `paper`), or {}."""
    res = (paper_runs or {}).get("paper")
    return res["summary"] if res else {}


def results_table(results: dict, paper_runs=None) -> str:
    """Seeds solved (runs solved) per setting and variant: the paper's finding, ours under
    the paper's procedure, ours modern (counter prior), ours modern with the paper's init."""
    sm, ps = results["summary"], _paper_summary(paper_runs)
    rows = ["| setting | variant | paper | ours, paper procedure | ours, modern | "
            "ours, modern, paper's init |", "|---|---|---|---|---|---|"]
    pairs = list(dict.fromkeys((k.split("/")[0], split_row(k.split("/")[1])[0]) for k in sm))
    for task, variant in pairs:
        s = sm.get(f"{task}/{variant}")
        pi = sm.get(f"{task}/{row_name(variant, 'paper')}")
        pp = ps.get(f"{task}/{row_name(variant, 'paper')}") if ps else None
        rows.append(f"| {task} | {variant} | {paper_finding(task, variant)} | "
                    f"{_cell(pp) if ps else 'not run'} | {_cell(s)} | {_cell(pi)} |")
    return "\n".join(rows)


def headline(results: dict, paper_runs=None) -> str:
    sm, ps = results["summary"], _paper_summary(paper_runs)

    def k(key, src=sm):
        s = src.get(key)
        return f"{s['solved']}/{s['n_seeds']} seeds ({s['runs_solved']}/{s['n_runs']} runs)" \
            if s else "–"
    settings = list(dict.fromkeys(key.split("/")[0] for key in sm))

    def n_solved(src, variant):
        return sum(1 for t in settings if src.get(f"{t}/{variant}", {}).get("solved", 0) > 0)
    any_pp, any_pi = n_solved(sm, "peephole"), n_solved(sm, "peephole_paper_init")
    paper = (f"paper procedure: peephole solves {n_solved(ps, 'peephole_paper_init')}"
             f"/{len(settings)} settings" if ps else "paper procedure: not run")
    return (f"modern, peephole: {any_pp}/{len(settings)} settings solved by >= 1 seed "
            f"(paper: all); MSD 49 vs 50 {k('msd_F49_I01/peephole')}, GTS F=10 "
            f"{k('gts_F10/peephole')}, PFG cos F=10 {k('pfg_cos_F10/peephole')}; "
            f"with the paper's init: {any_pi}/{len(settings)} settings; {paper}")


def overview(results: dict, paper_runs=None) -> list:
    """Peephole success rate per task family (seeds solved over all its settings)."""
    sm, ps = results["summary"], _paper_summary(paper_runs)

    def rate(src, kind, variant):
        rows = [s for key, s in src.items() if key.startswith(kind + "_")
                and key.endswith("/" + variant)]
        return sum(s["solved"] for s in rows) / sum(s["n_seeds"] for s in rows) if rows \
            else None
    out = []
    for kind, label in (("msd", "Timing: MSD, peephole"), ("gts", "Timing: GTS, peephole"),
                        ("pfg", "Timing: PFG, peephole")):
        out.append(dict(label=label, paper=None,
                        ours_paper=rate(ps, kind, "peephole_paper_init") if ps else None,
                        ours_modern=rate(sm, kind, "peephole")))
    return out


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
DEFAULT_OUTDIR = HERE.parent / "runs" / HERE.name


def parse_seeds(text: str) -> list:
    """`3` (seed 3), `0-9` (inclusive range), `0,2,5` (a list); repeats refused."""
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        if b < a:
            raise ValueError(f"empty seed range {text!r}")
        return list(range(a, b + 1))
    if re.fullmatch(r"\d+", text):
        return [int(text)]
    if re.fullmatch(r"\d+(,\d+)+", text):
        seeds = [int(t) for t in text.split(",")]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"repeated seed in {text!r}")
        return sorted(seeds)
    raise ValueError(f"bad seeds {text!r} (use 3, 0-9 or 0,2,5)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="modern",
                   help="paper: the paper's procedure; modern: the headline; quick: seconds "
                        "(default: modern)")
    p.add_argument("--seeds", default="0-9",
                   help="one seed N, a range A-B or a list a,b,c (default: 0-9)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel processes (one task setting and seed group per job) "
                        f"(default: {os.cpu_count() or 1}, the cores)")
    p.add_argument("--outdir", default=str(DEFAULT_OUTDIR),
                   help="where results.json and run.npz go (default: runs/"
                        f"{HERE.name}/ at the repo root; the committed run is rewritten "
                        f"only with --outdir {HERE.name})")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--checkpoint-units", action="store_true",
                   help="save each finished (settings, seeds) unit in OUTDIR/units/; the "
                        "same command started again skips the saved units (removed once "
                        "results.json is written)")
    p.add_argument("--tasks", default=None,
                   help="comma list of task settings, e.g. msd_F49_I01,gts_F10,pfg_tri_F25 "
                        "(default: the preset's)")
    p.add_argument("--variants", default=None,
                   help=f"comma list from {','.join(VARIANTS)} (default: the preset's)")
    p.add_argument("--inits", default=None,
                   help=f"comma list from {','.join(INITS)} (default: the preset's)")
    p.add_argument("--gradient", choices=("full", "truncated"), default=None,
                   help="full BPTT, or the paper's truncation (no error through peepholes "
                        "and recurrent y^c; only through the CEC) (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                   help="adam, or the paper's SGD with momentum (default: the preset's)")
    p.add_argument("--train-steps", type=int, default=None,
                   help="training steps per net and stream, every setting alike "
                        "(default: the preset's)")
    p.add_argument("--restarts", type=int, default=None,
                   help="optimisation restarts per seed (default: the preset's)")
    return p


def config_from_args(args, parser) -> tuple:
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        parser.error(str(exc))
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    cfg = PRESETS[args.preset]
    over = {}
    if args.tasks is not None:
        names = [t for t in args.tasks.split(",") if t]
        if not names:
            parser.error("--tasks is empty")
        for t in names:
            try:
                parse_task(t)
            except ValueError as exc:
                parser.error(str(exc))
        if len(set(names)) != len(names):
            parser.error("--tasks: a setting is repeated")
        over["tasks"] = tuple(names)
    for flag, allowed in (("variants", VARIANTS), ("inits", INITS)):
        val = getattr(args, flag)
        if val is not None:
            vs = tuple(v for v in val.split(",") if v)
            if not vs or any(v not in allowed for v in vs) or len(set(vs)) != len(vs):
                parser.error(f"--{flag} must be distinct names from {','.join(allowed)}")
            over[flag] = vs
    for name in ("lr", "train_steps", "restarts"):
        val = getattr(args, name)
        if val is not None:
            if not val > 0:
                parser.error(f"--{name.replace('_', '-')} must be > 0")
            over[name] = val
    if "train_steps" in over:
        over["steps_per_F"] = 0                         # the given budget, for every F
    if args.gradient is not None:
        over["truncated"] = args.gradient == "truncated"
    if args.optimizer is not None:
        over["optimizer"] = args.optimizer
    if args.optimizer == "sgd" and args.lr is None and cfg.optimizer != "sgd":
        over["lr"], over["lr_final"] = 1e-5, 1e-5      # the paper's rate
    if "lr" in over and "lr_final" not in over:
        over["lr_final"] = over["lr"] * cfg.lr_final / cfg.lr
    cfg = dataclasses.replace(cfg, **over)
    if not args.outdir:
        parser.error("--outdir must not be empty")
    outdir = Path(args.outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        parser.error(f"cannot write to --outdir {outdir}: {exc.strerror or exc}")
    return cfg, seeds, outdir


def _work_units(cfg, seeds: list, jobs: int) -> list:
    """(task, seed group) units, costliest first; seeds split only when tasks < jobs."""
    stacks = stack_groups(cfg.tasks)
    groups = max(1, min(len(seeds), -(-jobs // len(stacks))))
    chunks = [seeds[g::groups] for g in range(groups)]
    units = [(t, c) for t in stacks for c in chunks if c]

    def cost(u):       # training steps x (nets x streams + a per-step overhead), measured
        task = parse_task(u[0][0])
        nets = n_streams(cfg, task) * len(task_variants(cfg, task)) * len(cfg.inits) * \
            cfg.restarts * len(u[1]) * len(u[0])
        return n_updates(cfg, task) * chunk_len(cfg, task) * (nets + 700)
    return sorted(units, key=cost, reverse=True)


def _run_unit(cfg, tasks: tuple, seeds: list, quiet: bool) -> list:
    log = None if quiet else (lambda msg: print(msg, flush=True))
    return train_group(cfg, tasks, seeds, log)


def _ignore_sigint() -> None:
    """Pool initializer: workers leave Ctrl-C to the parent, which terminates them (with
    SIGTERM: the default action, not the parent's handler inherited by the fork)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sigterm_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # `kill PID` stops a run like Ctrl-C, workers included


class UnitStore:
    """The finished (settings, seeds) units of a run, pickled in one folder
    (`--checkpoint-units`): the same command started again loads them instead of training
    them again. A unit's records do not depend on which other units ran or when (each
    (seed, setting) block has its own nets and generators), so a resumed run's records
    are those of an uninterrupted one, timing aside (a loaded unit keeps the wall and CPU
    figures of the process that trained it)."""

    def __init__(self, folder: Path, cfg, commit: str | None = None):
        self.folder, self.config, self.commit = folder, dataclasses.asdict(cfg), commit
        self.loaded_commits: dict = {}  # unit file name -> commit of the run that saved it

    def path(self, tasks, seeds) -> Path:
        return self.folder / f"{'+'.join(tasks)}_seeds_{'-'.join(map(str, seeds))}.pkl"

    def load(self, tasks, seeds):
        """The unit's records, None if it is not saved; ValueError if the file is another
        run's or unreadable."""
        import pickle

        path = self.path(tasks, seeds)
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as f:
                unit = pickle.load(f)
            same = (unit["config"], unit["tasks"], unit["seeds"]) == \
                (self.config, list(tasks), list(seeds))
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot read the saved unit {path}: {exc}") from None
        if not same:
            raise ValueError(f"the saved unit {path} belongs to another run (its config, "
                             "settings or seeds differ); remove it or use another --outdir")
        self.loaded_commits[path.name] = unit.get("git_commit")
        return unit["records"]

    def save(self, tasks, seeds, records) -> None:
        import pickle

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(tasks, seeds)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(dict(config=self.config, tasks=list(tasks), seeds=list(seeds),
                             git_commit=self.commit, records=records), f,
                        protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def run_units(cfg, units: list, jobs: int, quiet: bool, store: UnitStore | None = None
              ) -> list:
    """Every (task, seeds) unit, in a fork pool of `jobs` workers when jobs > 1, records in
    unit order. With `store`, saved units are loaded, not trained, and each unit is saved
    as soon as it finishes."""
    done = {}
    if store is not None:
        for i, (task, sd) in enumerate(units):
            recs = store.load(task, sd)
            if recs is not None:
                done[i] = recs
    todo = [i for i in range(len(units)) if i not in done]

    def finish(i, recs):
        done[i] = recs
        if store is not None:
            store.save(*units[i], recs)

    if jobs == 1 or len(todo) <= 1:
        for i in todo:
            finish(i, _run_unit(cfg, *units[i], quiet))
    else:
        pool = multiprocessing.get_context("fork").Pool(min(jobs, len(todo)),
                                                        initializer=_ignore_sigint)
        try:
            pending = {i: pool.apply_async(_run_unit, (cfg, *units[i], quiet)) for i in todo}
            while pending:
                for i in [i for i, res in pending.items() if res.ready()]:
                    finish(i, pending.pop(i).get())
                if pending:
                    next(iter(pending.values())).wait(0.2)
            pool.close()
        finally:
            pool.terminate()
            pool.join()
    return [r for i in range(len(units)) for r in done[i]]


def save_artifacts(path: Path, records: list) -> None:
    arrays = {}
    for r in records:
        a = r["artifacts"]
        key = f"{r['task']}/{r['variant']}/{r['seed']}"
        for n, v in a["params"].items():
            arrays[f"{key}/{n}"] = v
        for n, v in a["snaps"].items():
            arrays[f"{key}/snap_{n}"] = v
        arrays[f"{key}/snap_updates"] = a["snap_updates"]
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def write_json(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def git_state() -> tuple:
    """(commit, dirty) of the repository holding this script; (None, None) without git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=HERE,
                               capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip() != ""
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    cfg, seeds, outdir = config_from_args(args, parser)
    commit, dirty = git_state()
    t0 = time.perf_counter()
    units = _work_units(cfg, seeds, args.jobs)
    store = UnitStore(outdir / "units", cfg, commit) if args.checkpoint_units else None
    if store is not None:  # refuse another run's saved units before training anything
        try:
            for u in units:
                store.load(*u)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    resumed = dict(store.loaded_commits) if store is not None else {}
    old_term = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        records = run_units(cfg, units, args.jobs, args.quiet, store)
    except KeyboardInterrupt:
        kept = len(list(store.folder.glob("*.pkl"))) if store and store.folder.is_dir() else 0
        print("interrupted: no results written" + (
            f"; {kept} finished units kept in {store.folder} (the same command resumes)"
            if kept else ""), file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, old_term)
    wall = time.perf_counter() - t0
    plain = [{k: v for k, v in r.items() if k != "artifacts"} for r in records]
    results = finalize_results(dict(
        experiment=HERE.name, paper=PAPER,
        command=["python", f"{HERE.name}/{Path(__file__).name}", *argv],
        preset=args.preset, config=dataclasses.asdict(cfg),
        env=dict(python=platform.python_version(), numpy=np.__version__,
                 platform=platform.platform(),
                 blas_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
                 git_commit=commit, git_dirty=dirty),
        wallclock_s=wall,  # units loaded from --checkpoint-units: {file: commit that made it}
        units_resumed=resumed,
        paper_reference=dict(
            criterion="max |error| < 0.49 at every scored step of a 1000-spike test stream "
                      "(spike tasks), < 0.3 over 1000 periods (PFG); no resets, no teacher "
                      "forcing; 10 trials per setting",
            init="weights U[-0.1, 0.1]; gate biases input 0, forget -2, output +2",
            optimizer="SGD, lr 1e-5, momentum 0.99-0.9999; truncated gradient",
            net="1 input, 1 block of 1 cell, 17 weights"),
        summary={}, seeds=plain))
    save_artifacts(outdir / "run.npz", records)
    write_json(outdir / "results.json", results)
    if store is not None:
        store.remove()
    if not args.quiet:
        print(results_table(results))
        print(f"wall {wall:.0f} s")
    print(f"wrote {outdir / 'results.json'}")
    print(f"wrote {outdir / 'run.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
