"""Folder tests for anbn-anbncn: task generator, model wiring, evaluator, bad inputs."""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import ROOT, load_experiment, load_script, run_script, script_env, sigint_default

FOLDER = ROOT / "anbn-anbncn"
M = load_experiment(FOLDER)
DK = load_script(FOLDER / "dekf.py")  # the DEKF trainer
SCRIPT = FOLDER / "anbn_anbncn.py"


# ---------------------------------------------------------------------------------------
# Task: the legal-set generator against an independent brute-force recogniser
# ---------------------------------------------------------------------------------------
def _language_strings(language, kmax):
    """Every string of the language with n, m <= kmax, as plain text 'S...T'."""
    out = []
    for n in range(1, kmax + 1):
        if language == "anbn":
            out.append("S" + "a" * n + "b" * n + "T")
        elif language == "anbncn":
            out.append("S" + "a" * n + "b" * n + "c" * n + "T")
        else:
            for m in range(1, kmax + 1):
                out.append("S" + "a" * n + "b" * m + "B" * m + "A" * n + "T")
    return out


def _legal_next(prefix, strings):
    """Symbols x such that prefix + x starts some string of the (bounded) language."""
    return {s[len(prefix)] for s in strings if s.startswith(prefix) and len(s) > len(prefix)}


@pytest.mark.parametrize("language", M.LANGUAGES)
def test_legal_sets_match_brute_force_recogniser(language):
    kmax = 4
    # Enumerate with a larger bound so that "more symbols may follow" is never truncated.
    strings = _language_strings(language, kmax + 2)
    ks = range(1, kmax + 1)
    pairs = list(itertools.product(ks, ks)) if language == "anbmBmAn" else [(n, 1) for n in ks]
    n = np.array([p[0] for p in pairs])
    m = np.array([p[1] for p in pairs])
    batch = M.make_strings(language, n, m if language == "anbmBmAn" else None)
    ins, outs = M.INPUTS[language], M.OUTPUTS[language]
    for b, (nn, mm) in enumerate(pairs):
        text = _language_strings(language, max(nn, mm))
        want = [s for s in text if s.count("a") == nn and (language != "anbmBmAn"
                                                         or s.count("b") == mm)][0]
        L = int(batch["length"][b])
        assert L == len(want) - 1  # every symbol but T is an input
        assert batch["mask"][:, b].sum() == L
        for t in range(L):
            assert ins[batch["sym"][t, b]] == want[t]
            got = {outs[k] for k in np.flatnonzero(batch["target"][t, b])}
            assert got == _legal_next(want[: t + 1], strings), (want, t)


def test_make_strings_rejects_nonpositive_n():
    for bad in ([0], [-3], []):
        with pytest.raises(ValueError):
            M.make_strings("anbn", bad)
    with pytest.raises(ValueError):
        M.make_strings("anbmBmAn", [2], [0])


def test_training_set_is_every_short_string():
    cfg = M.PRESETS["modern"]
    tr = M.training_set(cfg, "anbmBmAn")
    assert sorted(zip(tr["n"].tolist(), tr["m"].tolist(), strict=True)) == \
        [(a, b) for a in range(1, 11) for b in range(1, 11)]
    tr = M.training_set(cfg, "anbncn")
    assert sorted(tr["n"].tolist()) == list(range(1, 11))
    assert tr["sym"].shape[0] == 31  # S + 30 symbols at n = 10


# ---------------------------------------------------------------------------------------
# Model: peephole wiring, population independence, penalty exclusion of restart 0
# ---------------------------------------------------------------------------------------
def _logit(x):
    return np.log(x) - np.log1p(-x)


