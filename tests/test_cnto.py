"""Tests for continual-embedded-reber/cnto.py: the continual noisy temporal order task."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from helpers import (
    ROOT,
    assert_same_record,
    compare_grads,
    gradcheck,
    load_experiment,
    load_script,
    process_group_members,
    run_script,
    script_env,
    sigint_default,
)

FOLDER = ROOT / "continual-embedded-reber"
cer = load_experiment(FOLDER)
cnto = load_script(FOLDER / "cnto.py")
SCRIPT = FOLDER / "cnto.py"


def test_net_size_and_init():
    cfg = cnto.PRESETS["modern"]
    p = cnto.init_params(cfg, np.random.default_rng(0), "forget")
    rows = cnto.N_IN + 6  # [x (8); y^c (6)]: 3 blocks x 2 cells
    assert p["W_c"].shape == (rows, 6) and p["W_in"].shape == (rows, 3)
    assert p["W_k"].shape == (rows, 8) and p["b_k"].shape == (8,)
    assert np.allclose(p["b_in"], [-0.5, -1.0, -1.5]) and np.allclose(p["b_phi"], [0.5, 1, 1.5])
    # cell inputs (unbiased) + 3 biased gates of 3 blocks + 8 biased outputs = 339
    assert cnto.n_weights(cfg, "forget") == rows * 6 + 3 * (rows * 3 + 3) + rows * 8 + 8 == 339
    assert cnto.n_weights(cfg, "no_forget") == cnto.n_weights(cfg, "forget") - rows * 3 - 3


@pytest.mark.parametrize("name,cfg", cnto.GRADCHECK_CASES, ids=[n for n, _c in
                                                               cnto.GRADCHECK_CASES])
def test_gradcheck_masked_end_loss(name, cfg):
    """Central differences of the masked end-of-sequence loss through the fused Kernel
    (float64) equal its BPTT gradient; a gradient with one entry off by 1e-4 fails."""
    rng = np.random.default_rng(7)
    params = cnto.init_params(cfg, rng, name)
    for k in params:  # off the init's symmetric biases
        params[k] = params[k] + rng.normal(0.0, 0.3, params[k].shape)
    batch = cnto.sample_batch(cfg, rng, name)
    assert (batch["cls"] >= 0).sum() >= 2 and np.isin(batch["x"], (6, 7)).any()
    ok, report = gradcheck(cnto, cfg, params, batch)
    assert ok, report
    _l, grads = cnto.loss_and_grads(params, batch, cfg)
    bad = {k: v.copy() for k, v in grads.items()}
    i = np.unravel_index(np.argmax(np.abs(bad["W_in"])), bad["W_in"].shape)
    bad["W_in"][i] *= 1 + 1e-4
    assert not compare_grads(bad, grads)[0]


def test_loss_ignores_non_end_steps():
    """Only the outputs at sequence ends enter the loss: dL/dnet_k is zero elsewhere, the
    loss is the BCE at the ends over their count, and inputs after the chunk's last end
    leave the loss and gradient unchanged."""
    rng = np.random.default_rng(3)
    cls = np.full((50, 2, 3), -1)
    cls[10, 0, 1], cls[40, 0, 1], cls[49, 1, 0] = 3, 5, 0
    logits = rng.normal(size=(50, 2, 3, 8))
    loss_v, dl, y, ends = cnto.end_loss(logits, cls)
    assert list(ends) == [2, 1]
    assert np.all(dl[cls < 0] == 0.0) and np.all(dl[cls >= 0] != 0.0)

    def bce(z, k):
        return float(np.sum(np.logaddexp(0, z) - np.eye(8)[k] * z))

    assert np.isclose(loss_v[0], (bce(logits[10, 0, 1], 3) + bce(logits[40, 0, 1], 5)) / 2)
    assert np.isclose(loss_v[1], bce(logits[49, 1, 0], 0))
    cfg = cnto.GRADCHECK_CASES[0][1]
    params = cnto.init_params(cfg, rng, "forget")
    batch = cnto.sample_batch(cfg, rng, "forget")
    last = np.flatnonzero((batch["cls"] >= 0).any(axis=1)).max()
    assert last < cfg.chunk - 2
    other = dict(batch, x=batch["x"].copy())
    other["x"][last + 1:] = rng.integers(0, 8, size=other["x"][last + 1:].shape)
    la, ga = cnto.loss_and_grads(params, batch, cfg)
    lb, gb = cnto.loss_and_grads(params, other, cfg)
    assert la == lb and all(np.allclose(ga[k], gb[k], rtol=0, atol=1e-15) for k in ga)


def test_reset_zeroes_the_state_at_every_e():
    """`reset`: the state is zeroed before each E, so the output at a sequence's end does not
    depend on the sequences before it; without reset it does."""
    cfg = dataclasses.replace(cnto.GRADCHECK_CASES[0][1], chunk=230)
    rng = np.random.default_rng(11)
    st = cnto.cnto_stream(rng, 2)
    x = st["x"][None, :].T  # (L, 1)
    other = x.copy()
    other[1:st["ends"][0]] = rng.integers(2, 6, size=(st["ends"][0] - 1, 1))  # 1st sequence
    outs = {}
    for variant in ("reset", "no_forget"):
        p = cnto.init_params(cfg, np.random.default_rng(1), variant)
        ker = cnto.new_kernel(cfg, variant, 1, x.shape[0], 1, np.float64)
        pk = cer.pack({k: v[None] for k, v in p.items()}, False, np.float64)
        z = np.zeros((1, 1, 6))
        a = ker.forward(pk, x[:, None], cnto.reset_keep(x[:, None], variant), z, z).copy()
        b = ker.forward(pk, other[:, None], cnto.reset_keep(other[:, None], variant), z, z)
        outs[variant] = np.abs(a[st["ends"][1]] - b[st["ends"][1]]).max()
    assert outs["reset"] == 0.0 and outs["no_forget"] > 1e-6


def test_streams_of_training_stop_tests_and_confirmation_differ():
    """Training, every stop test and the confirmation draw their streams from different rngs:
    no two of them share their first sequences, for any seed; a net's streams do not depend
    on its variant (same training data per seed)."""
    cfg = cnto.PRESETS["quick"]
    for seed in (0, 1, 2):
        train = cnto.TrainingStreams(cnto.data_rng(seed, "train"), cfg.batch).take(400)[0]
        tests = [cnto.make_test_streams(cfg, cnto.data_rng(seed, "stop_test", k))[0][:400]
                 for k in range(3)]
        conf = cnto.make_test_streams(cfg, cnto.data_rng(seed, "confirm"))[0][:400]
        cols = [train[:, b] for b in range(train.shape[1])]
        for arr in tests + [conf]:
            cols += [arr[:, s] for s in range(arr.shape[1])]
        flat = {c.tobytes() for c in cols}
        assert len(flat) == len(cols)  # every stream differs from every other
    other = cnto.TrainingStreams(cnto.data_rng(1, "train"), cfg.batch).take(400)[0]
    assert not np.array_equal(other, cnto.TrainingStreams(cnto.data_rng(0, "train"),
                                                          cfg.batch).take(400)[0])


def test_stop_test_uses_its_keyed_streams():
    """evaluate draws each net's streams from the rng it is given (so a stop test and the
    confirmation see the streams checked above): same rng -> same verdict per sequence."""
    cfg = cnto.PRESETS["quick"]
    p = cnto.init_params(cfg, np.random.default_rng(0), "forget")
    stacked = {k: np.stack([v, v]) for k, v in p.items()}
    rngs = [cnto.data_rng(0, "confirm"), cnto.data_rng(0, "confirm")]
    ev = cnto.evaluate(cfg, "forget", stacked, rngs, early_exit=False)
    assert np.array_equal(ev["correct"][0], ev["correct"][1])


def test_stacked_seeds_equal_single_seeds():
    """A net's record does not depend on which other seeds share its stack."""
    cfg = cnto.PRESETS["quick"]
    both = cnto.train_stack(cfg, "forget", [0, 1])
    alone = [cnto.train_stack(cfg, "forget", [s])[0] for s in (0, 1)]
    for a, b in zip(both, alone, strict=True):
        assert_same_record(a, b)
    assert not np.array_equal(both[0]["final_params"]["W_c"], both[1]["final_params"]["W_c"])


