"""The paper's on-line scheme for the continual embedded Reber grammar (`--preset paper`).

Gers, F. A., Schmidhuber, J. & Cummins, F. (2000). Learning to Forget: Continual Prediction
with LSTM. Neural Computation 12(10), 2451-2471. Experiment: Table 2.

The main script's `--preset paper` runs this file's trainer: one update per symbol with
alpha = 0.5 on the squared error, the truncated LSTM gradient computed forward, training
streams that end at the first error, a 10 x 100k-symbol test after each training stream,
Table 2's five rows, many nets in lock-step, checkpoints that resume bit-identically.

The file reads top to bottom: the forward-mode truncated gradient (equations) -> the
lock-step nets (`OnlineNets`) -> their tests (`TestLane`) -> the training protocol
(`OnlineRun`) -> confirmation on fresh streams -> the paper preset's command (groups,
checkpoints, results). Task, network, init, evaluation and tables are the main script's
(`continual_embedded_reber`, imported as `cer`); the main script imports this file only
to run `--preset paper`.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import dataclasses  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported by path (tests): find the main script beside it
    sys.path.insert(0, str(HERE))
import continual_embedded_reber as cer  # noqa: E402

# ---------------------------------------------------------------------------------------
# The forward-mode truncated gradient, one update per symbol
# ---------------------------------------------------------------------------------------
# Gers et al. (2000) learn online: after every symbol every weight moves by -alpha dE(t)/dw,
# E(t) = 1/2 sum_k (y^k(t) - t^k(t))^2, with the truncated LSTM gradient: error reaches a cell
# only from the output units at the same step and flows back in time only through the cell
# state s_c. That gradient is forward-mode. Per cell v and input m of a unit u in
# {input gate, forget gate of v's block; cell input of v} the partial dS_u[m, v] = ds_v/dw_um
# obeys
#   dS_u(t) = y^phi(t) dS_u(t-1) + z_m(t) C_u(t),            z = [x(t); y^c(t-1); 1]
#   C_in = g(net_c) f'(net_in),  C_phi = s_c(t-1) f'(net_phi),  C_c = y^in g'(net_c),
# and dE/dw_um = e_s(t) dS_u[m, v] (summed over the block's cells for a gate), with
# e_s = dE/dy^c y^out h'(s_c) and dE/dy^c from the output units alone. Output gates and
# output units get the ordinary one-step gradient. A training stream runs until the net's
# first error; alpha restarts at 0.5 with every stream and, for the paper's "lr decay" row,
# shrinks x0.99 per step within it. Many nets run in lock-step: each is one row of a leading
# batch dimension with its own weights, stream, learning rate and test streams.
ONLINE_ROWS = ("no_forget", "forget", "forget_decay", "reset")  # side study `paper_sgd`'s rows
# (its forget_decay is reading (a) of the alpha decay, the same as forget_alpha_a)


def row_variant(row: str) -> str:
    """Table 2 row -> network variant ("forget_decay" is the forget net with lr decay)."""
    return "forget" if row.startswith("forget") else row


def fuse_online(params: dict, n_blocks: int):
    """One net's params -> (W (16, 3 nb + c), Wk (16, 7)) of the online kernel.

    W rows [x (7); y^c(t-1) (8); bias], columns [out (nb) | in (nb) | phi (nb) | c (cells)];
    the cell inputs have no bias (row 15 of the c columns stays 0), a net without forget
    gates has zero phi columns (never used). Wk rows [x (7); y^c(t) (8); bias].
    """
    c = params["W_c"].shape[1]
    rows = params["W_c"].shape[0] + 1
    W = np.zeros((rows, 3 * n_blocks + c))
    for j, (wn, bn) in enumerate((("W_out", "b_out"), ("W_in", "b_in"), ("W_phi", "b_phi"))):
        if wn in params:
            W[:-1, j * n_blocks:(j + 1) * n_blocks] = params[wn]
            W[-1, j * n_blocks:(j + 1) * n_blocks] = params[bn]
    W[:-1, 3 * n_blocks:] = params["W_c"]
    Wk = np.concatenate([params["W_k"], params["b_k"][None]], axis=0)
    return W, Wk


def unfuse_online(W, Wk, variant: str, n_blocks: int) -> dict:
    """Inverse of fuse_online for one net (the params dict of `variant`)."""
    nb = n_blocks
    p = {"W_c": W[:-1, 3 * nb:].copy(), "W_in": W[:-1, nb:2 * nb].copy(),
         "b_in": W[-1, nb:2 * nb].copy(), "W_out": W[:-1, :nb].copy(), "b_out": W[-1, :nb].copy(),
         "W_k": Wk[:-1].copy(), "b_k": Wk[-1].copy()}
    if variant == "forget":
        p["W_phi"] = W[:-1, 2 * nb:3 * nb].copy()
        p["b_phi"] = W[-1, 2 * nb:3 * nb].copy()
    return p


class OnlineNets:
    """N nets, one per row of a leading batch dimension, each with its own weights.

    One `step` reads one symbol per net, runs the forward equations, the one-step output
    gradient and the forward-mode partials of the truncated gradient, and (if alpha is
    given) updates every net by its own alpha. All arrays are (N, ...); float64.
    """

    def __init__(self, params_list, forget, n_blocks: int, cells_per_block: int,
                 state_decay=None):
        fused = [fuse_online(p, n_blocks) for p in params_list]
        self.W = np.stack([w for w, _k in fused])
        self.Wk = np.stack([k for _w, k in fused])
        N, R, _K = self.W.shape
        c = n_blocks * cells_per_block
        self.N, self.nb, self.cpb, self.c, self.R = N, n_blocks, cells_per_block, c, R
        self.fm = np.asarray(forget, dtype=np.float64)[:, None]  # 1 = has forget gates
        # without forget gates: the constant CEC factor (1, or 0.9 for the `decay` row)
        self.cd = (np.ones((N, 1)) if state_decay is None
                   else np.asarray(state_decay, dtype=np.float64)[:, None])
        self.s = np.zeros((N, c))  # s_c(t-1)
        self.yc = np.zeros((N, c))  # y^c(t-1)
        self.P = np.zeros((N, R, 3 * c))  # partials dS for [in | phi | c] per cell
        self.Z = np.zeros((N, R))  # [x(t); y^c(t-1); 1]
        self.Z[:, -1] = 1.0
        self.Zk = self.Z.copy()  # [x(t); y^c(t); 1]
        blk = np.repeat(np.arange(n_blocks), cells_per_block)
        phi = 2 * n_blocks + blk
        self.gidx = np.concatenate([blk, n_blocks + blk, phi, phi, phi])  # y^phi x3: the carry
        self.es3 = np.zeros((N, 3 * c))  # e_s repeated for [in | phi] (first 2c columns used)
        self.eye = np.eye(self.n_in)
        self.gW = np.zeros_like(self.W)
        self.gWk = np.zeros_like(self.Wk)
        self.C = np.zeros((N, 3 * c))
        self.gH = np.zeros_like(self.P)
        self.y = np.zeros((N, self.n_out))

    # input and output counts from the weight shapes (W rows [x; y^c; 1]); properties, not
    # attributes, so that runs pickled before they existed load and resume unchanged
    @property
    def n_in(self) -> int:
        return self.R - self.c - 1

    @property
    def n_out(self) -> int:
        return self.Wk.shape[-1]

    def block_sum(self, a, out=None):
        """(..., k * cpb) per-cell columns -> (..., k) per-block sums (cells of a block are
        adjacent), summed in cell order; into `out` if given."""
        cpb = self.cpb
        if out is None:
            out, done = a[..., 0::cpb].copy(), 1
        elif cpb == 1:
            np.copyto(out, a)
            return out
        else:
            np.add(a[..., 0::cpb], a[..., 1::cpb], out=out)
            done = 2
        for j in range(done, cpb):
            out += a[..., j::cpb]
        return out

    def take(self, idx):
        """Keep only the nets idx (drop finished nets from the batch)."""
        for k in ("W", "Wk", "fm", "cd", "s", "yc", "P", "Z", "Zk", "gW", "gWk", "C", "gH", "es3",
                  "y"):
            setattr(self, k, getattr(self, k)[idx].copy())
        self.N = len(idx)

    def zero_state(self, keep):
        """keep (N,) 0/1: zero state and partials where 0 (new stream, or `reset` at a B)."""
        k = keep[:, None]
        self.s *= k
        self.yc *= k
        self.P *= k[:, :, None]

    def step(self, x, target, alpha=None):
        """One symbol x (N,) with targets (N, n_out). Returns wrong (N,) (the paper's error).

        The step's gradient (scaled by alpha_n per net if alpha (N,) is given) is stored in
        self.gW, self.gWk (same layout as W, Wk); with alpha every net n then moves by
        -alpha_n dE(t)/dw, without it the weights stay. An alpha of all zeros skips the
        gradient (it is zero): the weights stay and gW, gWk keep their last values.
        """
        N, nb, c, Z, Zk, ni = self.N, self.nb, self.c, self.Z, self.Zk, self.n_in
        Z[:, :ni] = self.eye[x]
        Z[:, ni:ni + c] = self.yc
        s_prev = self.s
        net = np.matmul(Z[:, None, :], self.W)[:, 0]  # net_u = sum_m w_um z_m
        f = 0.5 * (1.0 + np.tanh(0.5 * net))  # f(net) for every hidden unit
        gate = f[:, self.gidx]  # per cell: y^out | y^in | y^phi of its block (x3)
        carry = gate[:, 2 * c:]
        carry -= self.cd  # no forget gate: y^phi = 1 (`decay`: 0.9)
        carry *= self.fm
        carry += self.cd
        y_out, y_in, y_phi = gate[:, :c], gate[:, c:2 * c], gate[:, 2 * c:3 * c]
        fc = f[:, 3 * nb:]
        g = 4.0 * fc - 2.0  # g(net_c) in [-2, 2]
        s = y_phi * s_prev + y_in * g  # s_c(t) = y^phi s_c(t-1) + y^in g(net_c)
        h = np.tanh(0.5 * s)  # h(s_c) = 2 f(s_c) - 1
        yc = y_out * h  # y^c = y^out h(s_c)
        Zk[:, :ni] = Z[:, :ni]
        Zk[:, ni:ni + c] = yc
        y = 0.5 * (1.0 + np.tanh(0.5 * np.matmul(Zk[:, None, :], self.Wk)[:, 0]))  # y^k
        err = y - target
        wrong = (np.abs(err) >= cer.ERROR_THRESHOLD).any(axis=1)
        # --- forward-mode partials: dS(t) = y^phi dS(t-1) + z C  (inverts s_c(t) above)
        C, P = self.C, self.P
        np.multiply(g, y_in * (1.0 - y_in), out=C[:, :c])  # C_in = g f'(net_in)
        np.multiply(s_prev, y_phi * (1.0 - y_phi) * self.fm, out=C[:, c:2 * c])  # C_phi
        np.multiply(y_in, 4.0 * fc * (1.0 - fc), out=C[:, 2 * c:])  # C_c = y^in g'(net_c)
        P *= carry[:, None, :]  # [y^phi | y^phi | y^phi]
        P += np.multiply(Z[:, :, None], C[:, None, :], out=self.gH)  # (gH: scratch here)
        P[:, -1, 2 * c:] = 0.0  # cell inputs are unbiased
        if alpha is not None and not alpha.any():  # no error term anywhere (CNTO between
            self.s, self.yc, self.y = s, yc, y  # sequence ends): the step's gradient is
            return wrong  # zero and the weights stay; gW, gWk are not refreshed
        # --- one-step gradient of E(t) = 1/2 sum_k err_k^2 (inverts the lines above),
        # each net's error terms scaled by its alpha
        a = np.ones(N) if alpha is None else alpha
        dk = err * y * (1.0 - y) * a[:, None]  # dE/dnet_k
        dyc = np.einsum("nvk,nk->nv", self.Wk[:, ni:ni + c], dk)  # dE/dy^c, outputs only
        fo = f[:, :nb]
        d_out = self.block_sum(dyc * h) * fo * (1.0 - fo)  # inverts y^c = y^out h
        e_s = dyc * y_out * 0.5 * (1.0 - h * h)  # dE/ds_c through h(s_c), truncated
        es3 = self.es3
        es3[:, :c] = e_s
        es3[:, c:2 * c] = e_s
        # dE/dw = e_s dS: gate columns summed over a block's cells, cell columns as they are
        gW, gH = self.gW, self.gH
        np.multiply(P[:, :, :2 * c], es3[:, None, :2 * c], out=gH[:, :, :2 * c])
        self.block_sum(gH[:, :, :2 * c], out=gW[:, :, nb:3 * nb])
        np.multiply(P[:, :, 2 * c:], e_s[:, None, :], out=gW[:, :, 3 * nb:])
        np.multiply(Z[:, :, None], d_out[:, None, :], out=gW[:, :, :nb])
        np.multiply(Zk[:, :, None], dk[:, None, :], out=self.gWk)
        if alpha is not None:  # w <- w - alpha dE(t)/dw (alpha is in dk, so in every term)
            self.W -= gW
            self.Wk -= self.gWk
        self.s, self.yc, self.y = s, yc, y
        return wrong


class TestLane:
    """Forward-only test streams for frozen weight snapshots of N nets, S streams each."""

    def __init__(self, N, S, nets: OnlineNets):
        # weights with every gate column repeated for its block's cells: [out | in | phi | c]
        self.cols = np.concatenate([nets.gidx[:3 * nets.c], 3 * nets.nb + np.arange(nets.c)])
        self.W, self.Wk = nets.W[:, :, self.cols], nets.Wk.copy()
        self.fm, self.c, self.R = nets.fm[:, :, None], nets.c, nets.R
        self.cd = nets.cd[:, :, None]
        self.s = np.zeros((N, S, nets.c))
        self.yc = np.zeros((N, S, nets.c))
        self.eye = nets.eye

    @property
    def n_in(self) -> int:  # W rows [x; y^c; 1] (a property: old pickles load unchanged)
        return self.R - self.c - 1

    def take(self, idx):
        """Keep only the nets idx."""
        self.W, self.Wk, self.fm, self.cd = self.W[idx], self.Wk[idx], self.fm[idx], self.cd[idx]
        self.s, self.yc = self.s[idx], self.yc[idx]

    def step(self, idx, x, target, keep):
        """One symbol for the tests of nets idx (k,): x (k, S), target (k, S, n_out), keep
        (k, S) or None. Returns wrong (k, S)."""
        c, ni = self.c, self.n_in
        s, yc = self.s[idx], self.yc[idx]
        if keep is not None:
            s *= keep[..., None]
            yc *= keep[..., None]
        Z = np.empty(x.shape + (self.R,))
        Z[..., :ni] = self.eye[x]
        Z[..., ni:ni + c] = yc
        Z[..., -1] = 1.0
        f = 0.5 * (1.0 + np.tanh(0.5 * np.matmul(Z, self.W[idx])))  # per cell
        cd = self.cd[idx]
        y_phi = (f[..., 2 * c:3 * c] - cd) * self.fm[idx] + cd
        s = y_phi * s + f[..., c:2 * c] * (4.0 * f[..., 3 * c:] - 2.0)
        yc = f[..., :c] * np.tanh(0.5 * s)
        self.s[idx], self.yc[idx] = s, yc
        Z[..., ni:ni + c] = yc
        y = 0.5 * (1.0 + np.tanh(0.5 * np.matmul(Z, self.Wk[idx])))
        return (np.abs(y - target) >= cer.ERROR_THRESHOLD).any(axis=-1)


class _RunUnpickler(pickle.Unpickler):
    """Finds this module's and the main script's classes under any name they may have been
    pickled as (`__main__` when a script ran directly; checkpoints made before this file
    was split from the main script name `OnlineRun` etc. as the main script's)."""

    def find_class(self, module, name):
        if module in ("__main__", "continual_embedded_reber", "online_training"):
            for here in (sys.modules[__name__], cer):
                if hasattr(here, name):
                    return getattr(here, name)
        return super().find_class(module, name)


class OnlineRun:
    """Nets = [(row, seed), ...] trained in lock-step with the paper's online protocol.

    Per net: a training stream starts from zero state at a new string with alpha = lr and
    runs until the net's first error (or max_stream_len); the erring step's update is made.
    After each training stream, if the net's previous test has finished, a test starts on
    a snapshot of the weights: `test_streams` fresh streams from zero state, run in the
    same lock-step (training goes on meanwhile); it ends at its first error in any stream
    (not perfect) or after test_len symbols of all streams (perfect: the net stops; its
    final weights are that snapshot). A net also stops after max_streams training streams
    or max_symbols training symbols (checked every coin_block steps). Every net's data come
    from its own rngs: training coins (seed, 500), test coins (seed, 510), the same for
    every row of a seed; the init is the headline's (seed, 10 + variant index). Finished
    nets are dropped from the lock-step batch once a quarter of it has finished.
    init: optional {(row, seed): params} to continue training saved nets instead.

    All state lives in the object, so a run pickled between two coin blocks (`save`) and
    loaded again (`load`) continues bit-identically. A net's record does not depend on
    which other nets share the batch.
    """

    def __init__(self, ocfg: cer.OnlineConfig, nets, init=None):
        N, S, L, B = len(nets), ocfg.test_streams, ocfg.test_len, ocfg.coin_block
        rows = [r for r, _s in nets]
        seeds = [int(s) for _r, s in nets]
        variants = [row_variant(r) for r in rows]
        cfg = cer.Config(n_blocks=ocfg.n_blocks, cells_per_block=ocfg.cells_per_block,
                     init_range=ocfg.init_range)
        params = [cer.init_params(cfg, cer.seed_rng(s, 10 + cer.VARIANTS.index(v)), v)
                  if init is None else init[(r, s)]
                  for r, s, v in zip(rows, seeds, variants, strict=True)]
        net = OnlineNets(params, [v == "forget" for v in variants], ocfg.n_blocks,
                         ocfg.cells_per_block, [cer.STATE_DECAY if v == "decay" else 1.0
                                                for v in variants])
        lane = TestLane(N, S, net)
        into = 2 * cer.TABLES["into_start"]
        # per-net state, all (n, ...) over the nets still in the batch; ids[j] = index into nets
        ids = np.arange(N)
        reset = np.array([v == "reset" for v in variants])
        # alpha schedules: reading (a) x lr_decay per step, back to lr at every stream start;
        # reading (b) x lr_decay per training stream, never reset; the other rows constant
        decay = np.array([ocfg.lr_decay if r in ("forget_alpha_a", "forget_decay") else 1.0
                          for r in rows])
        per_stream = np.array([ocfg.lr_decay if r == "forget_alpha_b" else 0.0 for r in rows])
        train_rng = [cer.seed_rng(s, ocfg.data_key) for s in seeds]
        test_rng = [cer.seed_rng(s, ocfg.data_key + 10) for s in seeds]
        cur2 = np.full(N, into, dtype=np.int64)
        t_cur2 = np.full((N, S), into, dtype=np.int64)
        fresh = np.ones(N, dtype=bool)  # a new training stream starts at the next step
        alive = np.ones(N, dtype=bool)  # still training
        alpha = np.full(N, ocfg.lr)
        stream_len = np.zeros(N, dtype=np.int64)
        symbols = np.zeros(N, dtype=np.int64)
        streams = np.zeros(N, dtype=np.int64)
        longest = np.zeros(N, dtype=np.int64)  # longest finished training stream
        t_on = np.zeros(N, dtype=bool)  # a test is running
        t_len = np.zeros(N, dtype=np.int64)
        t_at = np.zeros((N, 2), dtype=np.int64)  # (symbols, streams) when the running test began
        n_tests = np.zeros(N, dtype=np.int64)
        untested = np.zeros(N, dtype=np.int64)  # stream ends while the previous test still ran
        best_test = np.zeros(N, dtype=np.int64)  # longest error-free run of any test
        snap_W = net.W.copy()  # the tested snapshot in the kernel's layout
        win_err, win_streams = np.zeros(N), np.zeros(N)
        recs = [None] * N
        wall_cut = np.zeros(N, dtype=bool)  # training stopped by max_wall_s
        solved_at = {}  # id -> (symbols, streams, W, Wk) of the perfect test
        curves = [dict(symbols=[], error_rate=[], streams_ended=[]) for _ in range(N)]
        step, win_steps = 0, 0
        coins = t_coins = None
        fresh_any = True

        self.ocfg, self.nets = ocfg, list(nets)
        self.wall_s, self.cpu_s, self.done = 0.0, 0.0, False  # spent before this process
        self.N = N
        self.S = S
        self.L = L
        self.B = B
        self.rows = rows
        self.seeds = seeds
        self.variants = variants
        self.cfg = cfg
        self.net = net
        self.lane = lane
        self.recs = recs
        self.wall_cut = wall_cut
        self.solved_at = solved_at
        self.curves = curves
        self.ids = ids
        self.reset = reset
        self.decay = decay
        self.per_stream = per_stream
        self.cur2 = cur2
        self.t_cur2 = t_cur2
        self.fresh = fresh
        self.alive = alive
        self.alpha = alpha
        self.stream_len = stream_len
        self.symbols = symbols
        self.streams = streams
        self.longest = longest
        self.t_on = t_on
        self.t_len = t_len
        self.t_at = t_at
        self.n_tests = n_tests
        self.untested = untested
        self.best_test = best_test
        self.snap_W = snap_W
        self.win_err = win_err
        self.win_streams = win_streams
        self.coins = coins
        self.t_coins = t_coins
        self.train_rng = train_rng
        self.test_rng = test_rng
        self.step = step
        self.win_steps = win_steps
        self.fresh_any = fresh_any

    def save(self, path: Path) -> None:
        """Pickle the whole run (atomically) to path. A run pauses between two coin blocks,
        so the used-up coins are not saved (the next block draws new ones)."""
        self.coins = self.t_coins = None
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path) -> OnlineRun:
        """A saved run, whether it was pickled by the script (module `__main__`) or by an
        importer of this module."""
        with open(path, "rb") as f:
            return _RunUnpickler(f).load()

    def run(self, log=None, until=None, until_step=None) -> bool:
        """Train until every net has finished (returns True) or, at the next coin-block
        boundary after perf_counter() passes `until` or the lock-step count reaches
        `until_step`, pause (returns False)."""
        ocfg, nets = self.ocfg, self.nets
        N, S, L, B = self.N, self.S, self.L, self.B
        rows, seeds, variants, cfg = self.rows, self.seeds, self.variants, self.cfg
        net, lane, recs, wall_cut = self.net, self.lane, self.recs, self.wall_cut
        solved_at, curves = self.solved_at, self.curves
        next2, sym, legal = cer.TABLES["next2"], cer.TABLES["sym"], cer.TABLES["legal"]
        starts, into = cer.TABLES["starts"], 2 * cer.TABLES["into_start"]
        # the state kept between two calls (see save/load)
        (ids, reset, decay, per_stream, cur2, t_cur2, fresh, alive, alpha, stream_len, symbols,
         streams, longest, t_on, t_len, t_at, n_tests, untested, best_test, snap_W, win_err,
         win_streams, coins, t_coins, train_rng, test_rng, step, win_steps, fresh_any) = (
            self.ids, self.reset, self.decay, self.per_stream, self.cur2, self.t_cur2, self.fresh,
            self.alive, self.alpha, self.stream_len, self.symbols, self.streams, self.longest,
            self.t_on, self.t_len, self.t_at, self.n_tests, self.untested, self.best_test,
            self.snap_W, self.win_err, self.win_streams, self.coins, self.t_coins, self.train_rng,
            self.test_rng, self.step, self.win_steps, self.fresh_any)
        t0, t_log, c0 = time.perf_counter(), time.perf_counter(), time.process_time()
        wall0 = self.wall_s

        def harvest(j):
            n = int(ids[j])
            hit = solved_at.get(n)
            W, Wk = (hit[2], hit[3]) if hit else (net.W[j], net.Wk[j])
            recs[n] = dict(row=rows[n], seed=seeds[n], variant=variants[n],
                           n_weights=cer.n_weights(cfg, variants[n]), solved=hit is not None,
                           symbols_to_solve=int(hit[0]) if hit else None,
                           streams_to_solve=int(hit[1]) if hit else None,
                           training_symbols=int(symbols[j]), training_streams=int(streams[j]),
                           longest_training_stream=int(max(longest[j], stream_len[j])),
                           tests=int(n_tests[j]), untested_stream_ends=int(untested[j]),
                           longest_test_run=int(best_test[j]), stopped_by_wall=bool(wall_cut[n]),
                           alpha_end=float(alpha[j]),
                           curves=curves[n],
                           final_params=unfuse_online(W, Wk, variants[n], ocfg.n_blocks))

        def compact(keep):
            nonlocal ids, reset, decay, per_stream, cur2, t_cur2, fresh, alive, alpha
            nonlocal stream_len, symbols
            nonlocal streams, longest, t_on, t_len, t_at, n_tests, untested, best_test, snap_W
            nonlocal win_err, win_streams, train_rng, test_rng
            for j in np.flatnonzero(~np.isin(np.arange(ids.size), keep)):
                harvest(j)
            net.take(keep)
            lane.take(keep)
            ids, reset, decay, cur2, t_cur2 = ids[keep], reset[keep], decay[keep], cur2[keep], \
                t_cur2[keep]
            per_stream = per_stream[keep]
            fresh, alive, alpha = fresh[keep], alive[keep], alpha[keep]
            stream_len, symbols, streams = stream_len[keep], symbols[keep], streams[keep]
            longest, t_on = longest[keep], t_on[keep]
            t_len, t_at, n_tests, untested = t_len[keep], t_at[keep], n_tests[keep], untested[keep]
            best_test, snap_W, win_err = best_test[keep], snap_W[keep], win_err[keep]
            win_streams = win_streams[keep]  # (coins, t_coins: redrawn right after this)
            train_rng = [train_rng[j] for j in keep]
            test_rng = [test_rng[j] for j in keep]

        while alive.any() or t_on.any():
            i = step % B
            if i == 0:
                if step > self.step and (
                        (until is not None and time.perf_counter() >= until)
                        or (until_step is not None and step >= until_step)):
                    break  # pause between two coin blocks
                busy = np.flatnonzero(alive | t_on)
                if busy.size <= 0.75 * ids.size:
                    compact(busy)
                coins = np.stack([r.integers(0, 2, size=B) for r in train_rng])
                t_coins = np.stack([r.integers(0, 2, size=(S, B)) for r in test_rng])
                if not (np.isfinite(net.W).all() and np.isfinite(net.Wk).all()):
                    bad = [nets[n] for j, n in enumerate(ids) if not np.isfinite(net.W[j]).all()]
                    raise FloatingPointError(f"non-finite weights at step {step}: {bad}")
            # --- training: one symbol per net
            if fresh_any:
                cur2[fresh] = into
            np.take(next2, cur2 + coins[:, i], out=cur2)
            e = cur2 >> 1
            wipe = fresh | (reset & starts[e])  # new stream, or `reset` at an outer B
            if fresh_any or wipe.any():
                net.zero_state((~wipe).astype(np.float64))
            wrong = net.step(sym[e], legal[e], alpha * alive)
            symbols += alive
            stream_len += alive
            wrong &= alive
            win_err += wrong
            alpha *= np.where(alive, decay, 1.0)  # reading (a): x0.99 per training step
            ended = wrong | (alive & (stream_len >= ocfg.max_stream_len))
            fresh, fresh_any = ended, ended.any()
            if fresh_any:
                streams += ended
                win_streams += ended
                np.maximum(longest, np.where(ended, stream_len, 0), out=longest)
                stream_len[ended] = 0
                alpha[ended] = np.where(per_stream[ended] > 0, alpha[ended] * per_stream[ended],
                                        ocfg.lr)
                untested += ended & t_on
                start = ended & ~t_on
                if start.any():
                    snap_W[start], lane.Wk[start] = net.W[start], net.Wk[start]
                    lane.W[start] = snap_W[start][:, :, lane.cols]
                    lane.s[start], lane.yc[start] = 0.0, 0.0
                    t_cur2[start] = into
                    t_len[start] = 0
                    t_on |= start
                    t_at[start, 0], t_at[start, 1] = symbols[start], streams[start]
                    n_tests += start
                alive &= streams < ocfg.max_streams
            if i == B - 1:
                alive &= symbols < ocfg.max_symbols
                over = wall0 + time.perf_counter() - t0 > ocfg.max_wall_s
                if ocfg.max_wall_s and over and alive.any():
                    if log is not None:
                        log(f"wall-clock limit {ocfg.max_wall_s:.0f} s: {int(alive.sum())} nets "
                            "stop training")
                    wall_cut[ids[alive]] = True
                    alive[:] = False
            # --- tests: one symbol per test stream of every running test
            if t_on.any():
                idx = np.flatnonzero(t_on)
                tc = t_cur2[idx] + t_coins[idx, :, i]
                np.take(next2, tc, out=tc)
                t_cur2[idx] = tc
                te = tc >> 1
                keep = ((~(reset[idx, None] & starts[te])).astype(np.float64) if reset.any()
                        else None)
                t_wrong = lane.step(idx, sym[te], legal[te], keep).any(axis=1)
                t_len[idx] += 1
                fail = idx[t_wrong]
                np.maximum.at(best_test, fail, t_len[fail] - 1)
                t_on[fail] = False
                for j in idx[~t_wrong & (t_len[idx] >= L)]:  # perfect: the net stops
                    n = int(ids[j])
                    alive[j], t_on[j], best_test[j] = False, False, L
                    solved_at[n] = (t_at[j, 0], t_at[j, 1], snap_W[j].copy(), lane.Wk[j].copy())
                    if log is not None:
                        log(f"[{rows[n]} seed {seeds[n]}] PERFECT after {t_at[j, 0] / 1e6:.2f}M "
                            f"symbols, {t_at[j, 1]} training streams")
            step += 1
            win_steps += 1
            if step % ocfg.log_every_symbols == 0:
                for j, n in enumerate(ids):
                    if alive[j] or win_err[j] or win_streams[j]:
                        cv = curves[n]
                        cv["symbols"].append(int(symbols[j]))
                        cv["error_rate"].append(float(win_err[j] / win_steps))
                        cv["streams_ended"].append(int(win_streams[j]))
                win_err[:], win_streams[:], win_steps = 0.0, 0.0, 0
            if log is not None and time.perf_counter() - t_log > 60.0:
                t_log = time.perf_counter()
                el = wall0 + t_log - t0
                parts = []
                for r in dict.fromkeys(rows):
                    done = [n for n in range(N) if rows[n] == r]
                    n_solved = sum(n in solved_at for n in done)
                    on = [j for j, n in enumerate(ids) if rows[n] == r and alive[j]]
                    parts.append(f"{r}: {n_solved}/{len(done)} perfect, {len(on)} training")
                log(f"step {step} ({step / el:.0f} steps/s, batch {ids.size}, max symbols "
                    f"{symbols.max() / 1e6:.2f}M) " + "; ".join(parts))
        else:
            for j in range(ids.size):
                harvest(j)
            self.done = True
        self.wall_s += time.perf_counter() - t0
        self.cpu_s += time.process_time() - c0
        (self.ids, self.reset, self.decay, self.per_stream, self.cur2, self.t_cur2, self.fresh,
         self.alive, self.alpha, self.stream_len, self.symbols, self.streams, self.longest,
         self.t_on, self.t_len, self.t_at, self.n_tests, self.untested, self.best_test,
         self.snap_W, self.win_err, self.win_streams, self.coins, self.t_coins, self.train_rng,
         self.test_rng, self.step, self.win_steps, self.fresh_any) = (
            ids, reset, decay, per_stream, cur2, t_cur2, fresh, alive, alpha, stream_len, symbols,
            streams, longest, t_on, t_len, t_at, n_tests, untested, best_test, snap_W, win_err,
            win_streams, coins, t_coins, train_rng, test_rng, step, win_steps, fresh_any)
        return self.done

    def records(self) -> list:
        """One record per net (after `run` returned True)."""
        total = sum(r["training_symbols"] for r in self.recs)
        for r in self.recs:
            r["wall_s"] = self.wall_s
            r["steps"] = self.step
            r["steps_per_s"] = self.step / max(self.wall_s, 1e-9)
            r["symbols_per_s"] = total / max(self.wall_s, 1e-9)
        return self.recs


def train_online(ocfg: cer.OnlineConfig, nets, log=None, init=None) -> list:
    """Train nets = [(row, seed), ...] in lock-step with the paper's online protocol (see
    OnlineRun); one record per net."""
    run = OnlineRun(ocfg, nets, init)
    run.run(log)
    return run.records()


def confirm_online(ocfg: cer.OnlineConfig, recs: list) -> None:
    """Test every final net on 10 further fresh streams (the headline's confirmation
    streams of its seed, rng (seed, 300)), in place: r["confirm"]."""
    cfg = cer.Config(n_blocks=ocfg.n_blocks, cells_per_block=ocfg.cells_per_block,
                 test_streams=ocfg.test_streams, test_len=ocfg.test_len)
    for v in cer.VARIANTS:
        group = [r for r in recs if r["variant"] == v]
        if not group:
            continue
        stacked = {k: np.stack([r["final_params"][k] for r in group])
                   for k in group[0]["final_params"]}
        ev = cer.evaluate(cfg, v, stacked, [(r["seed"], 300) for r in group], early_exit=False)
        for i, r in enumerate(group):
            efl = ev["first_error"][i]
            r["confirm"] = dict(perfect=bool(ev["perfect"][i]),
                                errors=int(ev["errors"][i].sum()),
                                error_free_lengths=[int(x) for x in efl],
                                mean_error_free_length=float(efl.mean()),
                                state_norm_end=float(ev["norm"][i][-1]))

# ---------------------------------------------------------------------------------------
# The paper preset's command: lock-step groups, checkpoints, results
# ---------------------------------------------------------------------------------------
def _run_paper_task(task):
    """One lock-step group of nets: resume from its checkpoint if there is one, checkpoint
    every `every` seconds, then confirm every final net on 10 further fresh streams."""
    ocfg, nets, quiet, ckpt, every = task
    log = None if quiet else (lambda s: print(f"{time.strftime('%H:%M:%S')} {s}", flush=True))
    run = OnlineRun.load(ckpt) if ckpt.exists() else OnlineRun(ocfg, nets)
    if log is not None and run.step:
        log(f"resumed {ckpt.name} at lock-step {run.step}")
    while not run.run(log, until=time.perf_counter() + every):
        run.save(ckpt)
        if log is not None:
            log(f"checkpoint {ckpt.name} at lock-step {run.step}")
    run.save(ckpt)
    recs = run.records()
    c0 = time.process_time()
    confirm_online(ocfg, recs)
    cpu = run.cpu_s + time.process_time() - c0
    total = sum(r["training_symbols"] for r in recs)
    for r in recs:  # CPU seconds of the lock-step process, shared out by training symbols
        r["cpu_time_s"] = cpu * r["training_symbols"] / max(total, 1)
    return recs


def paper_groups(ocfg: cer.OnlineConfig, seeds, jobs: int, outdir: Path) -> list:
    """The lock-step groups (seeds dealt round-robin over the jobs, every row of a seed in
    the same group) and their checkpoint files."""
    k = min(jobs, len(seeds))
    out = []
    for i in range(k):
        nets = [(r, s) for r in ocfg.rows for s in seeds[i::k]]
        out.append((nets, outdir / f"checkpoint_{i + 1}of{k}.pkl"))
    return out


def main_paper(args, ocfg: cer.OnlineConfig, outdir: Path, command) -> int:
    """The paper's scheme: every (row, seed) net in lock-step; seeds split over --jobs;
    checkpoints in outdir (removed once results.json is written)."""
    t0 = time.perf_counter()
    env = cer.env_info(args.jobs)  # the tree as the run starts
    groups = paper_groups(ocfg, list(args.seeds), args.jobs, outdir)
    for nets, ckpt in groups:
        if ckpt.exists():
            try:
                old = OnlineRun.load(ckpt)
            except Exception as e:  # noqa: BLE001 - any unreadable checkpoint
                print(f"error: cannot read checkpoint {ckpt}: {e}", file=sys.stderr)
                return 2
            if old.nets != nets or old.ocfg != ocfg:
                print(f"error: checkpoint {ckpt} belongs to another run (other seeds, rows, "
                      "config or --jobs); remove it or use another --outdir", file=sys.stderr)
                return 2
    tasks = [(ocfg, nets, args.quiet, ckpt, args.checkpoint_every) for nets, ckpt in groups]
    try:
        outs = cer.run_tasks(_run_paper_task, tasks, args.jobs)
    except FloatingPointError as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - t0
    records, arrays = [], {}
    for r in (r for out in outs for r in out):
        r = dict(r)
        r["network"] = r["variant"]
        r["variant"] = r.pop("row")
        r["stopped_by_symbol_cap"] = bool(not r["solved"]
                                          and r["training_symbols"] >= ocfg.max_symbols
                                          and r["training_streams"] < ocfg.max_streams)
        p = r.pop("final_params")
        arrays[f"final_{r['variant']}_seed{r['seed']}"] = np.concatenate(
            [p[k].ravel() for k, _s in cer.param_shapes(cer.Config(), r["network"])])
        for k in ("wall_s", "steps", "steps_per_s", "symbols_per_s"):
            r.pop(k, None)
        records.append(r)
    cpu = sum(r["cpu_time_s"] for r in records)
    sym = sum(r["training_symbols"] for r in records)
    results = dict(
        experiment=cer.FOLDER, paper=cer.PAPER_CITATION, command=command, preset=args.preset,
        config=dataclasses.asdict(ocfg), env=env, wallclock_s=wall,
        cpu_time_s=cpu, net_symbols_per_cpu_s=sym / max(cpu, 1e-9),
        paper_reference=cer.PAPER_TABLE2, summary={}, seeds=records)
    results = cer.finalize_results(cer._jsonable(results))
    np.savez_compressed(outdir / "run.npz", **arrays)
    cer.atomic_write_json(outdir / "results.json", results)
    for _nets, ckpt in groups:
        ckpt.unlink(missing_ok=True)
    if not args.quiet:
        print(cer.paper_table(results))
        print(f"wall {wall:.0f} s, cpu {cpu:.0f} s")
    print(f"wrote {outdir / 'results.json'}")
    print(f"wrote {outdir / 'run.npz'}")
    return 0