def test_peephole_wiring_reads_previous_state_for_i_f_and_current_for_o():
    cfg = M.Config(languages=("anbncn",), models=("peephole",), restarts=2, init_scale=0.5)
    params = M.init_params(cfg, np.random.default_rng(3))
    batch = M.training_set(cfg, "anbncn")
    cache = M.forward(params, batch["sym"])
    H = cache["s"].shape[-1]
    # Net input without peepholes, recomputed from the cache: W_x x_t + W_h y_{t-1} + b.
    y_prev = np.concatenate([np.zeros_like(cache["y"][:1]), cache["y"][:-1]])
    s_prev = np.concatenate([np.zeros_like(cache["s"][:1]), cache["s"][:-1]])
    z = (params["W_x"][:, batch["sym"]].transpose(1, 0, 2, 3) + params["b"][None, :, None]
         + y_prev @ params["W_h"])
    p = params["p"]
    np.testing.assert_allclose(_logit(cache["i"]) - z[..., :H], p[None, :, None, 0] * s_prev,
                               atol=1e-9)
    np.testing.assert_allclose(_logit(cache["f"]) - z[..., H:2 * H],
                               p[None, :, None, 1] * s_prev, atol=1e-9)
    np.testing.assert_allclose(_logit(cache["o"]) - z[..., 2 * H:3 * H],
                               p[None, :, None, 2] * cache["s"], atol=1e-9)


def test_perturbing_the_state_through_a_peephole():
    """Perturb s_{t-1} via the cell input at one step: i_t, f_t move with p_i, p_f only."""
    cfg = M.Config(languages=("anbn",), models=("peephole",), restarts=1)
    params = M.init_params(cfg, np.random.default_rng(5))
    sym = M.make_strings("anbn", [3])["sym"]
    base = M.forward(params, sym)
    for row, gate in ((0, "i"), (1, "f"), (2, "o")):
        q = {k: v.copy() for k, v in params.items()}
        q["p"][:, row] += 0.7
        pert = M.forward(q, sym)
        # At t = 0 the previous state is 0: the i/f peepholes cannot act; the o peephole
        # reads s_0 != 0 and must.
        same0 = np.allclose(pert[gate][0], base[gate][0])
        assert same0 == (gate != "o"), gate
        assert not np.allclose(pert[gate][1], base[gate][1]), gate


def test_no_peephole_model_has_no_peephole_weights():
    cfg = M.Config(languages=("anbn",), models=("no_peephole",), restarts=1)
    assert "p" not in M.init_params(cfg, np.random.default_rng(0))
    # Weight counts: 1 cell, 3 inputs, 3 outputs: 4*(3+1+1) gates + 3 peepholes + 3*(1+3+1).
    cfg = dataclasses.replace(cfg, models=("peephole",))
    n = sum(v[0].size for v in M.init_params(cfg, np.random.default_rng(0)).values())
    assert n == 4 * 5 + 3 + 15


def test_population_nets_are_independent():
    cfg = M.Config(languages=("anbn",), models=("peephole",), restarts=3, plain_first=False,
                   sat_penalty=0.2)
    params = M.init_params(cfg, np.random.default_rng(1))
    batch = M.training_set(cfg, "anbn")
    L, g = M.loss_and_grads(params, batch, cfg)
    one = dataclasses.replace(cfg, restarts=1)
    total = 0.0
    for p in range(3):
        sub = {k: v[p:p + 1] for k, v in params.items()}
        Lp, gp = M.loss_and_grads(sub, batch, one)
        total += Lp
        for k in g:
            np.testing.assert_allclose(g[k][p:p + 1], gp[k], rtol=1e-12, atol=1e-15)
    assert np.isclose(L, total)


def test_restart0_is_plain():
    cfg = M.Config(languages=("anbncn",), models=("peephole",), restarts=2, sat_penalty=0.5)
    params = M.init_params(cfg, np.random.default_rng(2))
    batch = M.training_set(cfg, "anbncn")
    _, g = M.loss_and_grads(params, batch, cfg)
    _, g0 = M.loss_and_grads(params, batch, dataclasses.replace(cfg, sat_penalty=0.0))
    for k in g:
        np.testing.assert_array_equal(g[k][0], g0[k][0])  # restart 0: no penalty
        assert not np.allclose(g[k][1], g0[k][1]) or k in ("V_y", "V_x", "c")


