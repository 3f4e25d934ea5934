"""blues-improvisation: task, partition, alignment, audio round trip, bad inputs."""

from __future__ import annotations

import wave
from dataclasses import replace

import numpy as np
import pytest
from helpers import ROOT, load_experiment, run_script

FOLDER = ROOT / "blues-improvisation"
m = load_experiment(FOLDER)


def corpus_stream(cfg, n_choruses, offset=0):
    """The true piano roll of n_choruses consecutive training choruses."""
    rolls = m.make_corpus(cfg)["train"]
    idx = (np.arange(n_choruses) + offset) % len(rolls)
    return rolls[idx].reshape(-1, rolls.shape[-1]).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Task: progression, voicings, melody generator
# ---------------------------------------------------------------------------------------
def test_progression_and_voicings():
    roll = m.chord_roll()
    assert roll.shape == (96, 12)
    assert np.all(roll.sum(axis=1) == 4), "every step holds a 4-note voicing"
    names = {(0, 4, 7, 10): "C7", (0, 3, 5, 9): "F7", (2, 5, 7, 11): "G7"}
    bars = []
    for bar in range(12):
        block = roll[bar * 8:(bar + 1) * 8]
        assert np.all(block == block[0]), "a chord is held for its whole bar"
        bars.append(names[tuple(np.flatnonzero(block[0]))])
    assert bars == ["C7"] * 4 + ["F7"] * 2 + ["C7"] * 2 + ["G7", "F7", "C7", "G7"]
    # dominant sevenths: root, major third, fifth, minor seventh (as pitch classes)
    for name, root in (("C7", 0), ("F7", 5), ("G7", 7)):
        assert set(m.VOICINGS[name]) == {(root + i) % 12 for i in (0, 4, 7, 10)}


def test_melody_generator():
    cfg = replace(m.PRESETS["modern"], experiment="melody")
    corpus = m.make_corpus(cfg)
    assert corpus["train"].shape == (cfg.n_train_choruses, 96, 25)
    assert corpus["heldout"].shape == (cfg.n_heldout_choruses, 96, 25)
    for part in corpus.values():
        mel = part[..., 12:]
        assert np.all(mel.sum(axis=-1) == 1), "exactly one melody note per step"
        notes = mel.argmax(-1)
        assert np.all(np.isin(notes, m.BLUES_SCALE)), "notes from the blues scale"
        assert np.all(part[..., :12] == m.chord_roll()), "all over the same progression"
        # the first note of every bar is a tone of the bar's chord
        for bar, name in enumerate(m.PROGRESSION):
            first = notes[:, bar * 8]
            assert np.all(np.isin(first, m.chord_tones_melody(name)))
    # deterministic corpus, different choruses, held-out melodies differ from training ones
    again = m.make_corpus(cfg)
    assert np.array_equal(again["train"], corpus["train"])
    tr = {c.tobytes() for c in corpus["train"]}
    assert len(tr) == cfg.n_train_choruses
    assert not any(c.tobytes() in tr for c in corpus["heldout"])


def test_stream_chunks_follow_the_progression():
    cfg = replace(m.PRESETS["quick"], experiment="melody", batch=4, chunk=50)
    rng = np.random.default_rng(0)
    corpus = m.make_corpus(cfg)
    streams = m.new_streams(cfg, rng, len(corpus["train"]))
    a = m.stream_chunk(streams, corpus["train"], cfg.chunk)
    b = m.stream_chunk(streams, corpus["train"], cfg.chunk)
    assert np.array_equal(a[-1], b[0]), "consecutive chunks overlap by one frame"
    whole = np.concatenate([a, b[1:]])
    t = np.arange(len(whole))
    assert np.all(whole[:, :, :12] == m.chord_roll()[t % 96][:, None, :])


# ---------------------------------------------------------------------------------------
# Model: the partition, weight counts, sequential == batched
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["lstm", "rnn"])
def test_no_melody_to_chord_path(model):
    cfg = replace(m.PRESETS["quick"], experiment="melody", model=model, batch=5, chunk=40)
    rng = np.random.default_rng(3)
    params = m.init_params(cfg, rng)
    params = {k: v + rng.normal(0, 0.5, v.shape) for k, v in params.items()}
    batch = m.sample_batch(cfg, rng)
    lay = m.layout(cfg)
    # melody inputs replaced by noise, and melody-part start state changed
    other = dict(batch)
    x = batch["x"].copy()
    x[..., 12:] = rng.normal(0, 3, x[..., 12:].shape)
    other["x"] = x
    nhc = lay["n_hidden_chord"]
    other["state0"] = tuple(np.concatenate([s[:, :nhc], rng.normal(0, 1, s[:, nhc:].shape)],
                                           axis=1) for s in batch["state0"])
    a = m.forward(params, batch, cfg)
    b = m.forward(params, other, cfg)
    assert np.array_equal(a["logits"][..., :12], b["logits"][..., :12]), "chords changed"
    assert not np.allclose(a["logits"][..., 12:], b["logits"][..., 12:])
    # the weights are absent, not merely zero: the chord part's matrices have no
    # rows for melody inputs or melody units
    assert params["W_chord"].shape[0] == 12 + nhc + 1
    assert params["V_chord"].shape[0] == nhc + 1


def test_weight_counts_similar():
    for exp in ("chords", "melody"):
        n_l = m.count_weights(replace(m.PRESETS["modern"], experiment=exp, model="lstm"))
        n_r = m.count_weights(replace(m.PRESETS["modern"], experiment=exp, model="rnn"))
        assert abs(n_r - n_l) / n_l < 0.1, (exp, n_l, n_r)


