"""Folder tests for timing-counting-spikes: tasks, the 17-weight net, the evaluator, CLI."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys

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
    cfg = _cfg("pfg_cos_F10", inits=("counter",))
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
    r = M.run_stream(counter_net(F), np.array([0]), cfg, task, 1000, [np.random.default_rng(0)])
    assert r["steps"] >= 1000 * F and r["max_err"][0] < 0.1 and r["first_err"][0] == -1


def test_evaluator_rejects_constant_net():
    task = M.parse_task("gts_F10")
    cfg = _cfg(task.name, variants=("peephole",))
    p = {"W": np.zeros((1, 4, 3)), "P": np.zeros((1, 3)), "V": np.array([[0.0, -3.0]])}
    r = M.run_stream(p, np.array([0]), cfg, task, 1000, [np.random.default_rng(0)])
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
        cfg = dataclasses.replace(_cfg(task), restarts=3, state_ref=ref, inits=("counter",))
        return M.init_params(cfg, np.random.default_rng(7), M.parse_task(task))
    for k in ("W", "P", "V"):                                   # F = 10: bitwise unchanged
        assert np.array_equal(init("gts_F10", 10.0)[k], init("gts_F10", 0.0)[k])
    a, b = init("gts_F50", 0.0), init("gts_F50", 10.0)
    pp = M.net_layout(dataclasses.replace(_cfg("gts_F50"), restarts=3,
                                          inits=("counter",))) == 0   # peephole nets
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


# ---------------------------------------------------------------------------------------
# Random stream restarts (restart_life): a restart is one step's event, not a latch
# ---------------------------------------------------------------------------------------
def _random_restart_keep(task, life, L, n_streams, seed=0):
    cfg = dataclasses.replace(_cfg(task, variants=("peephole",), inits=("counter",)),
                              terminate=False, restart_life=life, streams=n_streams)
    t = M.parse_task(task)
    rng = np.random.default_rng(seed)
    st = M.new_streams(t, 1, n_streams)
    batch = M.make_batch(cfg, t, np.array([0]), st, rng, L)
    return M.forward(M.init_params(cfg, rng, t), batch, cfg)[1]["keep"]


def test_random_restarts_have_the_documented_mean_life():
    """restart_life = 2 periods of F = 5: a restart at each step with p = 1/10, so the mean
    stream life is 10 steps (the latch bug restarted every step after the first)."""
    keep = _random_restart_keep("pfg_cos_F5", 2.0, 4000, 50)
    frac = 1.0 - keep.mean()                         # restarted steps / all steps
    assert abs(frac - 0.1) < 0.01, frac
    assert keep[-100:].mean() > 0.8                  # streams keep living to the end


def test_gradcheck_cases_restart():
    """The stream-restarts gradient-check cases restart a few times within their chunk and
    continue in between (both sides of the keep-mask cut are checked)."""
    for name, cfg in M.GRADCHECK_CASES:
        batch = M.sample_batch(cfg, np.random.default_rng(1234))
        keep = M.forward(M.init_params(cfg, np.random.default_rng(1)), batch, cfg)[1]["keep"]
        n_restarts = (keep == 0).sum()
        if name.endswith("no-restarts"):
            assert n_restarts == 0, name
        else:
            assert 0.1 < (keep == 0).mean() < 0.5, (name, (keep == 0).mean())
            assert ((keep == 0).sum(axis=0) >= 1).mean() > 0.8, name   # most streams restart


# ---------------------------------------------------------------------------------------
# The paper's initialisation rows
# ---------------------------------------------------------------------------------------
def test_paper_init_rows():
    cfg = dataclasses.replace(_cfg("gts_F10"), restarts=4)
    both = M.init_params(cfg, np.random.default_rng(2), M.parse_task("gts_F10"))
    only = M.init_params(dataclasses.replace(cfg, inits=("counter",)), np.random.default_rng(2),
                         M.parse_task("gts_F10"))
    rows = M.rows_of(cfg)
    assert [M.row_name(v, i) for v, i in rows][3:] == [
        "peephole_paper_init", "no_peephole_paper_init", "no_forget_paper_init"]
    n = 3 * 4                                          # counter rows come first, unchanged
    for k in both:
        assert np.array_equal(both[k][:n], only[k])
    W, P, V = both["W"][n:], both["P"][n:], both["V"][n:]
    assert np.abs(P).max() <= 0.1 and np.abs(V).max() <= 0.1
    assert np.abs(W[:, :, :2]).max() <= 0.1 and np.abs(W[:, M.C, 2]).max() <= 0.1
    assert np.abs(W[:, M.IN, 2]).max() <= 0.1                       # input gate bias 0
    assert np.abs(W[:4, M.FG, 2] + 2.0).max() <= 0.1                # forget gate bias -2
    assert np.abs(W[:, M.OUT, 2] - 2.0).max() <= 0.1                # output gate bias +2
    assert np.all(W[8:, M.FG] == 0) and np.all(P[8:, 1] == 0)       # no_forget: none
    assert M.split_row("no_forget_paper_init") == ("no_forget", "paper")
    assert M.split_row("no_forget") == ("no_forget", "counter")


# ---------------------------------------------------------------------------------------
# Selection never sees the test; every restart is tested
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["msd_F4_I01", "gts_F4", "pfg_cos_F4"])
def test_selection_stream_differs_from_test_and_every_run_is_tested(task, monkeypatch):
    calls = []
    real = M.run_stream

    def spy(params, var_ids, cfg, t, n_spikes, rngs, s0=None, block=2000, **kw):
        calls.append(dict(n=n_spikes, s0=None if s0 is None else np.array(s0),
                          rngs=[copy.deepcopy(r) for r in rngs], block=block))
        return real(params, var_ids, cfg, t, n_spikes, rngs, s0=s0, block=block, **kw)
    monkeypatch.setattr(M, "run_stream", spy)
    cfg = dataclasses.replace(M.PRESETS["quick"], tasks=(task,))
    recs = M.train_setting(cfg, task, [0, 1])
    sel, test = calls
    assert sel["n"] == cfg.select_spikes and test["n"] == cfg.test_spikes
    assert test["s0"] is None                                   # the test: zero state
    assert sel["s0"] is not None and np.all(sel["s0"] != 0)     # selection: not
    t = M.parse_task(task)
    delays = np.array(t.delays or (0,))
    for j in range(2):
        ds = sel["rngs"][j].choice(delays, size=(sel["block"], 1, 1))
        dt = test["rngs"][j].choice(delays, size=(test["block"], 1, 1))
        if t.kind == "msd":                                     # other spike times/targets
            assert not np.array_equal(ds, dt)
        for other in range(2):                                  # no seed's test either
            if t.kind == "msd" and other != j:
                assert not np.array_equal(
                    ds, test["rngs"][other].choice(delays, size=(test["block"], 1, 1)))
    for r in recs:
        assert r["n_runs"] == cfg.restarts == len(r["runs_test_max_abs_error"])
        assert r["test_max_abs_error"] == r["runs_test_max_abs_error"][r["restart_chosen"]]
        assert r["runs_solved"] == sum(e < t.threshold for e in r["runs_test_max_abs_error"])
        assert r["runs_diverged_at_update"] == [None] * cfg.restarts
        assert r["sequences_total"] >= r["training_streams"]


def test_a_diverged_run_stops_and_fails_while_the_others_train_on(monkeypatch, capfd):
    """One restart whose loss goes non-finite stops with a one-line warning and counts as a
    failed run; the batch trains on, and every other row's records equal a clean run's
    (without the population step, whose noise draws a seed's rows share)."""
    task = "msd_F4_I01"
    cfg = dataclasses.replace(M.PRESETS["quick"], tasks=(task,), pbt_every=0)
    clean = M.train_setting(cfg, task, [0])
    real = M.init_params

    def poisoned(tcfg, rng, t):
        p = real(tcfg, rng, t)
        p["W"][0] = np.nan                          # row 0, restart 0 diverges at update 1
        return p
    monkeypatch.setattr(M, "init_params", poisoned)
    recs = M.train_setting(cfg, task, [0])
    err = capfd.readouterr().err
    row0 = M.row_name(*M.rows_of(cfg)[0])
    assert err.count("non-finite loss") == 1
    assert f"{task} seed 0 {row0} restart 0: non-finite loss at update 1" in err
    bad = recs[0]
    assert bad["variant"] == row0 and bad["runs_diverged_at_update"][0] == 1
    assert bad["runs_diverged_at_update"][1:] == [None] * (cfg.restarts - 1)
    assert bad["runs_test_max_abs_error"][0] is None and bad["restart_chosen"] != 0
    assert bad["runs_solved"] <= cfg.restarts - 1
    assert M.summarize(recs)[f"{task}/{row0}"]["runs_diverged"] == 1
    drop = ("artifacts", "train_wall_s", "eval_wall_s", "train_cpu_time_per_net_s",
            "throughput_steps_per_s")
    for a, b in zip(recs[1:], clean[1:], strict=True):
        assert {k: v for k, v in a.items() if k not in drop} == \
            {k: v for k, v in b.items() if k not in drop}
        for name in a["artifacts"]["params"]:
            assert np.array_equal(a["artifacts"]["params"][name], b["artifacts"]["params"][name])
    # with the population step on, the diverged run is never copied into another
    pbt = M.train_setting(dataclasses.replace(cfg, pbt_every=200), task, [0])
    assert [e is None for r in pbt for e in r["runs_test_max_abs_error"]] == \
        [True] + [False] * (len(pbt) * cfg.restarts - 1)
    assert all(np.isfinite(v).all() for r in pbt for v in r["artifacts"]["params"].values())


def test_run_stream_result_independent_of_other_nets():
    """A net's test score depends on its weights and its seed's stream only."""
    task = M.parse_task("msd_F10_I01")
    a = {"W": counter_net(10)["W"], "P": counter_net(10)["P"], "V": counter_net(10)["V"]}
    rng = np.random.default_rng(9)
    b = {k: np.concatenate([v, v + rng.normal(0, 0.3, size=v.shape)]) for k, v in a.items()}
    cfg = _cfg(task.name, variants=("peephole",))
    one = M.run_stream(a, np.array([0]), cfg, task, 200, [np.random.default_rng(4)])
    two = M.run_stream(b, np.array([0, 0]), cfg, task, 200, [np.random.default_rng(4)])
    four = M.run_stream({k: np.concatenate([v, v]) for k, v in b.items()},
                        np.zeros(4, dtype=int), cfg, task, 200,
                        [np.random.default_rng(4), np.random.default_rng(5)])
    for k in ("max_err", "first_err", "mse", "steps"):
        assert one[k][0] == two[k][0] == four[k][0], k
    assert one["steps"][0] >= 200 * 10                             # 200 scored spikes


# ---------------------------------------------------------------------------------------
# CLI: seeds, outdir, help
# ---------------------------------------------------------------------------------------
def test_parse_seeds():
    assert M.parse_seeds("3") == [3]
    assert M.parse_seeds("0-2") == [0, 1, 2]
    assert M.parse_seeds("5,0,2") == [0, 2, 5]
    for bad in ("1,1", "2-1", "-1", "", "a"):
        with pytest.raises(ValueError):
            M.parse_seeds(bad)


@pytest.mark.parametrize("args", [["--outdir", ""], ["--seeds", "1,1"],
                                  ["--inits", "nope"], ["--gradient", "half"]])
def test_cli_bad_folder_args(args, tmp_path):
    r = run_script(SCRIPT, ["--preset", "quick", "--quiet", *args], timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error:" in ln]) == 1
    assert not list(tmp_path.iterdir())


def test_help_defaults():
    text = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, timeout=60).stdout
    assert "(default: None)" not in text
    assert text.count("(default:") >= 12
    assert M.build_parser().get_default("outdir") == str(ROOT / "runs" / FOLDER.name)


def test_committed_run_records_rows_and_runs():
    """The committed headline run: both inits' rows for every setting, per-run counts."""
    res = json.loads((FOLDER / "results.json").read_text())
    if res.get("preset") != "modern":
        pytest.skip("committed run predates the modern preset")
    sm = res["summary"]
    for task in M.PAPER_TASKS:
        for v in M.task_variants(M.PRESETS["modern"], M.parse_task(task)):
            for init in M.INITS:
                s = sm[f"{task}/{M.row_name(v, init)}"]
                assert s["n_runs"] == 12 * s["n_seeds"] and s["n_seeds"] == 10
                assert 0 <= s["runs_solved"] <= s["n_runs"]



def _loss_with_cut_paths(params, batch, cfg, frozen):
    """The loss with the paths the paper's truncation cuts removed by hand: every gate and
    the cell input read the peepholes' s and the recurrent y^c from a frozen copy of the
    trajectory (constants), only the CEC (s_t = f s_{t-1} + i g) and y^c_t -> output stay
    live. Its gradient at the frozen point is the truncated gradient."""
    task = M.parse_task(batch["task"])
    m = M.param_masks(batch["var_ids"])
    W, P, V = params["W"] * m["W"], params["P"] * m["P"], params["V"]
    nf = (batch["var_ids"] == 2)[:, None]
    wx, wc, wb = (W[:, :, j].T[:, :, None] for j in range(3))
    pi, pf, po = (P[:, j][:, None] for j in range(3))
    L = frozen["x"].shape[0]
    s = frozen["sp"][0]
    total = 0.0
    for t in range(L):
        x, ycp_c, sp_c, s_c = frozen["x"][t], frozen["ycp"][t], frozen["sp"][t], frozen["s"][t]
        a = wx * x + wc * ycp_c + wb
        i = M.sigmoid(a[M.IN] + pi * sp_c)
        f = np.where(nf, 1.0, M.sigmoid(a[M.FG] + pf * sp_c))
        s = f * s + i * a[M.C]                               # the CEC: live
        o = M.sigmoid(a[M.OUT] + po * s_c)
        z = V[:, 0][:, None] * (o * s) + V[:, 1][:, None]
        y = z if task.linear else M.sigmoid(z)
        d = frozen["y"][t] - frozen["e"][t]
        e = np.where(frozen["w"][t] > 0, y - d, 0.0)
        total += float(np.sum(frozen["w"][t] * e * e))
    return total / (L * frozen["x"].shape[2])


@pytest.mark.parametrize("task", ["pfg_cos_F4", "gts_F3", "msd_F3_I012"])
def test_truncated_gradient_is_the_gradient_with_cut_paths_removed(task):
    cfg = dataclasses.replace(dict(M.GRADCHECK_CASES)[f"{task}/no-restarts"], truncated=True)
    rng = np.random.default_rng(11)
    p = M.init_params(cfg, rng)
    p["P"] += rng.uniform(-0.5, 0.5, size=p["P"].shape) * M.param_masks(M.net_layout(cfg))["P"]
    batch = M.sample_batch(cfg, rng)
    _, cache, _ = M.forward(p, batch, cfg)
    frozen = {k: cache[k].copy() for k in M.CACHE_KEYS}
    assert np.all(frozen["keep"] == 1)
    _, g = M.loss_and_grads(p, batch, cfg)
    h = 1e-6
    for name in p:
        for idx in np.ndindex(p[name].shape):
            q = {k: v.copy() for k, v in p.items()}
            q[name][idx] += h
            up = _loss_with_cut_paths(q, batch, cfg, frozen)
            q[name][idx] -= 2 * h
            down = _loss_with_cut_paths(q, batch, cfg, frozen)
            num = (up - down) / (2 * h)
            assert abs(g[name][idx] - num) <= 1e-6 * max(abs(num), abs(g[name][idx])) + 1e-9, \
                (name, idx, g[name][idx], num)
    full = M.loss_and_grads(p, batch, dataclasses.replace(cfg, truncated=False))[1]
    assert not all(np.allclose(full[k], g[k]) for k in g)      # the cut paths mattered


def test_stacked_settings_equal_separate_runs():
    """Settings of one kind and period share a kernel call; each (seed, setting) block trains
    exactly as it does alone."""
    cfg = M.PRESETS["quick"]
    group = ("msd_F4_I01", "msd_F4_I012")
    assert M.stack_groups(("gts_F4",) + group + ("pfg_cos_F4",)) == [("gts_F4",), group,
                                                                      ("pfg_cos_F4",)]
    stacked = M.train_group(cfg, group, [0, 1])
    alone = [r for t in group for r in M.train_setting(cfg, t, [0, 1])]
    key = lambda r: (r["task"], r["variant"], r["seed"])           # noqa: E731
    alone = {key(r): r for r in alone}
    assert len(stacked) == len(alone)
    for r in stacked:
        b = alone[key(r)]
        assert r["test_max_abs_error"] == b["test_max_abs_error"]
        assert r["runs_test_max_abs_error"] == b["runs_test_max_abs_error"]
        assert r["curve_loss"] == b["curve_loss"]
        for n in ("W", "P", "V"):
            assert np.array_equal(r["artifacts"]["params"][n], b["artifacts"]["params"][n])


def test_readme_prose_numbers_match_the_committed_run():
    """The seeds/runs counts quoted in the README prose are the committed run's."""
    res = json.loads((FOLDER / "results.json").read_text())
    if res.get("preset") != "modern":
        pytest.skip("committed run predates the modern preset")
    sm, text = res["summary"], " ".join((FOLDER / "README.md").read_text().split())

    def cell(key):
        s = sm[key]
        return f"{s['solved']}/{s['n_seeds']} seeds ({s['runs_solved']}/{s['n_runs']} runs)"
    for label, key in (("MSD F = 10 {0,1}", "msd_F10_I01/peephole"),
                       ("**49 vs 50 steps**", "msd_F49_I01/peephole"),
                       ("GTS F = 10", "gts_F10/peephole"),
                       ("f_cos F = 10", "pfg_cos_F10/peephole")):
        assert f"{label} {cell(key)}" in text, label
    pi = [s for k, s in sm.items() if k.endswith("_paper_init")]
    assert f"{sum(s['runs_solved'] for s in pi)} of {sum(s['n_runs'] for s in pi)} runs" in text
    assert f"`wallclock_s` = {res['wallclock_s']:.0f} s" in text
    for key, label in (("msd_F10_I012", "MSD {0,1,2} drops from"), ("gts_F10", "GTS F = 10 (")):
        s = sm[f"{key}/no_peephole"]
        assert label in text and f"{s['solved']}/10" in text


def test_fig4_driver_runs_one_run_per_seed_and_plots_gaps(tmp_path, monkeypatch):
    from helpers import load_script
    fig4 = load_script(FOLDER / "side_runs" / "nmsd_fig4" / "fig4.py")
    cfg = fig4.config(10)
    assert (cfg.tasks, cfg.variants, cfg.restarts, cfg.pbt_every, cfg.inits) == (
        ("nmsd_F10_I01",), ("peephole", "no_peephole"), 1, 0, ("counter",))
    full = fig4.config
    monkeypatch.setattr(fig4, "config", lambda F: dataclasses.replace(
        full(F), train_steps=400, steps_per_F=0, test_spikes=20))
    e = fig4.run_F(10, [0, 1])
    for v in fig4.VARIANTS:
        x = e["variants"][v]
        assert x["seeds"] == [0, 1] and all(n > 0 for n in x["training_streams"])
        assert all(st or not ok for ok, st in zip(x["solved"], x["stopped"], strict=True))
    none = copy.deepcopy(e)
    for x in none["variants"].values():
        x["solved"] = [False, False]
    fig4.plot({"F": {"10": e, "20": none}}, tmp_path / "fig4.png")       # a gap at F = 20
    assert (tmp_path / "fig4.png").stat().st_size > 10_000


def test_readme_quotes_the_committed_fig4_run():
    res = json.loads((FOLDER / "side_runs" / "nmsd_fig4" / "fig4.json").read_text())
    assert sorted(int(f) for f in res["F"]) == [10, 20, 30, 40, 50] and res["git"][1] is False
    solved = {v: sum(sum(e["variants"][v]["solved"]) for e in res["F"].values())
              for v in ("peephole", "no_peephole")}
    n = sum(len(e["variants"]["peephole"]["seeds"]) for e in res["F"].values())
    text = " ".join((FOLDER / "README.md").read_text().split())
    side = " ".join((FOLDER / "side_runs" / "nmsd_fig4" / "README.md").read_text().split())
    assert f"{solved['no_peephole']} against {solved['peephole']} of {n} runs solved" in text
    assert (f"solves {solved['peephole']} of {n} runs and the forget-gate-only net "
            f"{solved['no_peephole']} of {n}") in side


def test_readme_quotes_the_headline_wall_time_and_throughput():
    res = json.loads((FOLDER / "results.json").read_text())
    t = [r["throughput_steps_per_s"] / 1e6 for r in res["seeds"]]
    w = res["wallclock_s"]
    text = " ".join((FOLDER / "README.md").read_text().split())
    assert (f"`wallclock_s` = {w:.0f} s ({w / 60:.1f} min) on 2 cores, {min(t):.1f}–{max(t):.1f}M "
            "net-steps/s per process") in text


def test_unused_seeds_side_run_matches_its_run():
    """The headline command on seeds 10-19: its README table and the folder README's
    sentence are that run's numbers, beside the headline's."""
    side = FOLDER / "side_runs" / "unused_seeds"
    u = json.loads((side / "results.json").read_text())
    h = json.loads((FOLDER / "results.json").read_text())
    assert u["command"][2:] == ["--jobs", "2", "--seeds", "10-19", "--quiet", "--outdir",
                                "timing-counting-spikes/side_runs/unused_seeds"]
    assert not u["env"]["git_dirty"] and sorted({r["seed"] for r in u["seeds"]}) == \
        list(range(10, 20))
    us, hs = u["summary"], h["summary"]
    text = (side / "README.md").read_text()

    def cell(s):
        return f"{s['solved']}/{s['n_seeds']} ({s['runs_solved']}/{s['n_runs']})"
    for k in hs:
        task, v = k.split("/")
        if not v.endswith("_paper_init"):
            assert (f"| {task} | {v} | {cell(hs[k])} | {cell(us[k])} | "
                    f"{us[k]['runs_diverged']} |") in text, k
    pe = [k for k in hs if k.endswith("/peephole")]
    learned = sum(us[k]["solved"] > 0 for k in pe)
    seeds, runs = sum(us[k]["solved"] for k in pe), sum(us[k]["runs_solved"] for k in pe)
    h_seeds, h_runs = sum(hs[k]["solved"] for k in pe), sum(hs[k]["runs_solved"] for k in pe)
    flat = " ".join(text.split())
    assert f"learns {learned} of the 12 settings in at least one seed" in flat
    assert (f"{seeds} seeds and {runs} runs solved, against {h_seeds} and {h_runs} on seeds "
            "0–9") in flat
    div = [(r["seed"], i, d) for r in u["seeds"] for i, d in
           enumerate(r["runs_diverged_at_update"]) if d]
    assert [(s, i) for s, i, _d in div] == [(11, 4), (11, 10)]
    assert f"at updates {div[0][2]:,} and {div[1][2]:,}" in flat
    assert f"{u['wallclock_s']:,.0f} s of wall time" in flat
    readme = " ".join((FOLDER / "README.md").read_text().split())
    assert (f"learns {learned} of the 12 settings** ({seeds} seeds, {runs} runs; seeds 0–9: "
            f"{h_seeds}, {h_runs})") in readme


def test_checkpointed_units_resume_to_the_uninterrupted_records(tmp_path, monkeypatch):
    """--checkpoint-units: a run stopped after its first unit keeps that unit; started
    again it trains only the others, and its records are those of an uninterrupted run.
    A saved unit of another configuration is refused."""
    cfg = dataclasses.replace(M.PRESETS["quick"], tasks=("gts_F4", "pfg_cos_F4"),
                              restarts=1, train_steps=300, test_spikes=20)
    units = M._work_units(cfg, [0], 1)
    assert len(units) == 2
    whole = M.run_units(cfg, units, 1, True)
    store = M.UnitStore(tmp_path / "units", cfg)
    real, calls = M._run_unit, []

    def stop_at_second(c, tasks, seeds, quiet):
        calls.append(tasks)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(c, tasks, seeds, quiet)
    monkeypatch.setattr(M, "_run_unit", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        M.run_units(cfg, units, 1, True, store)
    assert [p.name for p in (tmp_path / "units").iterdir()] == [store.path(*units[0]).name]
    calls.clear()
    again = M.run_units(cfg, units, 1, True, store)
    assert calls == [units[1][0]]                       # the saved unit is not retrained
    drop = ("artifacts", "train_wall_s", "eval_wall_s", "train_cpu_time_per_net_s",
            "throughput_steps_per_s")
    assert len(again) == len(whole)
    for a, b in zip(again, whole, strict=True):
        assert {k: v for k, v in a.items() if k not in drop} == \
            {k: v for k, v in b.items() if k not in drop}
        for n in ("W", "P", "V"):
            assert np.array_equal(a["artifacts"]["params"][n], b["artifacts"]["params"][n])
    assert store.loaded_commits == {store.path(*units[0]).name: None}  # saved without one
    other = M.UnitStore(tmp_path / "units", dataclasses.replace(cfg, lr=0.5))
    with pytest.raises(ValueError, match="belongs to another run"):
        other.load(*units[0])


def test_checkpoint_units_cli(tmp_path):
    """The flag's run writes its results and removes its units; a foreign unit file in
    OUTDIR/units stops the run with one line (exit 2) and nothing written."""
    args = ["--tasks", "gts_F4", "--train-steps", "40", "--restarts", "1", "--seeds", "0",
            "--jobs", "1", "--quiet", "--checkpoint-units"]
    r = run_script(SCRIPT, [*args, "--outdir", str(tmp_path / "a")], timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["results.json", "run.npz"]
    assert json.loads((tmp_path / "a" / "results.json").read_text())["units_resumed"] == {}
    # a saved unit is loaded, not trained: results from it, with the commit that saved it
    parser = M.build_parser()
    cfg, seeds, _ = M.config_from_args(parser.parse_args(
        [*args, "--outdir", str(tmp_path / "c")]), parser)
    units = M._work_units(cfg, seeds, 1)
    saved = M.UnitStore(tmp_path / "c" / "units", cfg, "abc123")
    saved.save(*units[0], M.run_units(cfg, units, 1, True))
    r = run_script(SCRIPT, [*args, "--outdir", str(tmp_path / "c")], timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "c" / "results.json").read_text())
    assert res["units_resumed"] == {saved.path(*units[0]).name: "abc123"}
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    for ra, rc in zip(a["seeds"], res["seeds"], strict=True):
        assert ra["test_max_abs_error"] == rc["test_max_abs_error"]
        assert ra["curve_loss"] == rc["curve_loss"]
    assert not (tmp_path / "c" / "units").exists()
    bad = tmp_path / "b" / "units"
    bad.mkdir(parents=True)
    (bad / "gts_F4_seeds_0.pkl").write_bytes(b"not a pickle")
    r = run_script(SCRIPT, [*args, "--outdir", str(tmp_path / "b")], timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: cannot read the saved unit")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["units"]


def test_committed_partial_paper_run_resumes():
    """A paper-procedure run committed unfinished (`paper/units/` and PARTIAL.md, no
    results): every saved unit is one of the documented command's units and loads under
    the paper preset's config, so the same command resumes it; PARTIAL.md lists them."""
    sub = FOLDER / "paper"
    if not (sub / "units").is_dir():
        pytest.skip("no unfinished paper-procedure run is committed")
    assert not (sub / "results.json").exists()
    cfg = M.PRESETS["paper"]
    units = M._work_units(cfg, list(range(10)), 2)
    store = M.UnitStore(sub / "units", cfg)
    names = {store.path(*u).name: u for u in units}
    saved = sorted(p.name for p in (sub / "units").iterdir())
    assert saved and set(saved) <= set(names)
    text = (sub / "PARTIAL.md").read_text()
    assert "not a result" in text
    for name in saved:
        recs = store.load(*names[name])
        assert len(recs) == len(names[name][1]) * sum(
            len(M.task_variants(cfg, M.parse_task(t))) for t in names[name][0])
        assert f"`{name}`" in text
    for name in set(names) - set(saved):
        assert f"`{name}`" not in text