def test_a_net_stops_at_a_perfect_stop_test(monkeypatch):
    """A perfect stop test stops the net (solved, sequences_to_solve = its training
    sequences) while the other nets of its stack go on to the budget; both are confirmed."""
    cfg = cnto.PRESETS["quick"]
    real_eval, real_rng = cnto.evaluate, cnto.data_rng

    def keyed_rng(seed, role, k=0):  # stop tests get their key instead of a generator
        return (seed, role, k) if role == "stop_test" else real_rng(seed, role, k)

    def fake_eval(cfg_, variant, stacked, rngs, early_exit):
        if not early_exit:
            return real_eval(cfg_, variant, stacked, rngs, early_exit)
        return dict(perfect=np.array([key[0] == 1 for key in rngs]))  # seed 1 passes

    monkeypatch.setattr(cnto, "evaluate", fake_eval)
    monkeypatch.setattr(cnto, "data_rng", keyed_rng)
    rec = cnto.train_stack(cfg, "no_forget", [0, 1])
    assert not rec[0]["solved"] and rec[0]["training_sequences"] >= cfg.max_sequences
    assert rec[0]["sequences_to_solve"] is None and len(rec[0]["stop_tests"]) == 2
    assert rec[1]["solved"] and rec[1]["sequences_to_solve"] == rec[1]["training_sequences"]
    assert cfg.test_every <= rec[1]["sequences_to_solve"] < cfg.test_every + 40
    assert len(rec[1]["stop_tests"]) == 1 and "perfect" in rec[1]["confirm"]


