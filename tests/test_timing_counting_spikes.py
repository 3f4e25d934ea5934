"""Folder tests for timing-counting-spikes: tasks, the 17-weight net, the evaluator, CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import ROOT, load_experiment, run_script

FOLDER = ROOT / "timing-counting-spikes"
M = load_experiment(FOLDER)
SCRIPT = FOLDER / "timing_counting_spikes.py"


def _cfg(task, **kw):
    return dataclasses.replace(M.Config(tasks=(task,), variants=M.VARIANTS, restarts=1), **kw)


def _roll(task, n):
    """Generate n steps of one stream: inputs, targets, scored mask."""
    t = M.parse_task(task)
    st = M.new_streams(t, 1, 1)
    rng = np.random.default_rng(0)
    xs, ds, sc = [], [], []
    for _ in range(n):
        x, d, s = M.stream_step(t, st, M.wave_table(t), rng.choice(np.array(t.delays or (0,)),
                                                                 size=(1, 1)))
        xs.append(x[0, 0]), ds.append(d[0, 0]), sc.append(s[0, 0])
    return np.array(xs), np.array(ds), np.array(sc)


# ---------------------------------------------------------------------------------------
# Task generators
# ---------------------------------------------------------------------------------------
def test_msd_spike_times_and_targets():
    x, d, sc = _roll("msd_F10_I012", 2000)
    T = np.flatnonzero(x)
    assert T[0] == 0                                   # the stream opens with a spike
    gaps = np.diff(T)
    assert set(gaps) <= {10, 11, 12} and len(set(gaps)) == 3   # T(n) = T(n-1) + F + I(n)
    assert not sc[0] and np.array_equal(np.flatnonzero(sc), T[1:])  # scored at spikes only
    assert np.array_equal(d[T[1:]], gaps - 10)         # target I(n) = gap - F


def test_gts_targets():
    x, d, sc = _roll("gts_F25", 200)
    assert np.array_equal(np.flatnonzero(x), [0])      # a single start cue
    assert np.array_equal(np.flatnonzero(d), [25, 50, 75, 100, 125, 150, 175])
    assert sc.all()


@pytest.mark.parametrize("wave", ["cos", "tri", "rect"])
def test_pfg_wave_shapes(wave):
    x, d, sc = _roll(f"pfg_{wave}_F10", 30)
    assert not x.any() and sc.all()
    assert np.allclose(d[:10], d[10:20]) and d.min() == 0.0 and d.max() == 1.0
    if wave == "cos":
        assert np.allclose(d[:10], 0.5 * (1 - np.cos(2 * np.pi * np.arange(10) / 10)))
    if wave == "tri":
        assert np.allclose(d[:6], [0, 0.2, 0.4, 0.6, 0.8, 1.0]) and np.allclose(d[6], 0.8)
    if wave == "rect":
        assert np.array_equal(d[:10], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])


@pytest.mark.parametrize("name,msg", [("gts_F0", "period"), ("gts_F-3", "period"),
                                      ("msd_F10_I", "empty delay set"),
                                      ("pfg_saw_F10", "unknown task"), ("foo", "unknown task")])
def test_parse_task_rejects(name, msg):
    with pytest.raises(ValueError, match=msg):
        M.parse_task(name)


# ---------------------------------------------------------------------------------------
# The net
# ---------------------------------------------------------------------------------------
def test_weight_counts():
    # 4 units (cell input, in, forget, out) x (input, recurrent y^c, bias) + 3 peepholes
    # + output unit (weight, bias) = 12 + 3 + 2
    assert M.n_weights("peephole") == 17
    assert M.n_weights("no_peephole") == 14
    assert M.n_weights("no_forget") == 13
    p = M.init_params(_cfg("gts_F10"), np.random.default_rng(0))
    m = M.param_masks(M.net_layout(_cfg("gts_F10")))
    assert [int(sum((p[k] != 0)[j].sum() for k in p)) for j in range(3)] == [17, 14, 13]
    assert [int(sum(m[k][j].sum() for k in m)) for j in range(3)] == [17, 14, 13]


def _one_step_outputs(params, s_prev):
    """Drive one PFG step from a given s_{t-1}; return the step's cache."""
    cfg = _cfg("pfg_cos_F10", restarts=1, variants=("peephole",))
    st = M.new_streams(M.parse_task("pfg_cos_F10"), 1, 1)
    st["s"] = np.array([[s_prev]])
    batch = M.make_batch(dataclasses.replace(cfg, terminate=False), M.parse_task("pfg_cos_F10"),
                         np.array([0]), st, np.random.default_rng(0), 1)
    return M.forward(params, batch, dataclasses.replace(cfg, terminate=False))[1]