def test_gates_shared_inside_a_block():
    cfg = replace(m.PRESETS["modern"], experiment="melody", model="lstm")
    lay = m.layout(cfg)
    nb, cpb, nh = lay["n_blocks"], lay["cells_per_block"], lay["n_hidden"]
    assert nh == nb * cpb and lay["n_cols"] == nh + 3 * nb
    rep = m.gate_to_cell(lay)
    assert np.array_equal(rep[:nh].reshape(nb, cpb), np.repeat(np.arange(nb)[:, None], cpb, 1))


@pytest.mark.parametrize("model", ["lstm", "rnn"])
def test_free_run_teacher_forced_equals_batched_forward(model):
    """The step-by-step generator computes exactly what the batched forward does."""
    cfg = replace(m.PRESETS["quick"], experiment="melody", model=model)
    rng = np.random.default_rng(5)
    params = {k: v + rng.normal(0, 0.3, v.shape)
              for k, v in m.init_params(cfg, rng).items()}
    seed_roll = m.make_corpus(cfg)["heldout"][0]
    _, probs = m.free_run(params, cfg, seed_roll, 1, np.random.default_rng(0))
    x = seed_roll[:, None, :]
    state0 = tuple(s[0] for s in m.zero_state(cfg, 1, 1))
    cache = m.forward(params, {"x": x, "y": x, "state0": state0}, cfg)
    np.testing.assert_allclose(probs[:95], m.sigmoid(cache["logits"][:95, 0]), rtol=1e-10,
                               atol=1e-12)


# ---------------------------------------------------------------------------------------
# Evaluation: alignment to the predicted step (the earlier version was off by one)
# ---------------------------------------------------------------------------------------
def test_chord_metric_alignment_pinned():
    cfg = replace(m.PRESETS["quick"], experiment="melody")
    frames = corpus_stream(cfg, 5)
    assert np.all(m.chord_correctness(frames, 96) == 1.0)
    late = np.roll(frames, 1, axis=0)  # every frame one step late: bar changes misplaced
    # 7 of the 12 bars start with a chord change (bars 1, 5, 7, 9, 10, 11, 12)
    assert np.all(m.chord_correctness(late, 96) == 5 / 12)
    early = np.roll(frames, -1, axis=0)
    assert np.all(m.chord_correctness(early[:-96], 96) == 5 / 12)
    broken = frames.copy()
    broken[96 * 3 + 8 * 4 + 7, :12] = m.chord_roll()[0]  # bar 5 of chorus 3, last step
    assert list(m.chord_correctness(broken, 96)) == [1, 1, 11 / 12, 1]


def test_free_run_alignment_with_oracle():
    """A net that outputs the true next frame scores perfectly: output y[f] is frame f+1."""
    cfg = replace(m.PRESETS["quick"], experiment="chords")
    frames = corpus_stream(cfg, 3)
    _, probs = m.free_run(m.init_params(cfg, np.random.default_rng(0)), cfg, frames[:96], 2,
                          np.random.default_rng(0))
    assert probs.shape[0] == len(frames) - 1  # y[f] is produced at input frame f


def test_melody_metrics_on_corpus():
    cfg = replace(m.PRESETS["modern"], experiment="melody")
    corpus = m.make_corpus(cfg)
    bars = m.corpus_bars(corpus["train"])
    tr = corpus["train"].reshape(-1, 25).astype(np.uint8)
    r = m.melody_metrics(tr, 0, bars)
    assert r["novelty"] == 0.0 and r["scale_tone_rate"] == 1.0
    assert 0.4 < r["chord_tone_rate"] < 1.0
    assert 2.0 < r["notes_per_bar"] < 6.0
    # one bar replaced by a pattern not in the corpus -> novelty 1/n_bars
    gen = tr[: 96 * 2].copy()
    gen[96:104, 12:] = 0
    gen[96:104, 12 + 1] = 1  # C# held for a bar: off the scale, not a training bar
    r2 = m.melody_metrics(gen, 96, bars)
    assert r2["novelty"] == pytest.approx(1 / 12)
    assert r2["scale_tone_rate"] == pytest.approx(88 / 96)


def test_melody_sampling():
    y = np.array([0.1, 0.7, 0.2])
    assert m.melody_choice(y, 0.0, 0.5) == 1  # argmax
    us = np.random.default_rng(0).random(20000)
    picks = np.bincount([m.melody_choice(y, 1.0, u) for u in us], minlength=3) / len(us)
    np.testing.assert_allclose(picks, y / y.sum(), atol=0.015)
    cold = np.bincount([m.melody_choice(y, 3.0, u) for u in us], minlength=3) / len(us)
    p = y ** 3 / np.sum(y ** 3)  # T = 1/3
    np.testing.assert_allclose(cold, p, atol=0.015)


