"""Folder tests for continual-embedded-reber: grammar, topology, reset, chunking, stacking."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from helpers import ROOT, load_experiment, load_script, run_script

FOLDER = ROOT / "continual-embedded-reber"
m = load_experiment(FOLDER)
cnto = load_script(FOLDER / "cnto.py")
ot = load_script(FOLDER / "online_training.py")  # the paper's on-line scheme

# An independent description of the grammar: a regular expression for one Reber string,
# and a hand-written walker for the legal next symbols.
REBER_RE = r"B(?:TS*X(?:XT*VP)*(?:S|XT*VV)|PT*V(?:V|P(?:XT*VP)*(?:S|XT*VV)))E"
EMBEDDED_RE = re.compile(rf"B(?:T{REBER_RE}T|P{REBER_RE}P)E")
GRAPH = {0: {"T": 1, "P": 2}, 1: {"S": 1, "X": 3}, 2: {"T": 2, "V": 4},
         3: {"X": 2, "S": 5}, 4: {"P": 3, "V": 5}, 5: {"E": None}}


def legal_sets(stream: str) -> list[set]:
    """Legal next symbols after every symbol of a stream of embedded Reber strings."""
    out, i = [], 0
    while i < len(stream):
        assert stream[i] == "B"
        out.append({"T", "P"})  # after the outer B
        branch = stream[i + 1]
        out.append({"B"})  # after T/P: the inner B
        assert stream[i + 2] == "B"
        out.append({"T", "P"})
        j, node = i + 3, 0
        while node is not None:
            node = GRAPH[node][stream[j]]
            out.append(set(GRAPH[node]) if node is not None else {branch})
            j += 1
        assert stream[j] == branch
        out.append({"E"})
        assert stream[j + 1] == "E"
        out.append({"B"})
        i = j + 2
    return out


def test_weight_counts():
    cfg = m.PRESETS["modern"]
    assert m.n_weights(cfg, "forget") == 424  # the paper's count: cell inputs unbiased
    assert m.n_weights(cfg, "no_forget") == 424 - 15 * 4 - 4
    assert m.n_weights(cfg, "reset") == m.n_weights(cfg, "no_forget")
    p = m.init_params(cfg, np.random.default_rng(0), "forget")
    assert np.allclose(p["b_in"], [-0.5, -1.0, -1.5, -2.0])
    assert np.allclose(p["b_out"], [-0.5, -1.0, -1.5, -2.0])
    assert np.allclose(p["b_phi"], [0.5, 1.0, 1.5, 2.0])
    assert all(np.abs(p[k]).max() <= 0.2 for k in ("W_c", "W_in", "W_phi", "W_out", "W_k"))


def test_grammar_valid_and_legal_sets_match_independent_walk():
    edges = m.fresh_streams(np.random.default_rng(3), 4, 3000)
    for s in range(4):
        text = m.stream_string(edges[:, s])
        # whole strings up to the last complete one
        cut = text.rfind("E", 0, text.rfind("B")) + 1
        strings = re.findall(r"B[TP]B.*?E[TP]E", text[:cut])
        assert "".join(strings) == text[:cut]
        assert all(EMBEDDED_RE.fullmatch(w) for w in strings), "invalid string emitted"
        want = legal_sets(text[:cut])
        x, target, _keep = m.stream_data(edges[:cut, s], reset=False)
        got = [{m.SYMBOLS[k] for k in np.flatnonzero(row)} for row in target]
        assert got == want


def test_grammar_statistics():
    edges = m.fresh_streams(np.random.default_rng(4), 8, 20000)
    strings = [w for s in range(8)
               for w in re.findall(r"B[TP]B.*?E[TP]E", m.stream_string(edges[:, s]))]
    branches = np.array([w[1] == "T" for w in strings])
    assert abs(branches.mean() - 0.5) < 0.03  # outer branch p = 0.5
    assert all(w[1] == w[-2] for w in strings)  # the long-range T/P dependency


def test_reset_only_at_string_starts():
    edges = m.fresh_streams(np.random.default_rng(5), 3, 500)
    x, _t, keep = m.stream_data(edges, reset=True)
    for s in range(3):
        text = m.stream_string(edges[:, s])
        outer_b = {mt.start() for mt in re.finditer(r"B[TP]B", text)}
        assert set(np.flatnonzero(keep[:, s] == 0)) == outer_b
    assert m.stream_data(edges, reset=False)[2] is None
    # the reset net's state at a string start equals a fresh net's: outputs from step k on
    # equal the outputs of the same net run on the stream from k with zero state
    cfg = dataclasses.replace(m.PRESETS["quick"], variants=("reset",))
    p = m.init_params(cfg, np.random.default_rng(1), "reset")
    k = sorted(outer_b)[3]
    full = m.trace(p, cfg, edges[:, 2:3], reset=True)
    tail = m.trace(p, cfg, edges[k:, 2:3], reset=True)
    assert np.allclose(full["y"][k:], tail["y"], atol=1e-12)
    # without the reset, the state carries over and the outputs differ
    full_nr = m.trace(p, cfg, edges[:, 2:3], reset=False)
    assert not np.allclose(full_nr["y"][k:], tail["y"], atol=1e-6)


def _chunks(batch, a, b, u0, y0):
    keep = None if batch["keep"] is None else batch["keep"][a:b]
    return dict(x=batch["x"][a:b], target=batch["target"][a:b], keep=keep, u0=u0, y0=y0)


@pytest.mark.parametrize("variant", m.VARIANTS)
def test_sequential_equals_chunked(variant):
    cfg = dataclasses.replace(m.PRESETS["quick"], variants=(variant,), batch=3, chunk=90)
    rng = np.random.default_rng(7)
    p = m.init_params(cfg, rng, variant)
    batch = m.sample_batch(cfg, rng, variant)
    forget, reset, decay = m.variant_flags(variant)
    c = m.n_cells(cfg)

    def run(b):
        T = b["x"].shape[0]
        ker = m.Kernel(1, T, 3, c, forget, reset, np.float64, decay=decay)
        pk = m.pack({k: v[None] for k, v in p.items()}, forget, np.float64)
        keep = None if b["keep"] is None else b["keep"][:, None]
        logits = ker.forward(pk, b["x"][:, None], keep, b["u0"][None], b["y0"][None])
        return logits[:, 0], ker.U[T, 0].copy(), ker.Y[T, 0].copy()

    whole, _u, _y = run(batch)
    u0, y0, parts, total = batch["u0"], batch["y0"], [], 0.0
    for a in range(0, 90, 30):
        sub = _chunks(batch, a, a + 30, u0, y0)
        out, u0, y0 = run(sub)
        parts.append(out)
        # the chunk's gradient is the full gradient of the chunk loss given the carried state
        loss_c, g = m.loss_and_grads(p, sub, cfg)
        assert loss_c == pytest.approx(m.loss(p, sub, cfg), rel=1e-12)
        name = "W_phi" if forget else "W_in"
        h, i = 1e-6, (3, 1)
        pp, pm = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in p.items()}
        pp[name][i] += h
        pm[name][i] -= h
        num = (m.loss(pp, sub, cfg) - m.loss(pm, sub, cfg)) / (2 * h)
        assert g[name][i] == pytest.approx(num, rel=1e-5, abs=1e-9)
        total += loss_c
    assert np.allclose(np.concatenate(parts), whole, atol=1e-12, rtol=0)
    assert total / 3 == pytest.approx(m.loss(p, batch, cfg), rel=1e-10)


@pytest.mark.parametrize("variant", m.VARIANTS)
def test_stacked_kernel_equals_single_nets(variant):
    """N nets in one kernel call = N separate calls (outputs and gradients)."""
    cfg = dataclasses.replace(m.PRESETS["quick"], variants=(variant,), batch=4, chunk=20)
    rng = np.random.default_rng(8)
    ps = [m.init_params(cfg, rng, variant) for _ in range(3)]
    bs = [m.sample_batch(cfg, rng, variant) for _ in range(3)]
    forget, reset, decay = m.variant_flags(variant)
    stacked = {k: np.stack([p[k] for p in ps]) for k in ps[0]}
    x = np.stack([b["x"] for b in bs], 1)
    target = np.stack([b["target"] for b in bs], 1)
    keep = np.stack([b["keep"] for b in bs], 1) if reset else None
    u0, y0 = np.stack([b["u0"] for b in bs]), np.stack([b["y0"] for b in bs])
    ker = m.Kernel(3, 20, 4, m.n_cells(cfg), forget, reset, np.float64, decay=decay)
    pk = m.pack(stacked, forget, np.float64)
    logits = ker.forward(pk, x, keep, u0, y0)
    losses, dl, _y = m.output_loss(logits, target, cfg.loss)
    g = m.unpack_grads(*ker.backward(pk, x, dl), forget, cfg.n_blocks)
    for n in range(3):
        loss_n, g_n = m.loss_and_grads(ps[n], bs[n], cfg)
        assert losses[n] == pytest.approx(loss_n, rel=1e-12)
        for k in g_n:
            assert np.allclose(g[k][n], g_n[k], rtol=1e-10, atol=1e-14), k


def test_float32_kernel_close_to_float64():
    cfg = dataclasses.replace(m.PRESETS["quick"], variants=("forget",), batch=8, chunk=64)
    rng = np.random.default_rng(9)
    p = m.init_params(cfg, rng, "forget")
    b = m.sample_batch(cfg, rng, "forget")
    out = {}
    for dt in (np.float32, np.float64):
        ker = m.Kernel(1, 64, 8, 8, True, False, dt)
        pk = m.pack({k: v[None] for k, v in p.items()}, True, dt)
        logits = ker.forward(pk, b["x"][:, None], None, b["u0"][None].astype(dt),
                             b["y0"][None].astype(dt))
        _l, dl, _y = m.output_loss(logits, b["target"][:, None].astype(dt), "bce")
        out[dt] = (logits, m.unpack_grads(*ker.backward(pk, b["x"][:, None], dl), True, 4))
    assert np.abs(out[np.float32][0] - out[np.float64][0]).max() < 1e-5
    for k, g in out[np.float64][1].items():
        assert np.allclose(out[np.float32][1][k], g, rtol=1e-3, atol=1e-6), k


def test_no_forget_cell_only_accumulates():
    """Without forget gates s_c(t) - s_c(t-1) = y^in g(net_c): nothing is ever subtracted
    but the new input, and over a long stream |s_c| grows; the forget net's stays bounded."""
    cfg = m.PRESETS["quick"]
    edges = m.fresh_streams(np.random.default_rng(10), 1, 4000)
    p = m.init_params(cfg, np.random.default_rng(2), "no_forget")
    tr = m.trace(p, cfg, edges, reset=False)
    ds = np.diff(tr["s"][:, 0], axis=0)
    y_in = np.repeat(tr["y_in"][1:, 0], cfg.cells_per_block, axis=-1)
    assert np.all(np.abs(ds) <= 2.0 * y_in + 1e-12)  # |y^in g| <= 2 y^in
    norm_nf = np.linalg.norm(tr["s"][:, 0], axis=-1)
    assert norm_nf[-1] > 20 * norm_nf[100]
    pf = m.init_params(cfg, np.random.default_rng(2), "forget")
    trf = m.trace(pf, cfg, edges, reset=False)
    fmax = trf["y_phi"].max()  # |s_c(t)| <= fmax |s_c(t-1)| + 2  =>  |s_c| <= 2 / (1 - fmax)
    assert np.abs(trf["s"]).max() <= 2.0 / (1.0 - fmax) + 1e-9
    assert np.linalg.norm(trf["s"][:, 0], axis=-1)[-1] < 0.2 * norm_nf[-1]