@pytest.mark.parametrize("args", [
    ["--variants", "forget,decay"], ["--variants", "forget,forget"], ["--seeds", "3-1"],
    ["--seeds", "1,1"], ["--max-sequences", "0"], ["--jobs", "0"], ["--outdir", ""],
    ["--preset", "fast"], ["--stack", "-1"],
])
def test_cli_refusals(args, tmp_path):
    out = tmp_path / "out"
    args = ["--preset", "quick", "--quiet", "--outdir", str(out), *args] \
        if "--outdir" not in args else ["--preset", "quick", "--quiet", *args]
    res = run_script(SCRIPT, args, timeout=60)
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and err and "error:" in err[-1]
    assert not (out / "results.json").exists()


def test_ctrl_c_stops_a_parallel_run(tmp_path):
    """SIGINT to the process group of a --jobs 2 run: exit 130, one line, no results, no
    worker left."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--seeds", "0-3", "--jobs", "2",
                             "--stack", "2", "--outdir", str(out), "--quiet"], cwd=str(ROOT),
                            env=script_env(), start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    try:
        t0 = time.time()
        while len(process_group_members(proc.pid)) < 3 and time.time() - t0 < 20:
            time.sleep(0.1)
        time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and err.strip() == "interrupted: no results written", err
    time.sleep(0.3)
    assert not process_group_members(proc.pid)
    assert not (out / "results.json").exists() and not (out / "run.npz").exists()


def test_quick_preset_end_to_end(tmp_path):
    res = run_script(SCRIPT, ["--preset", "quick", "--seeds", "0-1", "--jobs", "2",
                              "--quiet", "--outdir", str(tmp_path)], timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == [f"wrote {tmp_path / 'results.json'}",
                                          f"wrote {tmp_path / 'run.npz'}"]
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["experiment"] == "continual-embedded-reber/cnto" and r["preset"] == "quick"
    assert r["command"][:2] == ["python", "continual-embedded-reber/cnto.py"]
    assert {"git_commit", "git_dirty"} <= set(r["env"])
    assert [(s["variant"], s["seed"]) for s in r["seeds"]] == [
        (v, s) for v in ("forget", "no_forget", "reset") for s in (0, 1)]
    for v, d in r["summary"].items():
        rs = [s for s in r["seeds"] if s["variant"] == v]
        assert d["n_runs"] == d["n_seeds"] == 2
        assert d["sequences_total"] == sum(s["training_sequences"] for s in rs)
        assert d["runs_confirmed"] == sum(s["confirm"]["perfect"] for s in rs)
        for k in ("sequences_to_solve", "training_sequences"):
            assert len(d[k]["values"]) == 2
    for s in r["seeds"]:
        assert s["training_sequences"] >= r["config"]["max_sequences"] or s["solved"]
        assert 0.0 <= s["confirm"]["correct_fraction"] <= 1.0 and s["cpu_time_s"] > 0
    with np.load(tmp_path / "run.npz") as z:
        assert "forget/seed0/W_phi" in z.files and "no_forget/seed1/W_c" in z.files


# --- the paper's online scheme -----------------------------------------------------------
def test_online_nets_are_independent_of_their_group():
    """An online net's record (and weights) does not depend on which nets share its group."""
    ocfg = cnto.QUICK_ONLINE
    nets = [("forget", 0), ("no_forget", 1), ("reset", 0)]
    together = cnto.train_online(ocfg, nets)
    for (v, s), rec in zip(nets, together, strict=True):
        alone = cnto.train_online(ocfg, [(v, s)])[0]
        assert (rec["variant"], rec["seed"]) == (v, s)
        assert_same_record(rec, alone)
    assert all(r["training_sequences"] >= ocfg.max_sequences or r["solved"] for r in together)