def test_peephole_wiring():
    """p_in and p_forget read s_{t-1}; p_out reads s_t (perturbation of the state)."""
    rng = np.random.default_rng(3)
    p = {"W": rng.normal(size=(1, 4, 3)), "P": rng.normal(size=(1, 3)),
         "V": rng.normal(size=(1, 2))}
    c = _one_step_outputs(p, 0.7)
    sig = M.sigmoid
    W, P = p["W"][0], p["P"][0]
    ycp = 0.0                                           # fresh stream: y^c_{t-1} = 0
    assert np.isclose(c["i"][0, 0, 0], sig(W[1, 1] * ycp + W[1, 2] + P[0] * 0.7))
    assert np.isclose(c["f"][0, 0, 0], sig(W[2, 2] + P[1] * 0.7))
    s = c["s"][0, 0, 0]
    assert np.isclose(s, c["f"][0, 0, 0] * 0.7 + c["i"][0, 0, 0] * W[0, 2])
    assert np.isclose(c["o"][0, 0, 0], sig(W[3, 2] + P[2] * s))
    # perturbing a peephole changes exactly the gate it feeds
    for j, gate in enumerate(("i", "f", "o")):
        q = {k: v.copy() for k, v in p.items()}
        q["P"][0, j] += 0.5
        c2 = _one_step_outputs(q, 0.7)
        for other in ("i", "f", "o"):
            moved = not np.isclose(c2[other][0, 0, 0], c[other][0, 0, 0])
            assert moved == (other == gate) or (gate != "o" and other == "o"), (gate, other)


def test_no_peephole_and_no_forget_masks():
    rng = np.random.default_rng(4)
    cfg = _cfg("pfg_cos_F10")
    p = M.init_params(cfg, rng)
    p["P"][:] = 5.0                                     # would matter if wired
    st = M.new_streams(M.parse_task("pfg_cos_F10"), 3, 1)
    ecfg = dataclasses.replace(cfg, terminate=False)
    batch = M.make_batch(ecfg, M.parse_task("pfg_cos_F10"), M.net_layout(cfg), st, rng, 30)
    c = M.forward(p, batch, ecfg)[1]
    assert np.all(c["f"][:, 2] == 1.0)                  # no_forget: f = 1, ...
    ds = np.diff(c["s"][:, 2, 0])
    assert np.allclose(ds, (c["i"] * c["g"])[1:, 2, 0])  # ... the cell only accumulates
    _, g = M.loss_and_grads(p, batch, ecfg)
    assert np.all(g["P"][1] == 0) and g["P"][2, 1] == 0 and np.all(g["W"][2, M.FG] == 0)


# ---------------------------------------------------------------------------------------
# The evaluator can say yes and no
# ---------------------------------------------------------------------------------------
def counter_net(F: int) -> dict:
    """Hand-set 17 weights that spike every F steps: s counts 1..F, the forget gate closes
    when s_{t-1} > F - 1/2 (peephole), the output gate opens only at s = 1 (peephole) and is
    shut by the start cue."""
    W = np.zeros((4, 3))
    W[M.C, 2] = 1.0                                     # g = 1
    W[M.IN, 2] = 20.0                                   # input gate open
    W[M.FG, 2] = 20.0 * (F - 0.5)                       # forget gate: sigma(20 (F-1/2-s))
    W[M.OUT, 0], W[M.OUT, 2] = -40.0, 30.0              # output gate: sigma(30 - 20 s - 40 x)
    P = np.array([0.0, -20.0, -20.0])
    V = np.array([20.0, -10.0])                         # y = sigma(20 y^c - 10)
    return {"W": W[None], "P": P[None], "V": V[None]}


@pytest.mark.parametrize("F", [10, 50])
def test_evaluator_accepts_hand_set_counter(F):
    task = M.parse_task(f"gts_F{F}")
    cfg = _cfg(task.name, variants=("peephole",))
    r = M.run_stream(counter_net(F), np.array([0]), cfg, task, 1000, np.random.default_rng(0))
    assert r["steps"] >= 1000 * F and r["max_err"][0] < 0.1 and r["first_err"][0] == -1


