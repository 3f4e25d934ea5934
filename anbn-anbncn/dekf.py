"""The decoupled extended Kalman filter (DEKF) trainer for a^n b^n and a^n b^n c^n.

The Kalman-filter follow-up of Gers & Schmidhuber 2001 (Gers, Perez-Ortiz, Eck & Schmidhuber
2002) trains the same peephole LSTM with a DEKF: the weights are the filter's state, grouped
per unit, each group with its own covariance; after every symbol the filter updates them
from the output error and the output Jacobian, which RTRL carries forward. The main script's
`--optimizer dekf` trains through this file.

The file reads top to bottom: the flat weight vector and its per-unit groups -> RTRL
(forward-mode Jacobians of the outputs) -> the DEKF update (and a dense EKF to check it) ->
the annealed noise schedule -> one training string. Task, network and criterion are the
main script's (`anbn_anbncn`, imported as `ab`), which imports this file on demand.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported by path (tests): find the main script beside it
    sys.path.insert(0, str(HERE))
import anbn_anbncn as ab  # noqa: E402


def flat_layout(params: dict) -> dict:
    """{name: index array of the name's entries (one net's shape) in the flat weight vector}."""
    out, k = {}, 0
    for name, v in params.items():
        n = v[0].size
        out[name] = np.arange(k, k + n).reshape(v[0].shape)
        k += n
    return out


def flatten(params: dict) -> np.ndarray:
    """One net's (restart 0's) weights as a flat vector, in params order."""
    return np.concatenate([v[0].ravel() for v in params.values()])


def unflatten(theta: np.ndarray, like: dict) -> dict:
    out, k = {}, 0
    for name, v in like.items():
        n = v[0].size
        out[name] = theta[k:k + n].reshape((1, *v.shape[1:])).copy()
        k += n
    return out


def dekf_groups(params: dict) -> list:
    """Weight groups of the DEKF, one per unit: every gate / cell-input unit j of the
    LSTM (its input, recurrent and bias weights, plus its cell's peephole for i, f, o) and
    every output unit k (its weights from the cells, the input shortcut and its bias)."""
    lay = flat_layout(params)
    G = params["W_x"].shape[-1]
    H = G // 4
    groups = []
    for j in range(G):
        idx = [lay["W_x"][:, j], lay["W_h"][:, j], lay["b"][j:j + 1]]
        if "p" in params and j < 3 * H:
            idx.append(lay["p"][j // H, j % H:j % H + 1])
        groups.append(np.concatenate(idx))
    for k in range(params["c"].shape[-1]):
        groups.append(np.concatenate([lay["V_y"][:, k], lay["V_x"][:, k],
                                      lay["c"][k:k + 1]]))
    return groups


def rtrl_init(params: dict) -> dict:
    """Zero state and zero forward derivatives of one LSTM net (real-time recurrent
    learning: ds_c/dw and dy^c/dw carried forward through every step)."""
    H = params["W_x"].shape[-1] // 4
    W = sum(v[0].size for v in params.values())
    return {"s": np.zeros(H), "y": np.zeros(H), "S": np.zeros((H, W)), "Y": np.zeros((H, W))}


def rtrl_step(params: dict, lay: dict, st: dict, x: int):
    """One forward step of net 0 on input symbol x with the exact forward derivatives.

    Returns (out (K,) sigmoid outputs, J (K, W) = d out / d w, the new state). The
    derivatives are the full ones (through peepholes, gates and recurrent weights), so
    carried over a string they equal the derivative of the outputs of `forward`.
    """
    p = {k: v[0] for k, v in params.items()}
    W_x, W_h, b = p["W_x"], p["W_h"], p["b"]
    G = W_x.shape[-1]
    H = G // 4
    peep = "p" in p
    s0, y0, S0, Y0 = st["s"], st["y"], st["S"], st["Y"]
    rows = np.arange(G)
    z = W_x[x] + b + y0 @ W_h
    dz = W_h.T @ Y0  # (G, W): through y^c_{t-1}
    dz[rows, lay["W_x"][x]] += 1.0
    dz[rows, lay["b"]] += 1.0
    for h in range(H):
        dz[rows, lay["W_h"][h]] += y0[h]
    zi, zf, zo, zg = z[:H].copy(), z[H:2 * H].copy(), z[2 * H:3 * H].copy(), z[3 * H:]
    dzi, dzf, dzo, dzg = dz[:H], dz[H:2 * H], dz[2 * H:3 * H], dz[3 * H:]
    hr = np.arange(H)
    if peep:
        zi += p["p"][0] * s0
        zf += p["p"][1] * s0
        dzi = dzi + p["p"][0][:, None] * S0
        dzi[hr, lay["p"][0]] += s0
        dzf = dzf + p["p"][1][:, None] * S0
        dzf[hr, lay["p"][1]] += s0
    i, f, g = ab.sigmoid(zi), ab.sigmoid(zf), np.tanh(zg)
    s = f * s0 + i * g
    S = ((f * (1 - f) * s0)[:, None] * dzf + f[:, None] * S0
         + (i * (1 - i) * g)[:, None] * dzi + (i * (1 - g * g))[:, None] * dzg)
    if peep:
        zo += p["p"][2] * s
        dzo = dzo + p["p"][2][:, None] * S
        dzo[hr, lay["p"][2]] += s
    o = ab.sigmoid(zo)
    hs = np.tanh(s)
    y = o * hs
    Y = (o * (1 - o) * hs)[:, None] * dzo + (o * (1 - hs * hs))[:, None] * S
    u = y @ p["V_y"] + p["V_x"][x] + p["c"]
    K = u.size
    du = p["V_y"].T @ Y
    kr = np.arange(K)
    for h in range(H):
        du[kr, lay["V_y"][h]] += y[h]
    du[kr, lay["V_x"][x]] += 1.0
    du[kr, lay["c"]] += 1.0
    out = ab.sigmoid(u)
    J = (out * (1 - out))[:, None] * du
    return out, J, {"s": s, "y": y, "S": S, "Y": Y}


def dekf_update(theta, Ps, groups, J, err, R: float, Q: float):
    """One DEKF update (in place on theta and the group covariances Ps).

    With H_i = J[:, group i]^T: A = (R I + sum_i H_i^T P_i H_i)^-1, K_i = P_i H_i A,
    w_i += K_i err, P_i <- P_i - K_i H_i^T P_i + Q I.
    """
    Kdim = err.size
    Hs = [J[:, g].T for g in groups]  # (n_i, K)
    PH = [P @ Hm for P, Hm in zip(Ps, Hs, strict=True)]
    A = np.linalg.inv(R * np.eye(Kdim) + sum(Hm.T @ ph for Hm, ph in zip(Hs, PH,
                                                                        strict=True)))
    for gi, (g, ph) in enumerate(zip(groups, PH, strict=True)):
        Kg = ph @ A
        theta[g] += Kg @ err
        Ps[gi] = Ps[gi] - Kg @ ph.T + Q * np.eye(g.size)
    return theta, Ps


def ekf_update_dense(theta, P, J, err, R: float, Q: float):
    """The global (dense-covariance) EKF update, for the tests: K = P H (R + H^T P H)^-1."""
    Hm = J.T
    A = np.linalg.inv(R * np.eye(err.size) + Hm.T @ P @ Hm)
    Kg = P @ Hm @ A
    return theta + Kg @ err, P - Kg @ Hm.T @ P + Q * np.eye(theta.size)


def dekf_noise(cfg: ab.Config, strings_seen: int):
    """(R, Q) after strings_seen training strings: annealed linearly from the first value
    to the second over cfg.dekf_anneal strings, then held."""
    a = min(1.0, strings_seen / max(cfg.dekf_anneal, 1))
    (r0, r1), (q0, q1) = cfg.dekf_r, cfg.dekf_q
    return r0 + a * (r1 - r0), q0 + a * (q1 - q0)


def dekf_init(params: dict, cfg: ab.Config) -> dict:
    groups = dekf_groups(params)
    return {"groups": groups, "P": [cfg.dekf_p0 * np.eye(g.size) for g in groups]}


def dekf_string(params: dict, kf: dict, string: dict, R: float, Q: float) -> dict:
    """Train net 0 on one string with the DEKF, one update per time step (online): the
    forward step with its Jacobian (`rtrl_step`), then `dekf_update` with the error
    target - output. Returns the new params (the filter state kf is updated in place)."""
    lay = flat_layout(params)
    theta = flatten(params)
    st = rtrl_init(params)
    sym, target = string["sym"][:, 0], string["target"][:, 0].astype(np.float64)
    for t in range(sym.size):
        out, J, st = rtrl_step(params, lay, st, int(sym[t]))
        theta, kf["P"] = dekf_update(theta, kf["P"], kf["groups"], J, target[t] - out, R, Q)
        params = unflatten(theta, params)
    return params