# ---------------------------------------------------------------------------------------
# Evaluator: a hand-built counter is accepted up to n = 1000; evaluator == forward pass
# ---------------------------------------------------------------------------------------
def _hand_counter(language):
    """Peephole-LSTM weights set by hand: cell k adds +1 / -1 per symbol, gates saturated."""
    B = 50.0  # saturating net input: sigmoid(+-50) and tanh(+-50) are exactly 1.0 / 0.0
    # (and -1.0) in float64, so each a adds exactly +1 and each b exactly -1
    ins, outs = M.INPUTS[language], M.OUTPUTS[language]
    H = M.CELLS[language]
    D, K = len(ins), len(outs)
    W_x = np.zeros((D, 4 * H))
    W_x[:, H:2 * H] = B  # forget gates always open (remember)
    # (cell, symbol counted up, symbol counted down, symbols that show the cell's output)
    if language == "anbn":
        plan = [(0, "a", "b", "ab")]
    else:
        plan = [(0, "a", "b", "ab"), (1, "b", "c", "c")]
    for cell, up, down, show in plan:
        W_x[:, cell] = -B  # input gate shut ...
        W_x[ins.index(up), cell] = B  # ... open on the counted symbols
        W_x[ins.index(down), cell] = B
        W_x[ins.index(up), 3 * H + cell] = B  # g = +1
        W_x[ins.index(down), 3 * H + cell] = -B  # g = -1
        W_x[:, 2 * H + cell] = -B  # output gate shut except where the count is read
        for ch in show:
            W_x[ins.index(ch), 2 * H + cell] = B
    V_x = np.full((D, K), -10.0)
    V_y = np.zeros((H, K))
    o = outs.index
    V_x[ins.index("S"), o("a")] = 10.0
    V_x[ins.index("a"), o("a")] = 10.0
    V_x[ins.index("a"), o("b")] = 10.0
    V_y[0, o("b")] = 20.0  # after b: another b while cell 0 is still above 0
    V_x[ins.index("b"), o("b")] = -5.0
    if language == "anbn":
        V_y[0, o("T")] = -20.0
        V_x[ins.index("b"), o("T")] = 5.0
    else:
        V_y[0, o("c")] = -20.0  # after the last b (cell 0 back at 0): c
        V_x[ins.index("b"), o("c")] = 5.0
        V_y[1, o("c")] = 20.0  # after c: another c while cell 1 is above 0 ...
        V_x[ins.index("c"), o("c")] = -5.0
        V_y[1, o("T")] = -20.0  # ... else T
        V_x[ins.index("c"), o("T")] = 5.0
    params = {"W_x": W_x, "W_h": np.zeros((H, 4 * H)), "b": np.zeros(4 * H),
              "p": np.zeros((3, H)), "V_y": V_y, "V_x": V_x, "c": np.zeros(K)}
    return {k: v[None].astype(np.float64) for k, v in params.items()}


@pytest.mark.parametrize("language", ["anbn", "anbncn"])
def test_hand_built_counter_accepted_to_1000(language):
    params = _hand_counter(language)
    cfg = M.PRESETS["modern"]
    sweep = M.test_sweep(params, cfg, language)
    met = M.sweep_metrics(sweep["accepted"][0], language)
    assert met["e1"] == 1001 and met["total_accepted"] == 1000
    # ... and it is not a trivially accepting evaluator: break the count by 1e-2 per symbol.
    bad = {k: v.copy() for k, v in params.items()}
    H = M.CELLS[language]
    bad["W_x"][0, M.INPUTS[language].index("b"), 3 * H] = -2.0  # g = tanh(-2) on b
    acc = M.test_sweep(bad, cfg, language)["accepted"][0]
    assert not acc.all()


def test_evaluator_equals_padded_forward_pass():
    for language in M.LANGUAGES:
        cfg = M.Config(languages=(language,), models=("peephole",), restarts=3)
        params = M.init_params(cfg, np.random.default_rng(7))
        batch = M.training_set(cfg, language)
        u = M.forward(params, batch["sym"])["u"]
        want = np.all(((u > 0) == batch["target"][:, None]) | ~batch["mask"][:, None, :, None],
                      axis=(0, 3))
        np.testing.assert_array_equal(M.accept(params, batch), want)
        ok, margin, _ = M.training_scores(params, batch)
        np.testing.assert_array_equal(ok, want.all(axis=1))