def test_evaluator_rejects_constant_net():
    task = M.parse_task("gts_F10")
    cfg = _cfg(task.name, variants=("peephole",))
    p = {"W": np.zeros((1, 4, 3)), "P": np.zeros((1, 3)), "V": np.array([[0.0, -3.0]])}
    r = M.run_stream(p, np.array([0]), cfg, task, 1000, np.random.default_rng(0))
    assert r["max_err"][0] > 0.9 and r["first_err"][0] == 10


def test_trivial_errors():
    assert M.trivial_error(M.parse_task("gts_F10")) == 0.5
    assert M.trivial_error(M.parse_task("msd_F10_I012")) == 1.0
    assert np.isclose(M.trivial_error(M.parse_task("pfg_tri_F25")), 0.5, atol=0.02)


# ---------------------------------------------------------------------------------------
# CLI: folder-specific bad inputs
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("tasks", ["gts_F0", "msd_F10_I", "nope_F10", ""])
def test_cli_bad_tasks(tasks, tmp_path):
    out = tmp_path / "out"
    r = run_script(SCRIPT, ["--preset", "quick", "--tasks", tasks, "--outdir", str(out),
                            "--quiet"], timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error:" in ln]) == 1
    assert not out.exists()


def test_truncated_gradient_option():
    """The paper's truncation cuts the error paths through peepholes and y^c_{t-1}: with those
    weights zero the cut paths carry nothing and it equals the full gradient; otherwise not."""
    cfg = dataclasses.replace(M.GRADCHECK_CASES[0][1], variants=("peephole",))
    rng = np.random.default_rng(5)
    p = M.init_params(cfg, rng)
    batch = M.sample_batch(cfg, rng)
    tcfg = dataclasses.replace(cfg, truncated=True)
    q = {k: v.copy() for k, v in p.items()}
    q["P"][:] = 0.0
    q["W"][:, :, 1] = 0.0
    full, trunc = M.loss_and_grads(q, batch, cfg)[1], M.loss_and_grads(q, batch, tcfg)[1]
    assert all(np.allclose(full[k], trunc[k], rtol=1e-12, atol=1e-15) for k in full)
    p["P"][:] = 0.5
    full, trunc = M.loss_and_grads(p, batch, cfg)[1], M.loss_and_grads(p, batch, tcfg)[1]
    assert not all(np.allclose(full[k], trunc[k]) for k in full)


# ---------------------------------------------------------------------------------------
# Init: the state-scaled random part (Config.state_ref)
# ---------------------------------------------------------------------------------------
def test_state_ref_scales_only_state_reading_weights():
    """state_ref scales the random part of the weights that read s or y^c by min(1, ref/F):
    nothing changes at F <= ref; at F = 50 exactly those weights shrink by 10/50."""
    def init(task, ref):
        cfg = dataclasses.replace(_cfg(task), restarts=3, state_ref=ref)
        return M.init_params(cfg, np.random.default_rng(7), M.parse_task(task))
    for k in ("W", "P", "V"):                                   # F = 10: bitwise unchanged
        assert np.array_equal(init("gts_F10", 10.0)[k], init("gts_F10", 0.0)[k])
    a, b = init("gts_F50", 0.0), init("gts_F50", 10.0)
    pp = M.net_layout(dataclasses.replace(_cfg("gts_F50"), restarts=3)) == 0   # peephole nets
    assert np.allclose(b["V"][:, 0], 0.2 * a["V"][:, 0]) and np.array_equal(b["V"][:, 1],
                                                                           a["V"][:, 1])
    assert np.array_equal(b["W"][:, :, [0, 2]], a["W"][:, :, [0, 2]])   # input, biases kept
    rec_a, rec_b = a["W"][pp][:, [0, 1, 3], 1], b["W"][pp][:, [0, 1, 3], 1]
    assert np.allclose(rec_b, 0.2 * rec_a)                      # recurrent y^c weights
    # peepholes: prior parts (forget slope -20, output slope +-5) kept, random parts x 0.2
    r_out = (a["P"][pp][:, 2] - b["P"][pp][:, 2]) / 0.8         # a = r + ko, b = 0.2 r + ko
    assert np.allclose(np.abs(a["P"][pp][:, 2] - r_out), 5.0)
    assert np.allclose(b["P"][pp][:, 0], 0.2 * a["P"][pp][:, 0])
    assert np.allclose(b["P"][pp][:, 1] + 20.0, 0.2 * (a["P"][pp][:, 1] + 20.0))