def test_online_updates_only_at_sequence_ends():
    """alpha is zero off the ends: a block without a sequence end changes the state but not
    the weights; the same block with ends changes the weights."""
    ocfg = dataclasses.replace(cnto.QUICK_ONLINE, coin_block=300)
    g = cnto.OnlineGroup(ocfg, [("forget", 0)])
    x = np.full((300, 1), 3)
    x[::50] = 6
    g.streams[0].take = lambda T: (x[:T], np.full((T, 1), -1))
    W0, Wk0 = g.net.W.copy(), g.net.Wk.copy()
    g.run_block()
    assert np.array_equal(g.net.W, W0) and np.array_equal(g.net.Wk, Wk0)
    assert np.abs(g.net.s).max() > 0 and g.sequences[0] == 0
    cls = np.full((300, 1), -1)
    cls[120, 0], cls[250, 0] = 5, 2
    g.streams[0].take = lambda T: (x[:T], cls[:T])
    g.run_block()
    assert not np.array_equal(g.net.Wk, Wk0) and g.sequences[0] == 2


def test_a_step_without_error_terms_skips_the_gradient_exactly():
    """alpha all zero (between sequence ends) skips the step's gradient: state and partials
    move bit for bit as when the gradient is computed (alpha None, weights kept), and the
    weights stay; one nonzero alpha computes it and moves that net only."""
    import copy

    g = cnto.OnlineGroup(cnto.QUICK_ONLINE, [("forget", 0), ("no_forget", 1), ("reset", 2)])
    rng = np.random.default_rng(4)
    for _ in range(40):  # a non-trivial state and partials first
        g.net.step(rng.integers(0, cnto.N_IN, 3), np.zeros((3, 8)), None)
    x, target = rng.integers(0, cnto.N_IN, 3), np.eye(8)[rng.integers(0, 8, 3)]
    skip, full = copy.deepcopy(g.net), copy.deepcopy(g.net)
    wrong_skip = skip.step(x, target, np.zeros(3))
    wrong_full = full.step(x, target, None)
    assert np.array_equal(wrong_skip, wrong_full)
    for k in ("s", "yc", "y", "P", "W", "Wk"):
        assert getattr(skip, k).tobytes() == getattr(full, k).tobytes(), k
    assert skip.W.tobytes() == g.net.W.tobytes() and skip.Wk.tobytes() == g.net.Wk.tobytes()
    assert skip.gWk.tobytes() == g.net.gWk.tobytes()  # skipped: not refreshed ...
    assert full.gWk.tobytes() != g.net.gWk.tobytes()  # ... computed: refreshed
    one = copy.deepcopy(g.net)
    one.step(x, target, np.array([0.0, 0.1, 0.0]))
    moved = [not np.array_equal(one.Wk[n], g.net.Wk[n]) for n in range(3)]
    assert moved == [False, True, False]
    assert one.P.tobytes() == full.P.tobytes()