def test_sweep_metrics():
    acc = np.ones(20, dtype=bool)
    assert M.sweep_metrics(acc, "anbn") == {"e1": 21, "contiguous_max_n": 20,
                                            "total_accepted": 20}
    acc[[4, 9]] = False
    assert M.sweep_metrics(acc, "anbn")["e1"] == 5
    grid = np.ones((6, 6), dtype=bool)
    grid[2, 4] = False  # (n, m) = (3, 5)
    met = M.sweep_metrics(grid, "anbmBmAn")
    assert met["e1"] == 5 and met["largest_square"] == 4
    assert met["accepted_fraction"] == pytest.approx(35 / 36)


def test_selection_uses_only_penalised_restarts_and_training_scores():
    ok = np.array([True, True, False, True])
    margin = np.array([9.0, 1.0, -1.0, 2.0])
    nonsat = np.array([0.0, 0.5, 0.0, 0.1])
    assert M.select_restart(ok, margin, nonsat, plain_first=True) == 3
    assert M.select_restart(ok, margin, nonsat, plain_first=False) == 0
    assert M.select_restart(np.zeros(4, bool), margin, nonsat, plain_first=True) == 3


# ---------------------------------------------------------------------------------------
# Folder-specific bad inputs
# ---------------------------------------------------------------------------------------
BAD = [
    ("n <= 0", ["--train-max-n", "0"]),
    ("repeated seeds", ["--seeds", "1,1"]),
    ("empty outdir", ["--outdir", ""]),
    ("test below training range", ["--test-max-n", "5"]),
    ("grid below training range", ["--grid-max", "3"]),
    ("empty languages", ["--languages", ""]),
    ("unknown language", ["--languages", "anbn,xyz"]),
    ("unknown model", ["--models", "gru"]),
    ("zero restarts", ["--restarts", "0"]),
    ("dekf with restarts", ["--optimizer", "dekf", "--restarts", "3"]),
]


@pytest.mark.parametrize("label,args", BAD, ids=[b[0] for b in BAD])
def test_cli_folder_bad_inputs(label, args, tmp_path):
    out = tmp_path / "out"
    r = run_script(SCRIPT, ["--preset", "quick", "--outdir", str(out), "--quiet", *args],
                   timeout=60)
    assert r.returncode == 2, (label, r.stderr)
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error:" in ln]) == 1, r.stderr
    assert not out.exists()


def test_hand_counter_is_exact_and_accepted_to_10000():
    """The phased evaluator on an exact counter: every n <= 10,000 accepted (float64)."""
    params = _hand_counter("anbn")
    pre = M.a_phase(params, "anbn", 60)
    assert np.array_equal(pre["states"][0][:, 0, 0], np.arange(1.0, 61.0))  # +1 per a
    assert M.first_failures(params, "anbn", 1, 10000)[0] == 10001


def _leaky(language, leak):
    """The hand counter with the down-count shortened by `leak` per symbol."""
    params = _hand_counter(language)
    H = M.CELLS[language]
    ins = M.INPUTS[language]
    params["W_x"][0, ins.index("b"), 3 * H] = -np.arctanh(1 - leak)  # g = -(1 - leak) on b
    return params


@pytest.mark.parametrize("language", ["anbn", "anbncn"])
def test_phased_evaluator_equals_padded_evaluator(language):
    """accept_counts (phase by phase) == accept (padded, every string from S) on nets that
    accept some strings and reject others, for every model."""
    leaks = [1e-3, 3e-2, 0.1, 0.3]
    nets = [_leaky(language, x) for x in leaks]
    params = {k: np.concatenate([n[k] for n in nets]) for k in nets[0]}
    ns = np.arange(1, 70)
    want = M.accept(params, M.make_strings(language, ns))
    assert want.any() and not want.all()
    np.testing.assert_array_equal(M.accept_counts(params, language, ns), want)
    for model in ("no_peephole", "rnn"):
        cfg = M.Config(languages=(language,), models=(model,), restarts=8, init_scale=2.0)
        p = M.init_params(cfg, np.random.default_rng(11))
        np.testing.assert_array_equal(M.accept_counts(p, language, ns[:30]),
                                      M.accept(p, M.make_strings(language, ns[:30])))
    # first_failures agrees with the first rejected n of a full sweep
    acc = M.accept_counts(params, language, np.arange(1, 301))
    first = np.where(acc.all(1), 301, np.argmin(acc, axis=1) + 1)
    np.testing.assert_array_equal(M.first_failures(params, language, 1, 300), first)