def test_decay_cell_shrinks_by_the_factor():
    """`decay`: s_c(t) = 0.9 s_c(t-1) + y^in g(net_c) with |g| <= 2 (the paper's g), so
    |s_c| stays below 2 / (1 - 0.9) = 20 on any stream; the same weights without the
    decay run away."""
    cfg = m.PRESETS["quick"]
    edges = m.fresh_streams(np.random.default_rng(10), 1, 4000)
    p = m.init_params(cfg, np.random.default_rng(2), "decay")
    tr = m.trace(p, cfg, edges, reset=False, decay=m.STATE_DECAY)
    s = tr["s"][:, 0]
    y_in = np.repeat(tr["y_in"][:, 0], cfg.cells_per_block, axis=-1)
    g_in = s[1:] - m.STATE_DECAY * s[:-1]  # = y^in g(net_c)
    assert np.all(np.abs(g_in) <= 2.0 * y_in[1:] + 1e-12) and np.any(np.abs(g_in) > 1e-3)
    assert np.abs(s).max() <= 2.0 / (1.0 - m.STATE_DECAY) + 1e-9
    # input gates shut (bias -60): a carried-in state decays as exactly 0.9^t
    shut = {k: v.copy() for k, v in p.items()}
    shut["b_in"][:] = -60.0
    c = m.n_cells(cfg)
    ker = m.Kernel(1, 30, 1, c, False, False, np.float64, decay=m.STATE_DECAY)
    pk = m.pack({k: v[None] for k, v in shut.items()}, False, np.float64)
    u0 = np.linspace(-3.0, 3.0, c)[None, None]
    ker.forward(pk, np.zeros((30, 1, 1), dtype=np.int64), None, u0, np.zeros_like(u0))
    expect = u0[0, 0] * m.STATE_DECAY ** np.arange(31)[:, None]
    np.testing.assert_allclose(ker.U[:, 0, 0], expect, rtol=1e-12, atol=1e-20)
    plain = m.trace(p, cfg, edges, reset=False)  # the same weights, no decay
    assert np.abs(plain["s"]).max() > 5 * np.abs(s).max()