def test_online_run_resumes_bit_identically(tmp_path):
    """A group saved between two blocks and resumed gives the records of an uninterrupted
    run (the paper preset's checkpoints)."""
    ocfg, nets = cnto.QUICK_ONLINE, [("forget", 0), ("reset", 1)]
    whole = cnto.train_online(ocfg, nets)
    g = cnto.OnlineGroup(ocfg, nets)
    g.run_block()
    assert g.ids.size == 2
    ck = tmp_path / "ck.pkl"
    cnto.save_group(g, ck)
    again = cnto.train_online(ocfg, nets, checkpoint=ck, every=0.0)
    for a, b in zip(whole, again, strict=True):
        assert_same_record(a, b)


def test_progress_report_of_checkpoints(tmp_path):
    """--progress prints what the checkpoints hold and trains nothing; a committed partial
    paper run's PARTIAL.md quotes that report."""
    ocfg, nets = cnto.QUICK_ONLINE, [("forget", 0), ("reset", 0), ("no_forget", 0)]
    g = cnto.OnlineGroup(ocfg, nets)
    g.run_block()
    g.recs[1]["solved"] = True  # as if `reset` had passed a test and stopped
    g.keep_only([0, 2])
    g.cpu_s = 12.3
    cnto.save_group(g, tmp_path / "cnto_checkpoint_1of1.pkl")
    before = sorted(p.name for p in tmp_path.iterdir())
    res = run_script(SCRIPT, ["--preset", "paper", "--progress", "--outdir", str(tmp_path)],
                     timeout=60)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    seq = g.sequences
    assert (f"- `cnto_checkpoint_1of1.pkl`: 3 nets, 2 still training (training sequences "
            f"{seq.min():,}–{seq.max():,}), 12 CPU-seconds so far") in res.stdout
    for line in ("- `forget`: 1; 0; 1", "- `reset`: 1; 1; 0", "- `no_forget`: 1; 0; 1"):
        assert line in res.stdout
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cnto_checkpoint_1of1.pkl").write_bytes(b"not a pickle")
    res = run_script(SCRIPT, ["--preset", "paper", "--progress", "--outdir", str(bad)],
                     timeout=60)
    assert res.returncode == 2 and res.stderr.startswith("error: cannot read")
    partial = FOLDER / "cnto" / "paper"
    if list(partial.glob("cnto_checkpoint_*.pkl")):
        assert cnto.progress_report(partial) in (partial / "PARTIAL.md").read_text()