# ---------------------------------------------------------------------------------------
# Truncated gradient: the full gradient with the peephole paths into s_c removed by hand
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["anbn", "anbncn"])
def test_truncated_gradient_is_full_gradient_with_peephole_paths_cut(language):
    cfg = M.Config(languages=(language,), models=("peephole",), restarts=1,
                   plain_first=False, train_max_n=3, sat_penalty=0.3, sat_start=0.0,
                   gradient="truncated")
    rng = np.random.default_rng(4)
    params = M.init_params(cfg, rng)
    batch = M.sample_batch(cfg, rng)
    S = M.forward(params, batch["sym"])["s"].copy()  # the peepholes read these, held fixed

    def cut_loss(p):
        cache = M.forward(p, batch["sym"], peep_s=S)
        L = M._loss_from_logits(cache["u"], batch["target"], batch["mask"])[0]
        return L + M.saturation_penalty(cache, batch, cfg)

    L, g = M.loss_and_grads(params, batch, cfg)
    assert np.isclose(L, cut_loss(params), rtol=1e-12)
    h = 1e-6
    for k, v in params.items():
        for idx in np.ndindex(v.shape):
            old = v[idx]
            v[idx] = old + h
            up = cut_loss(params)
            v[idx] = old - h
            down = cut_loss(params)
            v[idx] = old
            num = (up - down) / (2 * h)
            assert abs(g[k][idx] - num) <= 1e-6 * max(abs(num), abs(g[k][idx])) + 1e-9, k
    _, full = M.loss_and_grads(params, batch, dataclasses.replace(cfg, gradient="full"))
    assert not np.allclose(full["W_x"], g["W_x"])  # the cut paths carried error


# ---------------------------------------------------------------------------------------
# Every restart tested; selection never sees the test; checkpoints resume exactly
# ---------------------------------------------------------------------------------------
QUICK = dataclasses.replace(M.PRESETS["quick"], languages=("anbn",), models=("peephole",))


def test_every_restart_is_tested_and_counted():
    out = M.train_one(QUICK, "anbn", "peephole", 0)
    plain, method = out["records"]
    acc = out["arrays"]["accepted_all_runs"]  # (restarts, test_max_n)
    P = QUICK.restarts
    assert acc.shape == (P, QUICK.test_max_n)
    assert plain["n_runs"] == 1 and method["n_runs"] == P - 1
    assert method["run_e1"] == [M.sweep_metrics(acc[p], "anbn")["e1"] for p in range(1, P)]
    assert method["runs_solved"] == int(acc[1:].all(axis=1).sum())
    assert method["updates_total"] == (P - 1) * QUICK.updates
    assert method["sequences_total"] == (P - 1) * QUICK.updates * QUICK.train_max_n


def test_selection_never_sees_the_test(monkeypatch):
    """The chosen restart is the same whatever the test sweep says."""
    picks = []
    for verdict in (True, False):
        def fake(params, cfg, language, verdict=verdict):
            P = params["W_x"].shape[0]
            return {"accepted": np.full((P, cfg.test_max_n), verdict)}
        monkeypatch.setattr(M, "test_sweep", fake)
        picks.append(M.train_one(QUICK, "anbn", "peephole", 1)["records"][1]["restart"])
    assert picks[0] == picks[1]