# ---------------------------------------------------------------------------------------
# Audio: MIDI and WAV round trip
# ---------------------------------------------------------------------------------------
def test_midi_and_wav_round_trip(tmp_path):
    import mido

    cfg = replace(m.PRESETS["quick"], experiment="melody")
    frames = corpus_stream(cfg, 2)
    mid_path, wav_path = tmp_path / "a.mid", tmp_path / "a.wav"
    m.write_midi(frames, mid_path)
    m.write_wav(frames, wav_path)
    mid = mido.MidiFile(str(mid_path))
    assert len(mid.tracks) == 2
    tempos = [msg.tempo for tr in mid.tracks for msg in tr if msg.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(m.TEMPO_BPM)]
    ons = {0: 0, 1: 0}
    for tr in mid.tracks:
        for msg in tr:
            if msg.type == "note_on" and msg.velocity > 0:
                ons[msg.channel] += 1
    # note count = runs of consecutive 1s per unit in the piano roll
    chord_runs = m.note_runs(frames[:, :12], m.CHORD_MIDI0)
    mel_runs = m.note_runs(frames[:, 12:], m.MELODY_MIDI0)
    assert ons[0] == len(chord_runs) and ons[1] == len(mel_runs)
    # independent count: steps where a unit switches on (or is on at the first step)
    on = frames.astype(int)
    starts = np.sum(np.diff(np.vstack([np.zeros((1, 25), int), on]), axis=0) == 1, axis=0)
    assert ons[0] == starts[:12].sum() and ons[1] == starts[12:].sum()
    # length in bars from ticks, and seconds from the tempo
    ticks = max(sum(msg.time for msg in tr) for tr in mid.tracks)
    assert ticks / (m.TICKS_PER_BEAT * 4) == len(frames) / 8 == 24
    assert mid.length == pytest.approx(len(frames) * 0.25)
    # replayed note-ons reconstruct the melody roll exactly
    roll = np.zeros((len(frames), 13), dtype=np.uint8)
    now = 0
    open_at = {}
    for msg in mid.tracks[1]:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_at[msg.note] = now
        elif msg.type in ("note_off", "note_on"):
            a = open_at.pop(msg.note)
            roll[a // m.TICKS_PER_STEP:now // m.TICKS_PER_STEP, msg.note - 60] = 1
    assert np.array_equal(roll, frames[:, 12:])
    with wave.open(str(wav_path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        assert w.getnframes() / w.getframerate() == pytest.approx(len(frames) * 0.25)


# ---------------------------------------------------------------------------------------
# Folder-specific bad inputs
# ---------------------------------------------------------------------------------------
BAD = [
    ("zero choruses", ["--choruses", "0"]),
    ("negative choruses", ["--choruses", "-3"]),
    ("zero temperature", ["--temperature", "0"]),
    ("negative temperature", ["--temperature", "-1"]),
    ("unknown experiment", ["--experiment", "jazz"]),
    ("unknown model", ["--model", "gru"]),
    ("zero attempts", ["--attempts", "0"]),
    ("negative bar weight", ["--bar-weight", "-2"]),
]


@pytest.mark.parametrize("label,args", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs(label, args, tmp_path):
    out = tmp_path / "out"
    r = run_script(FOLDER / "blues_improvisation.py",
                   ["--preset", "quick", "--outdir", str(out), "--quiet", *args], timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error:" in ln]) == 1
    assert not out.exists()


def test_temperature_zero_allowed_with_argmax(tmp_path):
    cfg = replace(m.PRESETS["quick"], temperature=0.0, argmax=True, updates=2)
    m.validate_config(cfg)  # no error
    with pytest.raises(ValueError):
        m.validate_config(replace(cfg, argmax=False))
    with pytest.raises(ValueError):
        m.validate_config(replace(cfg, experiment="jazz"))
    with pytest.raises(ValueError):
        m.validate_config(replace(cfg, free_choruses=0))


def test_stacked_nets_equal_single_nets():
    """K nets stepped together on a leading axis compute what each computes alone."""
    cfg = replace(m.PRESETS["quick"], experiment="melody", model="lstm", peepholes=True)
    rng = np.random.default_rng(9)
    plist = [m.init_params(cfg, rng) for _ in range(3)]
    blist = [m.sample_batch(cfg, rng) for _ in range(3)]
    P = m.stack(plist)
    batch = {"x": np.stack([b["x"] for b in blist], axis=1),
             "y": np.stack([b["y"] for b in blist], axis=1),
             "state0": tuple(np.stack([b["state0"][i] for b in blist]) for i in range(2))}
    cache = m.forward_k(P, batch, cfg)
    grads = m.backward_k(P, batch, cfg, cache)
    losses = m.bce_k(cache["logits"], batch["y"])
    for k in range(3):
        value, g = m.loss_and_grads(plist[k], blist[k], cfg)
        assert losses[k] == pytest.approx(value, rel=1e-12)
        for name in g:
            np.testing.assert_allclose(grads[name][k], g[name], rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------------------------------
# Training procedure: bar-start loss weights, restarts selected on validation
# ---------------------------------------------------------------------------------------
def test_bar_weights_follow_the_chorus_position():
    cfg = replace(m.PRESETS["quick"], experiment="chords", bar_weight=6.0, batch=3, chunk=30)
    batch = m.sample_batch(cfg, np.random.default_rng(1))
    x, y, w = batch["x"], batch["y"], batch["w"]
    assert w.shape == y.shape[:2] and set(np.unique(w)) <= {1.0, 6.0}
    # a chord change (target differs from input) only ever happens at a weighted step
    change = np.any(x[:, :, :12] != y[:, :, :12], axis=2)
    assert change.any() and np.all(w[change] == 6.0)
    # every 8th step is weighted, the weight does not look at the target's value
    for b in range(cfg.batch):
        idx = np.flatnonzero(w[:, b] == 6.0)
        assert np.all(np.diff(idx) == 8)
    plain = {k: v for k, v in batch.items() if k != "w"}
    p = m.init_params(cfg, np.random.default_rng(2))
    ones = dict(plain, w=np.ones_like(w))
    assert m.loss(p, ones, cfg) == pytest.approx(m.loss(p, plain, cfg), rel=1e-12)


def test_attempt_streams_are_fresh_and_never_the_free_run_streams():
    kids = np.random.SeedSequence(5).spawn(4)
    free, val = (np.random.default_rng(k).random(8) for k in kids[2:])
    draws = []
    for a in range(3):
        init, data = m.attempt_rngs(5, a)
        draws += [init.random(8), data.random(8)]
    base = [np.random.default_rng(k).random(8) for k in kids[:2]]
    assert np.array_equal(draws[0], base[0]) and np.array_equal(draws[1], base[1])
    allv = draws + [free, val]
    assert len({d.tobytes() for d in allv}) == len(allv), "every stream is distinct"


def _restart_cfg():
    # a net this small never validates in 40 updates, so every attempt runs to the end
    return replace(m.PRESETS["quick"], experiment="chords", model="lstm", free_choruses=2)


def test_restart_really_reinitialises_and_counts_every_update(monkeypatch):
    cfg = _restart_cfg()
    two = m.train_seeds(replace(cfg, attempts=2), [3])[0]
    assert two["attempts_used"] == 2 and two["updates"] == 2 * cfg.updates
    assert two["stream_steps_seen"] == 2 * cfg.updates * cfg.batch * cfg.chunk
    att = np.array(two["curves"]["attempt"])
    assert list(att) == [0] * 2 + [1] * 2  # two evaluations per attempt
    assert two["curves"]["update"] == [20, 40, 60, 80]
    # attempt 1 must be exactly a fresh run drawn from attempt 1's streams: same weights,
    # zero Adam moments and step count, fresh data streams, zero state, full lr schedule
    orig = m.attempt_rngs
    monkeypatch.setattr(m, "attempt_rngs", lambda s, a: orig(s, 1))
    fresh = m.train_seeds(cfg, [3])[0]
    for key in ("train_loss", "heldout_loss"):
        assert list(np.array(two["curves"][key])[att == 1]) == fresh["curves"][key]


def _spy_free_runs(monkeypatch):
    calls = []
    orig = m.free_run_k

    def spy(P, c, seed_roll, n, uniforms, **kw):
        out = orig(P, c, seed_roll, n, uniforms, **kw)
        calls.append({"seed_roll": np.array(seed_roll), "n": n, "uniforms": np.array(uniforms),
                      "frames": out[0], "phase": kw.get("phase", 0)})
        return out

    monkeypatch.setattr(m, "free_run_k", spy)
    return calls


def test_validation_never_sees_the_evaluation_data(monkeypatch):
    cfg = replace(_restart_cfg(), experiment="melody", attempts=2, free_choruses=3)
    calls = _spy_free_runs(monkeypatch)
    m.train_seeds(cfg, [4])
    corpus = m.make_corpus(cfg)
    val = [c for c in calls if c["n"] == cfg.val_choruses]
    ev = [c for c in calls if c["n"] == cfg.free_choruses and np.array_equal(
        c["seed_roll"], corpus["heldout"][0])]
    assert len(val) == 4 and len(ev) == 1
    train_frames = {f.tobytes() for f in corpus["train"].reshape(-1, 25)}
    for c in val:
        assert np.array_equal(c["seed_roll"], m.validation_seed_roll(cfg, corpus))
        assert all(f.tobytes() in train_frames for f in c["seed_roll"]), "training frames"
        assert not any(np.array_equal(c["seed_roll"], h) for h in corpus["heldout"])
        n = min(c["uniforms"].shape[1], ev[0]["uniforms"].shape[1])
        assert not np.any(c["uniforms"][:, :n] == ev[0]["uniforms"][:, :n]), \
            "separate random streams"


@pytest.mark.parametrize("preset", ["modern", "quick"])
def test_validation_shares_no_chord_path_with_the_test(monkeypatch, preset):
    """The chord blocks see only chord frames and start from the zero state, so two runs
    share a chord path exactly when their chord frames agree from the first step on. The
    validation runs' actual chord frames differ from the test run's at step 0 (and so at
    every prefix), for every attempt and evaluation point."""
    cfg = replace(_restart_cfg(), experiment="melody", attempts=2, free_choruses=3,
                  val_phase=m.PRESETS[preset].val_phase)
    assert m.validation_disjoint_from_test(cfg)
    calls = _spy_free_runs(monkeypatch)
    m.train_seeds(cfg, [4])
    val = [c for c in calls if c["n"] == cfg.val_choruses]
    test = [c for c in calls if c["n"] == cfg.free_choruses and c["phase"] == 0]
    assert val and len(test) == 1 and all(c["phase"] == cfg.val_phase for c in val)
    tf = test[0]["frames"][:, :, :12]
    for c in val:
        vf = c["frames"][:, :, :12]
        played = min(vf.shape[1], tf.shape[1])
        for a in vf:
            for b in tf:
                differ = np.any(a[:played] != b[:played], axis=1)
                assert differ[0], "validation and test chord paths start alike"
                assert np.all(np.cumsum(differ) > 0), "some chord history coincides"
    # and the flag the run records; a validation from bar 1 (or bar 7: C7 again) is not
    assert not m.validation_disjoint_from_test(replace(cfg, val_phase=0))
    assert not m.validation_disjoint_from_test(replace(cfg, val_phase=48))


def test_validation_scores_against_its_own_phase():
    cfg = replace(m.PRESETS["quick"], experiment="melody")
    corpus = m.make_corpus(cfg)
    stream = corpus_stream(cfg, 4)[cfg.val_phase:cfg.val_phase + 96 * 3]
    assert np.all(m.chord_correctness(stream, 96, cfg.val_phase) == 1.0)
    assert not np.any(m.chord_correctness(stream, 96, 0) == 1.0)
    assert np.array_equal(m.validation_seed_roll(cfg, corpus), corpus_stream(cfg, 2)[
        cfg.val_phase:cfg.val_phase + 96])


def test_every_attempt_is_tested_like_the_kept_one():
    cfg = replace(_restart_cfg(), attempts=3)
    recs = m.train_seeds(cfg, [0, 1])
    for r in recs:
        assert r["attempts_used"] == len(r["attempts"]) == 3
        kept = [a for a in r["attempts"] if a["attempt"] == r["kept_attempt"]]
        assert len(kept) == 1
        assert kept[0]["correct_choruses"] == r["metrics"]["correct_choruses"]
        assert kept[0]["solved"] == r["metrics"]["solved"]
        assert sum(a["updates"] for a in r["attempts"]) == r["updates"]
    for r in recs:
        r.pop("artifacts")
    res = m.finalize_results({"seeds": recs, "config": {}})
    s = res["summary"]["chords/lstm"]
    assert s["n_runs"] == 6 and s["n_seeds"] == 2
    assert s["runs_solved"] == sum(a["solved"] for r in recs for a in r["attempts"])
    assert s["updates_total"] == sum(r["updates"] for r in recs)


def test_rnn_row_gets_its_own_rate_and_one_attempt():
    cfg = m.PRESETS["modern"]
    for exp, budget in (("chords", cfg.rnn_updates_chords), ("melody", cfg.rnn_updates_melody)):
        r = m.row_config(cfg, exp, "rnn")
        assert r.model == "rnn" and r.attempts == 1 and r.updates == budget > 0
        assert r.lr == cfg.rnn_lr
        lstm = m.row_config(cfg, exp, "lstm")
        assert lstm.attempts == cfg.attempts and lstm.lr == cfg.lr
        small = m.row_config(cfg, exp, "lstm_paper_size")
        assert (small.chord_blocks, small.melody_blocks) == (cfg.paper_chord_blocks,
                                                             cfg.paper_melody_blocks)
        assert m.variant_name(small) == f"{exp}/lstm_paper_size"
        assert small.attempts == lstm.attempts and small.updates == lstm.updates


def test_melody_criterion_needs_a_melody_that_follows_the_chords():
    cfg = replace(m.PRESETS["modern"], experiment="melody")
    ref = m.melody_reference(cfg)
    corpus = m.make_corpus(cfg)
    train = corpus["train"].astype(np.uint8)
    # every 10-chorus stretch of the training corpus passes (96 frames of lead-in)
    for a in range(len(train) - 10 + 1):
        frames = train[a:a + 11].reshape(-1, 25) if a + 11 <= len(train) else None
        if frames is not None:
            assert m.melody_criterion(frames, ref, start=96, n=10)["melody_solved"]
    frames = train[:21].reshape(-1, 25)
    # the right chords with a melody that ignores them fail: one note held throughout
    # (C, a tone of C7 and F7), and the corpus's melody moved by half a chorus
    held = frames.copy()
    held[:, 12:] = 0
    held[:, 12] = 1
    r = m.melody_criterion(held, ref)
    assert not r["melody_solved"] and r["chord_following_first10"] == pytest.approx(0)
    moved = frames.copy()
    moved[:, 12:] = np.roll(frames[:, 12:], 48, axis=0)
    assert not m.melody_criterion(moved, ref)["melody_solved"]
    # too few notes per bar fails even with chord tones: each bar's first note held
    slow = frames.copy()
    notes = m.melody_notes(frames)
    slow[:, 12:] = 0
    slow[np.arange(len(frames)), 12 + np.repeat(notes[::8], 8)] = 1
    assert m.melody_criterion(slow, ref)["notes_per_bar_first10"] == pytest.approx(1.0, abs=0.3)
    assert not m.melody_criterion(slow, ref)["melody_solved"]
    # the held-out corpus (never used for the reference) passes
    held_out = np.concatenate([corpus["heldout"]] * 3).astype(np.uint8).reshape(-1, 25)
    assert m.melody_criterion(held_out, ref)["melody_solved"]


def test_validation_early_end_changes_no_score():
    """Ending a validation run once every net has erred leaves each net's score (right
    choruses before its first wrong one) and the frames played up to then unchanged."""
    cfg = replace(m.PRESETS["quick"], experiment="melody", model="lstm")
    rng = np.random.default_rng(6)
    P = m.stack([m.init_params(cfg, rng) for _ in range(3)])
    seed = m.make_corpus(cfg)["train"][0]
    uni = rng.random((3, 96 * 5))
    full, _ = m.free_run_k(P, cfg, seed, 4, uni)
    early, _ = m.free_run_k(P, cfg, seed, 4, uni, stop_when_all_wrong=True)
    for a, b in zip(full, early, strict=True):
        ca, cb = (m.chord_correctness(f, 96) == 1 for f in (a, b))
        assert np.cumprod(ca).sum() == np.cumprod(cb).sum()
    played = np.flatnonzero(early[:, :, 12:].any(axis=(0, 2)))  # one melody note a frame
    assert 96 * 2 <= played[-1] + 1 < 96 * 5, "random nets: the run ends early"
    assert np.array_equal(early[:, :played[-1] + 1], full[:, :played[-1] + 1])


def test_float32_training_kernel_matches_float64():
    """Training runs the kernel in float32: its loss and gradient agree with the
    float64 kernel (which the gradient checks verify) to float32 precision."""
    cfg = replace(m.PRESETS["quick"], experiment="melody", model="lstm", bar_weight=8.0)
    rng = np.random.default_rng(3)
    p = m.init_params(cfg, rng)
    batch = m.sample_batch(cfg, rng)
    v64, g64 = m.loss_and_grads(p, batch, cfg)
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    b32 = dict(batch, state0=tuple(s.astype(np.float32) for s in batch["state0"]))
    v32, g32 = m.loss_and_grads(p32, b32, cfg)
    assert v32 == pytest.approx(v64, rel=1e-5)
    for k in g64:
        assert g32[k].dtype == np.float32
        scale = np.abs(g64[k]).max()
        np.testing.assert_allclose(g32[k], g64[k], rtol=0, atol=1e-4 * scale)


# ---------------------------------------------------------------------------------------
# Audio: notes sustain for their length; no silent stretch inside the piece
# ---------------------------------------------------------------------------------------
def test_wav_sustains_held_notes():
    cfg = replace(m.PRESETS["quick"], experiment="melody")
    for frames in (corpus_stream(cfg, 2), corpus_stream(replace(cfg, experiment="chords"), 2)):
        pcm = m.synthesize(frames)
        db = m.window_dbfs(pcm)
        assert len(db) == 2 * 96 * 5  # 50-ms windows in 48 s
        assert db.min() > -50, f"a 50-ms window at {db.argmin() * 0.05:.2f} s is silent"
    # a chord held for 4 bars (8 s) keeps its level: the last second within 3 dB of the
    # second after the attack
    chords = corpus_stream(replace(cfg, experiment="chords"), 1)
    db = m.window_dbfs(m.synthesize(chords[:32]))
    assert db[-20:-1].mean() > db[1:20].mean() - 3


# ---------------------------------------------------------------------------------------
# CLI and results contract specific to this folder
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("label,args", [("repeated seeds", ["--seeds", "1,2,1"]),
                                        ("empty outdir", ["--outdir", ""])])
def test_cli_refuses(label, args, tmp_path):
    r = run_script(FOLDER / "blues_improvisation.py",
                   ["--preset", "quick", "--quiet", *args], timeout=60, cwd=tmp_path)
    assert r.returncode == 2, (label, r.stderr)
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error:" in ln]) == 1
    assert not any(tmp_path.iterdir())


def test_seed_parser():
    assert m.parse_seeds("3") == [3]
    assert m.parse_seeds("0-3") == [0, 1, 2, 3]
    assert m.parse_seeds("0,2,5") == [0, 2, 5]


def test_help_has_one_default_per_flag():
    text = m.build_parser().format_help()
    assert "(default: None)" not in text
    flat = " ".join(text.replace("-\n", "-").split()).replace("- ", "-")
    assert "runs/blues-improvisation/ at the repo root" in flat
    for block in text.split("\n  --")[1:]:
        assert block.count("(default") <= 1, block


def test_tables_and_overview_from_a_run(tmp_path):
    out = tmp_path / "run"
    assert m.main(["--preset", "quick", "--seeds", "0-1", "--jobs", "1", "--outdir",
                   str(out), "--quiet", "--experiment", "chords"]) == 0
    import json

    res = json.loads((out / "results.json").read_text())
    assert res["command"] == ["python", "blues-improvisation/blues_improvisation.py",
                              "--preset", "quick", "--seeds", "0-1", "--jobs", "1",
                              "--outdir", str(out), "--quiet", "--experiment", "chords"]
    assert res["config"]["validation_disjoint_from_test"] is True
    assert {"git_commit", "git_dirty"} <= set(res["env"])
    assert "not run" in m.results_table(res) and "not run" in m.headline(res)
    paper = {"paper": res}
    assert m.headline(res).count("not run") == 2  # this run has no melody rows
    assert m.headline(res, paper).count("not run") == 1
    assert "not run" not in m.results_table(res, paper)
    for row in m.overview(res, paper) + m.overview(res):
        for k in ("paper", "ours_paper", "ours_modern"):
            assert row[k] is None or 0.0 <= row[k] <= 1.0
    again = m.finalize_results(json.loads(json.dumps(res)) | {"seeds": res["seeds"][::-1]})
    assert again["summary"] == res["summary"] and again["seeds"] == res["seeds"]


def test_paper_cells_go_beside_the_row_of_the_same_net():
    """The paper procedure's rows (its own net sizes) go beside the modern row of the same
    experiment, model and weight count; one without such a row goes beside its kind's row
    that got none, with its weight count; a modern row left over shows '–'."""
    def row(w, k):
        return dict(n_weights=w, solved=k, n_seeds=10, runs_solved=k, n_runs=10)
    modern = {"chords/lstm": row(3996, 10), "chords/lstm_paper_size": row(528, 0),
              "chords/rnn": row(4016, 2)}
    paper = {"paper": {"summary": {"chords/lstm": row(528, 3), "chords/rnn": row(531, 1)}}}
    assert m.paper_cells(modern, paper) == {
        "chords/lstm": "–", "chords/lstm_paper_size": "3/10 (3/10 runs)",
        "chords/rnn": "1/10 (1/10 runs), 531 weights"}
    assert set(m.paper_cells(modern, None).values()) == {"not run"}
    same = {"paper": {"summary": modern}}
    assert m.paper_cells(modern, same) == {v: f"{d['solved']}/10 ({d['solved']}/10 runs)"
                                           for v, d in modern.items()}
    # the paper run's own table: seeds solved with their 95% Wilson interval, runs solved
    import json

    res = json.loads((FOLDER / "results.json").read_text())
    lines = m.paper_run_table(res).splitlines()
    assert len(lines) == 2 + len(res["summary"]) + 2
    for line, (v, d) in zip(lines[2:], res["summary"].items(), strict=False):
        lo, hi = m._wilson(d["solved"], d["n_seeds"])
        assert line.startswith(f"| {v} | {d['n_weights']} | {d['solved']}/{d['n_seeds']} "
                               f"[{100 * lo:.0f}–{100 * hi:.0f}%] | "
                               f"{d['runs_solved']}/{d['n_runs']} | {d['updates_total']:,} |")
    assert [round(x, 3) for x in m._wilson(0, 10)] == [0.0, 0.278]
    assert [round(x, 3) for x in m._wilson(3, 10)] == [0.108, 0.603]


# ---------------------------------------------------------------------------------------
# Prose that quotes results: checked against the files it quotes
# ---------------------------------------------------------------------------------------
def _json(path):
    import json

    return json.loads(path.read_text())


def test_side_run_prose_matches_its_results():
    import json
    import re

    side = FOLDER / "side_runs"
    # the 8-block headline's attempts (capacity study's motivation)
    old = _json(side / "earlier_headlines" / "attempts_8_blocks" / "results.json")
    counts = {v: (sum(r["metrics"]["solved"] for r in old["seeds"] if r["variant"] == v),
                  sum(r["attempts_used"] for r in old["seeds"] if r["variant"] == v))
              for v in ("chords/lstm", "melody/lstm")}
    (sc, ac), (sm, am) = counts["chords/lstm"], counts["melody/lstm"]
    text = (side / "capacity" / "README.md").read_text()
    assert f"{sc} of {ac} and {sm} of {am} training attempts" in text
    table = (side / "earlier_headlines" / "README.md").read_text()
    assert f"{sc}/10 ({sc} of {ac} attempts) | {sm}/10 ({sm} of {am} attempts)" in table
    for sub, wall in (("single_run_8_blocks", 348), ("attempts_8_blocks", 665),
                      ("attempts_16_blocks", 431)):
        res = _json(side / "earlier_headlines" / sub / "results.json")
        assert round(res["wallclock_s"]) == wall and f"| {wall} s |" in table
    # the RNN learning-rate sweep: table rows and the rule's choice
    lines = [json.loads(ln) for ln in (side / "rnn_lr" / "results.jsonl").read_text()
             .splitlines()]
    by = {(d["experiment"], d["lr"]): d for d in lines}
    rnn = (side / "rnn_lr" / "README.md").read_text()
    sums = {}
    for lr in (3e-3, 1e-2, 3e-2, 1e-1):
        c, mel = by[("chords", lr)], by[("melody", lr)]
        sums[lr] = c["median_final_train_loss"] + mel["median_final_train_loss"]
        row = (f"{c['median_final_train_loss']:.4f}", f"{sum(c['solved'])}/5",
               f"{mel['median_final_train_loss']:.4f}", f"{sum(mel['solved'])}/5",
               f"{sums[lr]:.4f}")
        for cell in row:
            assert re.search(rf"\|\s*\**{re.escape(cell)}\**\s*\|", rnn), (lr, cell)
    assert min(sums, key=lambda k: (sums[k], k)) == m.PRESETS["modern"].rnn_lr


def test_readme_prose_matches_results():
    import re

    res = _json(FOLDER / "results.json")
    summ = res["summary"]
    text = (FOLDER / "README.md").read_text()
    text = " ".join(text.split())
    claims = re.findall(r"`([a-z]+/[a-z_]+)` (\d+)/(\d+) seeds \((\d+) of (\d+) attempts\)",
                        text)
    assert len(claims) == 6, claims
    for v, solved, n, runs_solved, n_runs in claims:
        s = summ[v]
        assert (s["solved"], s["n_seeds"], s["runs_solved"], s["n_runs"]) == tuple(
            map(int, (solved, n, runs_solved, n_runs))), v
    c, mel = summ["chords/lstm"], summ["melody/lstm"]
    assert (f"Updates over all attempts: {c['updates_total']:,} and {mel['updates_total']:,} "
            f"(median per seed {c['updates']['median']:,.0f} and "
            f"{mel['updates']['median']:,.0f})") in text
    for v in ("chords/lstm", "melody/lstm"):
        assert summ[v]["correct_first10"]["min"] == summ[v]["correct_last10"]["min"] == 10
    assert "10/10 in the first and the last ten" in text
    small = {summ[f"{e}/lstm_paper_size"]["updates_total"] for e in ("chords", "melody")}
    assert small == {180000} and "180,000 updates each row" in text
    assert all(summ[v]["melody_solved"] == 0 for v in summ if v.startswith("melody"))
    assert "No row passes the melody criterion (0/10 each)" in text

    def med(k):
        return mel[k]["median"]

    ref = res["melody_reference"]
    assert (f"(median {med('strong_beat_chord_tone_rate_first10'):.3f} / "
            f"{med('strong_beat_chord_tone_rate_last10'):.3f} in the first / last 10 choruses; "
            f"corpus at least {ref['strong_beat_chord_tone_rate_min']:.3f})") in text
    assert (f"({med('chord_following_first10'):.3f} / {med('chord_following_last10'):.3f}; "
            f"corpus at least {ref['chord_following_min']:.3f})") in text
    lo, hi = ref["notes_per_bar_range"]
    assert (f"play {med('notes_per_bar_first10'):.2f} / {med('notes_per_bar_last10'):.2f} "
            f"notes per bar, under the corpus's {lo:.2f}–{hi:.2f}") in text
    assert f"{100 * med('novelty'):.1f} % of their bars are not training bars" in text
    assert (f"The headline took {res['wallclock_s']:.0f} s on 2 cores "
            f"({res['cpu_time_s']:.0f} CPU-seconds;") in text
    for v in summ:
        wall = next(r["wall_s_stacked_group"] for r in res["seeds"] if r["variant"] == v)
        assert f"{v} {wall:.0f} s" in text, v
    cfg = res["config"]
    assert f"one attempt of {cfg['rnn_updates_chords']:,} / {cfg['rnn_updates_melody']:,}" \
        in text
    assert res["config"]["validation_disjoint_from_test"] is True
    assert res["env"]["git_dirty"] is False and res["preset"] == "modern"


def test_committed_wav_never_falls_silent():
    with wave.open(str(FOLDER / "blues_improvisation.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    assert m.window_dbfs(pcm).min() > -50


def test_checkpoint_resume_is_bit_identical(tmp_path):
    from helpers import assert_same_record

    cfg = m.row_config(replace(m.PRESETS["quick"], attempts=3), "melody", "lstm")
    ref = m.train_seeds(cfg, [0, 1])
    ck = tmp_path / "ck.pkl"
    with pytest.raises(KeyboardInterrupt):
        m.train_seeds(cfg, [0, 1], checkpoint=ck, checkpoint_every=0, _stop_after=3)
    assert ck.is_file()
    with pytest.raises(ValueError):  # another run's checkpoint is refused
        m.train_seeds(replace(cfg, lr=0.5), [0, 1], checkpoint=ck)
    res = m.train_seeds(cfg, [0, 1], checkpoint=ck, checkpoint_every=0)
    for a, b in zip(ref, res, strict=True):
        aa, bb = a.pop("artifacts"), b.pop("artifacts")
        assert_same_record(a, b)
        assert aa.keys() == bb.keys() and all(np.array_equal(aa[k], bb[k]) for k in aa)


def test_cli_checkpoints_are_removed_when_the_run_completes(tmp_path):
    out = tmp_path / "run"
    assert m.main(["--preset", "quick", "--seeds", "0", "--jobs", "1", "--outdir", str(out),
                   "--quiet", "--experiment", "chords", "--checkpoint-every", "0.001"]) == 0
    assert (out / "results.json").is_file() and not (out / "checkpoints").exists()


def test_paper_run_and_its_readmes():
    """The committed run of the paper's procedure: finished (no checkpoints left) from a
    clean tree by the RUNS command; paper/README.md's table is paper_run_table of its
    results.json and its prose, like the folder README's, quotes that run's numbers."""
    import json

    sub = FOLDER / "paper"
    res = m.finalize_results(json.loads((sub / "results.json").read_text()))
    assert res["preset"] == "paper" and res["env"]["git_dirty"] is False
    assert not (sub / "checkpoints").exists()
    s = res["summary"]
    assert list(s) == ["chords/lstm", "chords/rnn", "melody/lstm", "melody/rnn"]
    assert all(d["n_seeds"] == 10 and d["n_runs"] == 10 for d in s.values())
    text = (sub / "README.md").read_text()
    assert f"<!-- paper run -->\n{m.paper_run_table(res)}\n<!-- /paper run -->" in text
    solved = [r for r in res["seeds"] if r["metrics"]["solved"]]
    val_right = [r for r in res["seeds"] if max(r["curves"]["val_correct"] or [0]) > 0]
    assert [(r["variant"], r["seed"]) for r in val_right] == \
        [(r["variant"], r["seed"]) for r in solved]
    modern = json.loads((FOLDER / "results.json").read_text())["summary"]
    small = modern["chords/lstm_paper_size"]
    flat = " ".join(text.split())
    mel = {v: s[v] for v in ("melody/lstm", "melody/rnn")}
    want = [f"`chords/lstm` seed {solved[0]['seed']} played its 10-chorus validation run "
            f"right after {solved[0]['updates']:,} updates",
            f"The other {10 - s['chords/lstm']['solved']} reached the "
            f"{res['config']['updates']:,}-update cap",
            f"None of these {len(res['seeds']) - len(solved)} nets played a single validation "
            "chorus right",
            "notes per bar are " + " and ".join(
                f"{d['notes_per_bar_first10']['median']:.2f} / "
                f"{d['notes_per_bar_last10']['median']:.2f} ({v.split('/')[1].upper()})"
                for v, d in mel.items()),
            f"0/10 (0 of {small['n_runs']} attempts, {small['updates_total'] // 10:,} updates "
            f"per seed)",
            f"{sum(d['updates_total'] for d in s.values()):,} updates for the "
            f"{len(res['seeds'])} nets", f"{res['cpu_time_s']:,.0f} CPU-seconds",
            f"{res['wallclock_s']:,.0f} s of wall time"]
    assert all(d["chord_following_first10"]["median"] == 0.0 and
               d["chord_following_last10"]["median"] == 0.0 for d in mel.values())
    assert len(solved) == 1 and solved[0]["variant"] == "chords/lstm"
    for w in want:
        assert w in flat, w
    readme = " ".join((FOLDER / "README.md").read_text().split())
    assert (f"the paper-sized chord net finds the form in {len(solved)} of 10 seeds "
            f"(seed {solved[0]['seed']}, after {solved[0]['updates']:,} updates), no other "
            "row") in readme