def test_paper_preset_cli(tmp_path):
    res = run_script(SCRIPT, ["--preset", "paper", "--seeds", "0", "--max-sequences", "30",
                              "--jobs", "1", "--quiet", "--outdir", str(tmp_path)], timeout=120)
    assert res.returncode == 0, res.stderr
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["preset"] == "paper" and r["config"]["lr"] == 0.1
    assert [s["variant"] for s in r["seeds"]] == ["forget", "no_forget", "reset"]
    for s in r["seeds"]:
        assert s["training_sequences"] == 30 and s["training_streams"] >= 1
        assert s["throughput_net_symbols_per_cpu_s"] > 0 and "perfect" in s["confirm"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "run.npz"]
    # the paper-scheme table: every net hit the 30-sequence cap unsolved ...
    rows = cnto.paper_results_table(cnto.finalize_results(r)).splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| `forget`", "| `no_forget`", "| `reset`"]
    for row, s in zip(rows, r["seeds"], strict=True):
        cells = row.strip("| ").split(" | ")
        assert cells[1:4] == ["0/1, 0% [0–79]", "0/0", "–"] and cells[5] == "1 of 1"
        assert cells[4] == f"{30 / s['training_streams']:,.1f}"
    # ... and a net marked perfect after 7 streams leaves the cap's count, confirmed or not
    s = r["seeds"][0]
    s.update(solved=True, sequences_to_solve=30, training_streams=7)
    s["confirm"]["perfect"] = True
    row = cnto.paper_results_table(cnto.finalize_results(r)).splitlines()[2]
    assert row == "| `forget` | 1/1, 100% [21–100] (7) | 1/1 | 30 (30–30) | – | none |"


def test_committed_run_and_its_readme():
    """The committed modern run: seeds 0-9 of every variant, from a clean tree, and the
    README's table and prose are that run's."""
    res = cnto.finalize_results(json.loads((FOLDER / "cnto" / "results.json").read_text()))
    assert res["preset"] == "modern" and res["env"]["git_dirty"] is False
    assert {(r["variant"], r["seed"]) for r in res["seeds"]} == {
        (v, s) for v in cnto.VARIANTS for s in range(10)}
    text = (FOLDER / "cnto" / "README.md").read_text()
    table = text.split("<!-- cnto results -->\n")[1].split("\n<!-- /cnto results -->")[0]
    assert table == cnto.results_table(res)
    s = res["summary"]
    total = sum(d["sequences_total"] for d in s.values())
    cpu = sum(sum(d["cpu_time_s"]["values"]) for d in s.values())
    flat = " ".join(text.split())
    for want in (f"{total / 1e6:.1f}M training sequences in all",
                 f"for the {len(res['seeds'])} nets", f"{cpu:,.0f} CPU-seconds",
                 f"{res['wallclock_s']:,.0f} s of wall",
                 f"{s['forget']['runs_solved']} of 10 nets learn",
                 f"all {s['forget']['runs_confirmed']} are perfect again",
                 f"all {10 - s['no_forget']['runs_solved']} nets fail"):
        assert want in flat, want
    assert s["no_forget"]["confirm_correct_fraction"]["max"] == 0.0  # "no sequence end right"
    assert s["reset"]["runs_solved"] == 10  # "all 10 learn it"
    assert cnto.headline(res) == ("Table 3 (paper: only forget gates solve it), modern: " +
                                  ", ".join(f"{v} {d['runs_solved']}/10" for v, d in s.items())
                                  + " perfect (per net = per run)")