def test_checkpoint_resume_is_bit_identical(tmp_path, monkeypatch):
    cfg = dataclasses.replace(M.PRESETS["paper"], languages=("anbn",), updates=300,
                              test_max_n=30, long_test_max_n=0, lr=1e-3,
                              checkpoint_every_s=1e-9, log_every_s=1e9)
    want = M.train_one(cfg, "anbn", "peephole", 3)
    real = M.loss_and_grads
    calls = {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 137:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(M, "loss_and_grads", dying)
    with pytest.raises(KeyboardInterrupt):
        M.train_one(cfg, "anbn", "peephole", 3, ckpt_dir=tmp_path)
    monkeypatch.setattr(M, "loss_and_grads", real)
    assert list(tmp_path.glob("*.pkl"))
    got = M.train_one(cfg, "anbn", "peephole", 3, ckpt_dir=tmp_path)
    skip = ("wall", "cpu", "_per_s")
    for a, b in zip(want["records"], got["records"], strict=True):
        assert {k: v for k, v in a.items() if not any(w in k for w in skip)} == \
            {k: v for k, v in b.items() if not any(w in k for w in skip)}
    for k, v in want["arrays"]["params"].items():
        np.testing.assert_array_equal(v, got["arrays"]["params"][k])


def test_paper_preset_stops_when_the_training_set_is_accepted():
    cfg = dataclasses.replace(M.PRESETS["paper"], languages=("anbn",), updates=20000,
                              lr=0.05, momentum=0.9, test_max_n=30, long_test_max_n=0,
                              checkpoint_every_s=0.0)
    rec = M.train_one(cfg, "anbn", "peephole", 0)["records"]
    assert len(rec) == 1 and rec[0]["variant"] == "anbn/peephole" and rec[0]["n_runs"] == 1
    if rec[0]["train_accepted_all"]:
        assert rec[0]["updates"] < 20000 and rec[0]["updates"] % cfg.train_max_n == 0


# ---------------------------------------------------------------------------------------
# Ctrl-C: a --jobs 2 run stops within 2 s, exit 130, nothing written, no worker left
# ---------------------------------------------------------------------------------------
def test_sigint_stops_a_parallel_run(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--seeds", "0-5", "--jobs", "2", "--outdir", str(out),
         "--quiet", "--languages", "anbncn"], env=script_env(), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=sigint_default)
    time.sleep(2.5)
    t0 = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert time.perf_counter() - t0 < 2.0
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (out / "results.json").exists() and not (out / "run.npz").exists()
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # no process of the group is left


# ---------------------------------------------------------------------------------------
# DEKF: forward-derivative Jacobian vs finite differences; DEKF step vs dense EKF step
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["peephole", "no_peephole"])
def test_dekf_jacobian_equals_finite_differences(model):
    cfg = M.Config(languages=("anbncn",), models=(model,), restarts=1)
    params = M.init_params(cfg, np.random.default_rng(0))
    sym = M.make_strings("anbncn", [2])["sym"][:, 0]
    lay, st = DK.flat_layout(params), DK.rtrl_init(params)
    outs, Js = [], []
    for x in sym:
        o, J, st = DK.rtrl_step(params, lay, st, int(x))
        outs.append(o)
        Js.append(J)
    outs, Js = np.array(outs), np.array(Js)  # (T, K), (T, K, W)
    theta = DK.flatten(params)

    def f(t):
        return M.sigmoid(M.forward(DK.unflatten(t, params), sym[:, None])["u"][:, 0, 0])

    np.testing.assert_allclose(f(theta), outs, rtol=0, atol=1e-12)
    h = 1e-6
    for w in range(theta.size):
        e = np.zeros_like(theta)
        e[w] = h
        num = (f(theta + e) - f(theta - e)) / (2 * h)
        np.testing.assert_allclose(Js[:, :, w], num, rtol=1e-6, atol=1e-9)


