"""The gradient checker must pass a right gradient and fail a subtly wrong one."""

import numpy as np
from helpers import compare_grads, numerical_grads


def _problem():
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=3)}
    x = rng.normal(size=4)

    def loss(p):  # L = sum(tanh(W x + b)^2) / 2
        y = np.tanh(p["W"] @ x + p["b"])
        return 0.5 * float(y @ y)

    def grads(p):
        y = np.tanh(p["W"] @ x + p["b"])
        dz = y * (1 - y * y)
        return {"W": np.outer(dz, x), "b": dz}

    return params, loss, grads


def test_right_gradient_passes():
    params, loss, grads = _problem()
    ok, report = compare_grads(grads(params), numerical_grads(loss, params))
    assert ok, report


def test_one_entry_off_by_1e4_relative_fails():
    params, loss, grads = _problem()
    g = grads(params)
    k = int(np.argmax(np.abs(g["W"])))
    g["W"].flat[k] *= 1 + 1e-4
    ok, report = compare_grads(g, numerical_grads(loss, params))
    assert not ok, report


def test_flipped_sign_fails():
    params, loss, grads = _problem()
    g = grads(params)
    g["b"][1] = -g["b"][1]
    ok, report = compare_grads(g, numerical_grads(loss, params))
    assert not ok, report


def test_missing_key_fails():
    params, loss, grads = _problem()
    g = grads(params)
    del g["b"]
    ok, _ = compare_grads(g, numerical_grads(loss, params))
    assert not ok


def test_tiny_entries_use_absolute_floor():
    # an entry of ~1e-12 where finite differences only see noise must not fail the check
    a = {"w": np.array([1e-12, 1.0])}
    n = {"w": np.array([3e-11, 1.0 + 1e-8])}
    ok, report = compare_grads(a, n)
    assert ok, report


def test_non_contiguous_parameter_is_perturbed():
    # a transposed view: perturbing a reshape(-1) copy would leave the loss unchanged
    params, loss, grads = _problem()
    params = {"W": np.asfortranarray(params["W"]), "b": params["b"]}
    assert not params["W"].flags.c_contiguous
    num = numerical_grads(loss, params)
    assert np.abs(num["W"]).max() > 1e-3
    ok, report = compare_grads(grads(params), num)
    assert ok, report