def test_paper_run_and_its_readme():
    """The committed paper-scheme run: finished (no checkpoints, no PARTIAL.md), seeds 0-9
    of every variant from a clean tree, the preset's config; its README's table is
    paper_results_table of its results.json and the prose quotes that run's numbers."""
    sub = FOLDER / "cnto" / "paper"
    res = cnto.finalize_results(json.loads((sub / "results.json").read_text()))
    assert res["preset"] == "paper" and res["env"]["git_dirty"] is False
    assert res["config"] == json.loads(json.dumps(dataclasses.asdict(cnto.PRESETS["paper"])))
    assert not list(sub.glob("cnto_checkpoint_*.pkl")) and not (sub / "PARTIAL.md").exists()
    assert {(r["variant"], r["seed"]) for r in res["seeds"]} == {
        (v, s) for v in cnto.VARIANTS for s in range(10)}
    text = (sub / "README.md").read_text()
    assert (f"<!-- cnto paper table -->\n{cnto.paper_results_table(res)}\n"
            "<!-- /cnto paper table -->") in text
    assert " ".join(res["command"][1:]) in text
    s, recs = res["summary"], res["seeds"]
    total = sum(d["sequences_total"] for d in s.values())
    cpu = sum(sum(d["cpu_time_s"]["values"]) for d in s.values())
    arrays = np.load(sub / "run.npz")
    shift = {v: [cnto.hidden_weight_shift(res, arrays, v, k) for k in range(10)]
             for v in cnto.VARIANTS}
    nf = s["no_forget"]["confirm_correct_fraction"]
    forget = [r for r in recs if r["variant"] == "forget"]
    # "every one of its 1,000,000 training sequences wrong": one stream per sequence (+ the
    # open last one), and no confirmation sequence right
    assert all(r["training_streams"] == r["training_sequences"] + 1 == 1_000_001
               for r in forget)
    assert s["forget"]["confirm_correct_fraction"]["max"] == 0.0
    throughput = sorted({r["throughput_net_symbols_per_cpu_s"] for r in recs}, reverse=True)
    flat = " ".join(text.split())
    for want in (
            f"{total / 1e6:.1f}M training sequences for the {len(recs)} nets",
            f"{cpu:,.0f} CPU-seconds",
            f"at most {max(shift['forget']):.3f} per net",
            f"{min(shift['no_forget']):.1f}–{max(shift['no_forget']):.1f} for the `no_forget`",
            f"{min(shift['reset']):.1f}–{max(shift['reset']):.1f} for the `reset`",
            f"{100 * nf['median']:.1f}% of the sequences right (median; "
            f"{100 * nf['min']:.1f}–{100 * nf['max']:.1f}%)",
            f"{s['reset']['runs_solved']}/10** ({s['reset']['runs_confirmed']} of them",
            f"after {cnto.cer._fmt(s['reset']['sequences_to_solve']['median'])} training",
            f"The other {len(cnto.capped_nets(res, 'reset'))} reached the 1M cap",
            " and ".join(f"{x:,.0f}" for x in throughput) + " net-symbols per CPU-second"):
        assert want in flat, want
    modern_res = json.loads((FOLDER / "cnto" / "results.json").read_text())
    modern = modern_res["summary"]
    assert ("which gives " + ", ".join(f"`{v}` {d['runs_solved']}/{d['n_runs']}"
                                       for v, d in modern.items())) in flat
    # the CNTO README's side-by-side table and its sentence on the forget row
    folder_text = (FOLDER / "cnto" / "README.md").read_text()
    assert (f"<!-- cnto comparison -->\n{cnto.comparison_table(res, modern_res)}\n"
            "<!-- /cnto comparison -->") in folder_text
    assert (f"our forget nets do not learn it ({s['forget']['runs_solved']}/10)" in
            " ".join(folder_text.split()))
    assert f"Under the modern scheme they do ({modern['forget']['runs_solved']}/10)" in \
        folder_text