def test_dekf_step_equals_dense_ekf_step_with_block_diagonal_covariance():
    cfg = M.Config(languages=("anbn",), models=("peephole",), restarts=1)
    params = M.init_params(cfg, np.random.default_rng(1))
    groups = DK.dekf_groups(params)
    W = DK.flatten(params).size
    assert sorted(np.concatenate(groups).tolist()) == list(range(W))  # a partition
    assert len(groups) == 4 * M.CELLS["anbn"] + len(M.OUTPUTS["anbn"])  # one per unit
    rng = np.random.default_rng(2)
    Ps = []
    for g in groups:
        A = rng.normal(size=(g.size, g.size))
        Ps.append(A @ A.T + np.eye(g.size))
    dense = np.zeros((W, W))
    for g, P in zip(groups, Ps, strict=True):
        dense[np.ix_(g, g)] = P
    lay, st = DK.flat_layout(params), DK.rtrl_init(params)
    for x in (0, 1, 1):
        _, J, st = DK.rtrl_step(params, lay, st, x)
    err = rng.normal(size=J.shape[0])
    theta = DK.flatten(params)
    t1, P1 = DK.dekf_update(theta.copy(), [P.copy() for P in Ps], groups, J, err, 3.0, 1e-4)
    t2, P2 = DK.ekf_update_dense(theta.copy(), dense, J, err, 3.0, 1e-4)
    np.testing.assert_allclose(t1, t2, rtol=1e-12, atol=1e-14)
    for g, P in zip(groups, P1, strict=True):
        np.testing.assert_allclose(P, P2[np.ix_(g, g)], rtol=1e-12, atol=1e-14)
    # with one group holding every weight, the DEKF is the dense EKF itself
    t3, P3 = DK.dekf_update(theta.copy(), [dense.copy()], [np.arange(W)], J, err, 3.0, 1e-4)
    np.testing.assert_allclose(t3, t2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(P3[0], P2, rtol=1e-12, atol=1e-14)


def test_dekf_run_is_one_online_net():
    cfg = dataclasses.replace(M.PRESETS["paper"], languages=("anbn",), optimizer="dekf",
                              updates=200, test_max_n=30, long_test_max_n=0,
                              checkpoint_every_s=0.0)
    rec = M.train_one(cfg, "anbn", "peephole", 0)["records"]
    assert len(rec) == 1 and rec[0]["n_runs"] == 1 and rec[0]["updates"] <= 200
    assert rec[0]["sequences_seen"] == rec[0]["updates"]  # one string per update


def test_readme_prose_numbers_match_results_json():
    """The numbers quoted in 'What it demonstrates' come from the committed results.json."""
    import json

    res = json.loads((FOLDER / "results.json").read_text())
    text = " ".join((FOLDER / "README.md").read_text().split())
    s = res["summary"]
    a, c = s["anbn/peephole"], s["anbncn/peephole"]
    fails = sorted(v for v in a["e1_long"]["values"] if v <= 10000)
    want = [
        f"{a['solved']} of {a['n_seeds']} seeds' nets accept every n ≤ 1000, "
        f"{a['solved_long']} of {a['n_seeds']} every n ≤ 10,000",
        "first fail at " + ", ".join(f"{v:,}" for v in fails),
        f"{a['runs_solved']} of {a['n_runs']} penalised restarts accept every n ≤ 1000, "
        f"{a['runs_solved_long']} every n ≤ 10,000",
        f"{c['solved']} of {c['n_seeds']} (the others fail at "
        + ", ".join(str(v) for v in sorted((v for v in c["e1"]["values"] if v <= 1000),
                                           reverse=True)),
        f"{c['runs_solved']} of {c['n_runs']} restarts",
        f"median e1 {M._fmt(c['e1_long']['median'])}), yet {c['runs_solved_long']} restarts",
        f"0/10 on both (median e1 {M._fmt(s['anbn/peephole_plain']['e1']['median'])}, "
        f"{M._fmt(s['anbncn/peephole_plain']['e1']['median'])})",
        f"({s['anbn/no_peephole']['runs_solved']} of 150 runs) and 0/10 "
        f"({s['anbncn/no_peephole']['runs_solved']} of 150)",
        f"**{res['wallclock_s']:.0f} s ({res['wallclock_s'] / 60:.1f} min) wall**",
    ]
    for w in want:
        assert w in text, w