def test_error_criterion_threshold():
    target = np.array([[1.0, 0.0]])
    assert not m.step_errors(np.array([[0.52, 0.48]]), target).any()
    assert m.step_errors(np.array([[0.51, 0.2]]), target).all()  # |0.51 - 1| = 0.49
    assert m.step_errors(np.array([[0.9, 0.49]]), target).all()


def test_stack_grouping_does_not_change_a_seed():
    """A seed's record is the same trained alone or stacked with another seed, and every
    variant of a seed sees the same training streams (same data rng)."""
    cfg = dataclasses.replace(m.PRESETS["quick"], max_symbols=8_000, test_len=600,
                              test_block=200)
    both = m.train_stack(cfg, "forget", [0, 1])
    alone = m.train_stack(cfg, "forget", [1])[0]
    for k in ("solved", "training_symbols", "confirm", "curves", "stop_tests"):
        assert both[1][k] == alone[k], k
    assert np.array_equal(both[1]["snapshots"], alone["snapshots"])


def test_perfect_test_on_a_trivial_case():
    """evaluate() counts errors per stream and reports error-free lengths."""
    cfg = dataclasses.replace(m.PRESETS["quick"], test_len=400, test_block=100)
    p = m.init_params(cfg, np.random.default_rng(0), "forget")
    ev = m.evaluate(cfg, "forget", {k: v[None] for k, v in p.items()}, [(0, 300)], False)
    assert ev["first_error"].shape == (1, cfg.test_streams)
    assert (ev["first_error"] < 400).all() and not ev["perfect"][0]  # untrained net errs
    assert (ev["errors"] >= 1).all()