def test_visualize_cnto(tmp_path):
    """The figure script draws the committed run into another folder and refuses a folder
    without a CNTO run in one line (exit 2, nothing written)."""
    import shutil

    shutil.copy(FOLDER / "cnto" / "results.json", tmp_path / "results.json")
    r = run_script(FOLDER / "visualize_cnto.py", ["--rundir", str(tmp_path)], timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    png = tmp_path / "viz" / "training_curves.png"
    assert png.stat().st_size > 10_000 and f"wrote {png}" in r.stdout
    vis = load_script(FOLDER / "visualize_cnto.py")
    assert "modern scheme" in vis.figure_title(json.loads((tmp_path / "results.json").read_text()))
    assert "the paper's scheme" in vis.figure_title({"preset": "paper"})
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_script(FOLDER / "visualize_cnto.py", ["--rundir", str(empty)], timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    assert not (empty / "viz").exists()
    (empty / "results.json").write_text(json.dumps({"experiment": "other", "seeds": [1]}))
    r = run_script(FOLDER / "visualize_cnto.py", ["--rundir", str(empty)], timeout=60)
    assert r.returncode == 2 and "not a run of cnto.py" in r.stderr


def test_unused_seeds_rerun_and_its_readme():
    """The rerun on seeds 10-19: the headline's command and settings, other seeds, a clean
    tree; its README table and figures are the run's."""
    sub = FOLDER / "side_runs" / "cnto_unused_seeds"
    res = cnto.finalize_results(json.loads((sub / "results.json").read_text()))
    head = json.loads((FOLDER / "cnto" / "results.json").read_text())
    assert res["config"] == head["config"] and res["env"]["git_dirty"] is False
    assert sorted({r["seed"] for r in res["seeds"]}) == list(range(10, 20))
    text = (sub / "README.md").read_text()
    table = text.split("<!-- cnto results -->\n")[1].split("\n<!-- /cnto results -->")[0]
    assert table == cnto.results_table(res)
    s = res["summary"]
    missed = sorted(r["confirm"]["correct_fraction"] for r in res["seeds"]
                    if r["variant"] == "forget" and r["solved"] and not r["confirm"]["perfect"])
    total = sum(d["sequences_total"] for d in s.values())
    cpu = sum(sum(d["cpu_time_s"]["values"]) for d in s.values())
    flat = " ".join(text.split())
    words = ("no", "one", "two", "three", "four", "five")
    for want in (f"The {words[len(missed)]} `forget` nets", f"{100 * missed[0]:.1f}% and "
                 f"{100 * missed[1]:.1f}%", f"{total / 1e6:.1f}M training sequences",
                 f"{cpu:,.0f} CPU-seconds", f"{res['wallclock_s']:,.0f} s of wall"):
        assert want in flat, want
    assert s["no_forget"]["confirm_correct_fraction"]["max"] == 0.0
    cnto_readme = " ".join((FOLDER / "cnto" / "README.md").read_text().split())
    assert (f"gives `forget` {s['forget']['runs_solved']}/10 ({s['forget']['runs_confirmed']} "
            f"confirmed), `no_forget` {s['no_forget']['runs_solved']}/10 and `reset` "
            f"{s['reset']['runs_solved']}/10 ({s['reset']['runs_confirmed']} confirmed)"
            ) in cnto_readme


def test_folder_headline_adds_the_committed_table3_runs_only_beside_committed_runs():
    """The folder's catalog cell (committed runs) ends with the committed CNTO runs, paper's
    scheme first; a fresh run rendered alone (run_all's summary) gets no Table 3 part."""
    res = json.loads((FOLDER / "results.json").read_text())
    paper = json.loads((FOLDER / "paper" / "results.json").read_text())
    parts = []
    for sub, label in (("cnto/paper", "paper's scheme"), ("cnto", "modern")):
        s = json.loads((FOLDER / sub / "results.json").read_text())["summary"]
        parts.append(f"{label}: " + ", ".join(f"{v} {d['runs_solved']}/{d['n_runs']}"
                                              for v, d in s.items()))
    table3 = "; Table 3 (noisy temporal order, paper: only forget gates solve it), " + \
        "; ".join(parts)
    alone = cer.headline(res, None)
    assert "Table 3" not in alone and alone.startswith("perfect on 10 x 100k symbols: ")
    assert cer.headline(res, {}) == alone + table3
    beside = cer.headline(res, {"paper": paper})
    assert beside.endswith(table3) and "paper's scheme (per net = per run): " in beside