@pytest.mark.parametrize("args", [["--variants", "forget,bogus"], ["--batch", "0"],
                                  ["--restart-p", "1.5"], ["--chunk", "-3"],
                                  ["--max-symbols", "0"], ["--lr", "0.1", "--lr-final", "1"],
                                  ["--seeds", "1,1"], ["--loss", "hinge"]])
def test_folder_bad_inputs(args, tmp_path):
    out = tmp_path / "out"
    r = run_script(FOLDER / "continual_embedded_reber.py",
                   ["--preset", "quick", "--outdir", str(out), "--quiet", *args], timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error:" in ln]) == 1
    assert not out.exists()


def test_restart_on_error_restarts_streams_that_erred():
    """An untrained net errs in every stream of every chunk, so with restart_on_error and
    restart_p = 0 every stream restarts every chunk: the same run as restart_p = 1."""
    base = dataclasses.replace(m.PRESETS["quick"], max_symbols=3 * 8 * 16, test_len=300,
                               test_block=100, n_snapshots=2)
    on_error = m.train_stack(dataclasses.replace(base, restart_p=0.0, restart_on_error=True),
                             "no_forget", [0])[0]
    always = m.train_stack(dataclasses.replace(base, restart_p=1.0), "no_forget", [0])[0]
    never = m.train_stack(dataclasses.replace(base, restart_p=0.0), "no_forget", [0])[0]
    for k, v in always["final_params"].items():
        assert np.array_equal(on_error["final_params"][k], v), k
    assert not all(np.array_equal(never["final_params"][k], v)
                   for k, v in always["final_params"].items())


@pytest.mark.parametrize("variant", m.VARIANTS)
def test_truncated_gradient_cuts_only_the_recurrent_path(variant):
    """The truncated gradient (option) drops exactly the error through the recurrent
    weights: with those weights zero it equals the full gradient, otherwise it differs
    (and the output layer's gradient never changes)."""
    cfg = dataclasses.replace(m.PRESETS["quick"], variants=(variant,), batch=3, chunk=15)
    cut = dataclasses.replace(cfg, truncated=True)
    rng = np.random.default_rng(11)
    p = m.init_params(cfg, rng, variant)
    batch = m.sample_batch(cfg, rng, variant)
    _l, full = m.loss_and_grads(p, batch, cfg)
    _l, trunc = m.loss_and_grads(p, batch, cut)
    assert np.array_equal(full["W_k"], trunc["W_k"])
    assert not np.allclose(full["W_in"], trunc["W_in"])
    p0 = {k: v.copy() for k, v in p.items()}
    for k in p0:
        if k.startswith("W_") and k != "W_k":
            p0[k][m.N_SYM:] = 0.0  # no recurrent connections y^c_{t-1} -> hidden units
    _l, full0 = m.loss_and_grads(p0, batch, cfg)
    _l, trunc0 = m.loss_and_grads(p0, batch, cut)
    for k in full0:
        assert np.allclose(full0[k], trunc0[k], rtol=1e-12, atol=1e-15), k


# ---------------------------------------------------------------------------------------
# The paper's online training (side study): batched per-net kernel
# ---------------------------------------------------------------------------------------
ONLINE_VARIANTS = ("forget", "no_forget", "reset", "decay")
ONLINE_FORGET = [True, False, False, False]
ONLINE_DECAY = [1.0, 1.0, 1.0, m.STATE_DECAY]


def _online_nets(rng, scale=0.3):
    """Four nets (forget, no_forget, reset, decay) with perturbed paper inits."""
    cfg = m.PRESETS["quick"]
    ps = [m.init_params(cfg, rng, v) for v in ONLINE_VARIANTS]
    for p in ps:
        for k in p:
            p[k] = p[k] + rng.normal(0.0, scale, p[k].shape)
    return ps


def test_online_gradient_equals_truncated_bptt_per_net():
    """The batched forward-mode (RTRL-style) truncated gradient, summed over a stream with
    the weights held fixed, equals the folder's truncated BPTT gradient (squared error) of
    each net on its own stream: every parameter of every net, nets of all four variants in
    one batch."""
    T = 40
    rng = np.random.default_rng(21)
    ps = _online_nets(rng)
    edges = m.fresh_streams(rng, 4, T + 5)[5:]  # each net its own stream, mid-string start
    net = ot.OnlineNets(ps, ONLINE_FORGET, 4, 2, ONLINE_DECAY)
    reset = np.array([False, False, True, False])
    acc_w, acc_k = np.zeros_like(net.W), np.zeros_like(net.Wk)
    for t in range(T):
        e = edges[t]
        net.zero_state((~(reset & m.TABLES["starts"][e])).astype(np.float64))
        net.step(m.TABLES["sym"][e], m.TABLES["legal"][e], None)
        acc_w += net.gW
        acc_k += net.gWk
    for n, v in enumerate(ONLINE_VARIANTS):
        cfg = dataclasses.replace(m.PRESETS["quick"], variants=(v,), batch=1, chunk=T,
                                  truncated=True, loss="mse")
        x, target, keep = m.stream_data(edges[:, n:n + 1], v == "reset")
        batch = dict(x=x, target=target, keep=keep, u0=np.zeros((1, 8)), y0=np.zeros((1, 8)))
        _l, g = m.loss_and_grads(ps[n], batch, cfg)
        online = ot.unfuse_online(acc_w[n], acc_k[n], v, 4)
        assert online.keys() == g.keys()
        for k in g:  # BPTT's loss is the mean over T steps x 7 outputs
            assert np.allclose(online[k] / (T * m.N_SYM), g[k], rtol=1e-9, atol=1e-15), (v, k)


def test_online_one_step_gradient_finite_differences():
    """From a carried state with zero partials, one step's gradient is the exact gradient of
    E(t) = 1/2 sum_k (y^k - t^k)^2: central differences on every weight of every net."""
    rng = np.random.default_rng(22)
    ps = _online_nets(rng)
    x = np.array([1, 4, 6, 3])
    target = m.TABLES["legal"][rng.integers(0, len(m.TABLES["sym"]), 4)]
    s0, y0 = rng.uniform(-2, 2, (4, 8)), rng.uniform(-0.9, 0.9, (4, 8))
    net = ot.OnlineNets(ps, ONLINE_FORGET, 4, 2, ONLINE_DECAY)

    def energy(W, Wk):
        probe = ot.OnlineNets(ps, ONLINE_FORGET, 4, 2, ONLINE_DECAY)
        probe.W, probe.Wk, probe.s, probe.yc = W, Wk, s0.copy(), y0.copy()
        probe.step(x, target, None)
        return 0.5 * ((probe.y - target) ** 2).sum(axis=1)

    net.s, net.yc = s0.copy(), y0.copy()
    net.step(x, target, None)
    h = 1e-6
    for arr, grad, which in ((net.W, net.gW, 0), (net.Wk, net.gWk, 1)):
        for idx in np.ndindex(arr.shape[1:]):
            plus, minus = [net.W.copy(), net.Wk.copy()], [net.W.copy(), net.Wk.copy()]
            plus[which][(slice(None),) + idx] += h
            minus[which][(slice(None),) + idx] -= h
            num = (energy(*plus) - energy(*minus)) / (2 * h)
            ana = grad[(slice(None),) + idx]
            if which == 0 and idx[0] == arr.shape[1] - 1 and idx[1] >= 12:
                num = np.zeros(len(x))  # cell-input bias: not a weight of the net (stays 0)
            assert np.allclose(ana, num, rtol=1e-6, atol=1e-9), (which, idx, ana, num)


def test_online_batched_nets_are_independent():
    """Nets in one lock-step batch do not interact: changing one net's seed (its init and
    its streams) leaves every other net's record and weights bit-identical, and a net
    trained alone is bit-identical to itself trained in the batch."""
    ocfg = m.OnlineConfig(max_symbols=1200, coin_block=400, test_len=150, log_every_symbols=300)
    base = [("forget", 0), ("no_forget", 1), ("reset", 2), ("forget_decay", 3)]
    changed = [base[0], ("no_forget", 7), base[2], base[3]]
    a = ot.train_online(ocfg, base)
    b = ot.train_online(ocfg, changed)
    for n in (0, 2, 3):
        for k in ("training_streams", "tests", "curves", "longest_test_run"):
            assert a[n][k] == b[n][k], (n, k)
        for k, v in a[n]["final_params"].items():
            assert np.array_equal(v, b[n]["final_params"][k]), (n, k)
    assert not np.array_equal(a[1]["final_params"]["W_in"], b[1]["final_params"]["W_in"])
    assert a[0]["training_streams"] > 50  # the untrained nets err and restart often
    alone = ot.train_online(ocfg, [base[2]])[0]
    assert alone["training_streams"] == a[2]["training_streams"]
    for k, v in alone["final_params"].items():
        assert np.array_equal(v, a[2]["final_params"][k]), k  # bit-identical


# ---------------------------------------------------------------------------------------
# The paper preset: Table 2's rows, both readings of the alpha decay, results, README prose
# ---------------------------------------------------------------------------------------
QUICK_PAPER = m.OnlineConfig(max_symbols=3000, max_streams=400, coin_block=500, test_len=200,
                             log_every_symbols=1000)


def test_alpha_decay_readings():
    """Reading (a): alpha = 0.5 at every training stream start, x0.99 per step within it;
    reading (b): alpha x0.99 per finished training stream, never reset; forget: constant."""
    nets = [("forget_alpha_a", 0), ("forget_alpha_b", 0), ("forget", 0)]
    recs = ot.train_online(QUICK_PAPER, nets)
    a, b, f = recs
    assert f["alpha_end"] == 0.5
    want_b = 0.5
    for _ in range(b["training_streams"]):
        want_b *= 0.99
    assert b["training_streams"] > 20 and b["alpha_end"] == want_b
    # (a) restarts: its alpha at the end is 0.5 x 0.99^(steps into the unfinished stream)
    k = np.log(a["alpha_end"] / 0.5) / np.log(0.99)
    assert abs(k - round(k)) < 1e-6 and 0 <= round(k) < a["longest_training_stream"] + 1
    assert a["alpha_end"] > b["alpha_end"]


def test_paper_preset_quick_run_and_table(tmp_path):
    """A quick variant of the paper preset runs every Table 2 row from the CLI, writes a
    valid results.json with per-run figures, and its tables render."""
    from helpers import validate_results
    out = tmp_path / "p"
    r = run_script(FOLDER / "continual_embedded_reber.py",
                   ["--preset", "paper", "--seeds", "0-1", "--jobs", "1", "--max-symbols",
                    "2000", "--max-streams", "300", "--test-len", "200", "--outdir", str(out),
                    "--quiet"], timeout=120)
    assert r.returncode == 0, r.stderr
    res = __import__("json").loads((out / "results.json").read_text())
    validate_results(res)
    assert res["preset"] == "paper" and list(res["summary"]) == list(m.PAPER_ROWS)
    for d in res["summary"].values():
        assert d["n_runs"] == d["n_seeds"] == 2
        assert d["solved"] + d["good"] + d["rest"] == 2
        assert d["streams_total"] > 0 and d["symbols_total"] > 0
    table = m.paper_table(res)
    assert table.count("\n") == len(m.PAPER_ROWS) + 1
    modern = __import__("json").loads((FOLDER / "results.json").read_text())
    assert modern["preset"] == "modern"
    modern = m.finalize_results(modern)
    assert "not run" not in m.results_table(modern, {"paper": res})
    assert "not run" in m.results_table(modern, {})
    rows = m.overview(modern, {"paper": res})
    assert all(0 <= row["ours_paper"] <= 1 for row in rows)


def test_paper_run_resumes_bit_identically(tmp_path):
    """A paper-scheme run paused at every coin block, pickled and loaded again, ends with
    records identical to the same run without pauses."""
    nets = [("forget", 0), ("reset", 1), ("forget_alpha_b", 2), ("decay", 3)]
    ocfg = dataclasses.replace(QUICK_PAPER, max_symbols=2500, max_streams=5000)
    whole = ot.OnlineRun(ocfg, nets)
    assert whole.run()
    paused = ot.OnlineRun(ocfg, nets)
    ckpt, n_pauses = tmp_path / "ck.pkl", 0
    while not paused.run(until=-1.0):  # pause at the next block boundary
        paused.save(ckpt)
        paused = ot.OnlineRun.load(ckpt)
        n_pauses += 1
    assert n_pauses >= 4
    for a, b in zip(whole.records(), paused.records(), strict=True):
        for k in a:
            if k in ("final_params",):
                for kk, v in a[k].items():
                    assert np.array_equal(v, b[k][kk]), kk
            elif "wall" not in k and "_per_s" not in k:
                assert a[k] == b[k], k


def _k(x):
    """A number in thousands as the README prose writes it (172131 -> '172k')."""
    return f"{x / 1e3:.0f}k"


def test_readme_prose_numbers_match_results():
    """Every results.json number the README's prose quotes is the committed run's."""
    text = (FOLDER / "README.md").read_text()
    res = m.finalize_results(__import__("json").loads((FOLDER / "results.json").read_text()))
    s, recs = res["summary"], res["seeds"]
    stopped = [r for r in recs if r["solved"]]
    erred = [r["confirm"]["errors"] for r in stopped if not r["confirm"]["perfect"]]
    want = [
        f"Of the {len(stopped)} nets that passed a stop\ntest, {len(erred)} made "
        f"{min(erred)}–{max(erred)} errors",
        f"`forget` {s['forget']['solved']}/10 perfect, {s['forget']['confirmed_perfect']}/10 "
        "again",
        f"`reset`\n  {s['reset']['solved']}/10 ({s['reset']['confirmed_perfect']}/10)",
        f"`no_forget` {s['no_forget']['solved']}/10\n  perfect "
        f"({s['no_forget']['confirmed_perfect']}/10 confirmed",
        f"Modern `decay` is {s['decay']['solved']}/10 perfect at its stop test (paper 0%), "
        f"{s['decay']['confirmed_perfect']}/10 confirmed",
        f"({_k(s['no_forget']['state_norm_end']['min'])}–"
        f"{_k(s['no_forget']['state_norm_end']['max'])} after 100k symbols)",
        f"`reset` {s['reset']['state_norm_end']['min']:.0f}–"
        f"{s['reset']['state_norm_end']['max']:.0f}, `decay` "
        f"{s['decay']['state_norm_end']['min']:.0f}–{s['decay']['state_norm_end']['max']:.0f}",
        f"{s['forget']['state_norm_end']['min']:.0f}–"
        f"{round(s['forget']['state_norm_end']['max'], -3):,.0f}",
        f"{sum(r['training_symbols'] for r in recs) / 1e6:.0f}M\ntraining symbols for "
        f"{len(recs)} nets",
        f"**{res['wallclock_s']:.0f} s wall**",
    ]
    flat = " ".join(text.split())
    for w in want:
        assert " ".join(w.split()) in flat, w


def test_cnto_generator_and_criterion():
    """CNTO (Table 3): concatenated Experiment-6b sequences with the class at each end."""
    rng = np.random.default_rng(5)
    st = cnto.cnto_stream(rng, 300)
    x, ends, classes = st["x"], st["ends"], st["classes"]
    starts = np.concatenate([[0], ends[:-1] + 1])
    assert ends[-1] == len(x) - 1 and len(ends) == 300
    seen = set()
    for a, b, c in zip(starts, ends, classes, strict=True):
        seq = "".join(cnto.CNTO_SYMBOLS[i] for i in x[a:b + 1])
        assert 100 <= len(seq) <= 110 and seq[0] == "E" and seq[-1] == "B"
        marks = [i + 1 for i, ch in enumerate(seq) if ch in "XY"]
        assert len(marks) == 3 and set(seq[1:-1]) - set("abcdXY") == set()
        for t, (lo, hi) in zip(marks, cnto.CNTO_WINDOWS, strict=True):
            assert lo <= t <= hi
        assert c == int("".join("01"[seq[t - 1] == "Y"] for t in marks), 2)
        seen.add(c)
    assert seen == set(range(8))
    assert np.array_equal(cnto.cnto_stream(np.random.default_rng(5), 300)["x"], x)
    y = np.eye(8)[classes[:4]] * 0.8 + 0.1  # within 0.3 of every target
    assert cnto.cnto_correct(y, classes[:4]).all()
    y[2, classes[2]] = 0.65  # off by 0.35
    assert list(cnto.cnto_correct(y, classes[:4])) == [True, True, False, True]
    ok = np.ones((10, 100), dtype=bool)
    assert cnto.cnto_perfect(ok)
    ok[3, 99] = False
    assert not cnto.cnto_perfect(ok) and not cnto.cnto_perfect(np.ones((10, 99), dtype=bool))


def test_paper_cli_resumes_from_its_checkpoint(tmp_path):
    """The paper preset's CLI, stopped by Ctrl-C after a checkpoint and run again with the
    same arguments, resumes and writes the records of an uninterrupted run."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from helpers import script_env, sigint_default
    args = ["--preset", "paper", "--seeds", "0-1", "--jobs", "1", "--variants",
            "forget,no_forget", "--max-symbols", "12000", "--max-streams", "20000",
            "--test-len", "300", "--checkpoint-every", "0.1", "--quiet"]
    script = str(FOLDER / "continual_embedded_reber.py")
    whole = run_script(FOLDER / "continual_embedded_reber.py",
                       args + ["--outdir", str(tmp_path / "a")], timeout=120)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, script, *args, "--outdir", str(out)],
                            cwd=str(ROOT), env=script_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    t0 = time.time()
    while not (out / "checkpoint_1of1.pkl").exists() and proc.poll() is None:
        assert time.time() - t0 < 60
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    interrupted = proc.returncode == 130
    if interrupted:
        assert (out / "checkpoint_1of1.pkl").exists() and not (out / "results.json").exists()
    again = run_script(FOLDER / "continual_embedded_reber.py", args + ["--outdir", str(out)],
                       timeout=120)
    assert again.returncode == 0, again.stderr
    assert not (out / "checkpoint_1of1.pkl").exists()
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((out / "results.json").read_text())
    drop = ("cpu_time_s",)
    for ra, rb in zip(a["seeds"], b["seeds"], strict=True):
        assert {k: v for k, v in ra.items() if k not in drop} == \
            {k: v for k, v in rb.items() if k not in drop}
    with np.load(tmp_path / "a" / "run.npz") as za, np.load(out / "run.npz") as zb:
        assert all(np.array_equal(za[k], zb[k]) for k in za.files)
    assert interrupted, "the run finished before Ctrl-C: make it longer"


def test_single_factor_study_readme_matches_its_runs():
    """The single-factor study's table and the folder README's summary are its runs'
    (summary.json, recomputed here from each run's results.json)."""
    import json

    sf = FOLDER / "side_runs" / "single_factor"
    summary = json.loads((sf / "summary.json").read_text())
    text = " ".join((sf / "README.md").read_text().split())
    folder_text = " ".join((FOLDER / "README.md").read_text().split())
    count = {}
    for phase in ("control", "sgd", "batch1"):
        res = json.loads((sf / phase / "results.json").read_text())
        assert res["env"]["git_dirty"] is False
        assert sorted({r["seed"] for r in res["seeds"]}) == list(range(100, 110))
        row = {}
        for v in ("no_forget", "forget"):
            recs = [r for r in res["seeds"] if r["variant"] == v]
            solved = [r for r in recs if r["solved"]]
            conf = sum(r["confirm"]["perfect"] for r in solved)
            assert summary[phase][v]["runs_solved"] == len(solved)
            assert summary[phase][v]["runs_confirmed"] == conf
            row[v] = f"{len(solved)}/10 ({conf}/10)"
        count[phase] = row
        symbols = sum(r["training_symbols"] for r in res["seeds"])
        assert f"{symbols / 1e6:.0f}M | {res['wallclock_s']:,.0f} s |" in text, phase
        assert row["forget"] in text
    assert f"| **{count['sgd']['no_forget']}** |" in text
    assert f"| {count['batch1']['no_forget']} |" in text
    ctrl, sgd, b1 = (int(count[p]["no_forget"].split("/")[0]) for p in ("control", "sgd",
                                                                          "batch1"))
    fc, fs = (int(count[p]["forget"].split("/")[0]) for p in ("control", "sgd"))
    assert (f"`no_forget` from {ctrl}/10 to {sgd}/10 (`forget` {fc}/10 → {fs}/10); one stream "
            f"per update raises it to {b1}/10") in folder_text
    # the protocol's rule: removing Adam alone takes no_forget to 0/10, forget within 3
    assert sgd == 0 and abs(fc - fs) <= 3 and "Adam is the ingredient" in folder_text
    pick = json.loads((sf / "lr_pick.json").read_text())
    assert float(pick["lr"]) == float(min(pick["error_rate"], key=pick["error_rate"].get))



def test_paper_run_readme_is_its_results():
    """The committed paper-scheme run: finished (no checkpoints left), its README's table is
    paper_table of its results.json, and the prose quotes that run's numbers."""
    import json

    sub = FOLDER / "paper"
    res = m.finalize_results(json.loads((sub / "results.json").read_text()))
    assert res["preset"] == "paper" and not res["env"]["git_dirty"]
    assert not list(sub.glob("checkpoint_*.pkl")) and not (sub / "PARTIAL.md").exists()
    s = res["summary"]
    assert list(s) == list(m.PAPER_ROWS) and all(d["n_seeds"] == 30 for d in s.values())
    text = (sub / "README.md").read_text()
    assert f"<!-- paper table -->\n{m.paper_table(res)}\n<!-- /paper table -->" in text
    recs = res["seeds"]
    dec = [r["confirm"]["errors"] for r in recs if r["variant"] == "decay" and r["solved"]]
    capped = {v: d["stopped_by_symbol_cap"] for v, d in s.items()}
    pct = {v: f"{100 * d['solved'] / 30:.0f}% [{100 * d['solved_ci95'][0]:.0f}–"
              f"{100 * d['solved_ci95'][1]:.0f}]" for v, d in s.items()}
    want = [
        f"reset, {s['no_forget']['solved']} of 30 nets learn the stream (paper 0%); their mean "
        f"error-free length is {s['no_forget']['rest_mean_error_free_length']:.0f}",
        f"With forget gates, {s['forget']['solved']} of 30 are perfect "
        f"({s['forget']['confirmed_of_solved']} of them again",
        f"with the external reset, {s['reset']['solved']} of 30 "
        f"({s['reset']['confirmed_of_solved']})",
        f"{pct['forget']} against 18%, after {s['forget']['streams_to_solve']['mean']:,.0f} "
        "training streams on average (paper 18,889)",
        f"Our `reset` ({pct['reset']}, paper 74%) and α decay (a) ({pct['forget_alpha_a']}, "
        "paper 62%)",
        f"{s['decay']['solved']} of 30 pass it, but {s['decay']['confirmed_of_solved'] or 'none'}"
        f" of the {s['decay']['solved']} is perfect on the confirmation streams "
        f"({min(dec)}–{max(dec)} errors in 1M symbols). {s['decay']['good']} more are \"good\" "
        f"(mean error-free length {s['decay']['good_mean_error_free_length']:,.0f})",
        f"fails completely** ({s['forget_alpha_b']['solved']} of 30; mean error-free length "
        f"{s['forget_alpha_b']['rest_mean_error_free_length']:.0f})",
        f"The symbol cap stopped {sum(capped.values())} nets** before their 30,000 streams",
        f"{capped['decay']} `decay`, {capped['forget']} `forget` and {capped['forget_alpha_a']}"
        " α-decay (a) nets",
        f"{res['cpu_time_s']:,.0f} CPU-seconds in all on 2 cores "
        f"({res['net_symbols_per_cpu_s']:,.0f} training net-symbols per CPU-second)",
        f"{sum(d['symbols_total'] for d in s.values()) / 1e9:.2f} billion training symbols for "
        f"the {len(recs)} nets",
    ]
    flat = " ".join(text.split())
    for w in want:
        assert " ".join(w.split()) in flat, w
    assert s["forget_alpha_b"]["solved"] == 0 and s["decay"]["confirmed_of_solved"] == 0
    assert 0.5 * m.OnlineConfig().lr_decay ** 848 < 1e-4 < 0.5 * m.OnlineConfig().lr_decay ** 847
