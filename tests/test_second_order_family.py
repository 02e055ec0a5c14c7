"""LA, LOLA, SOS, HGD, CGD, GACGD, ACGD, LSS and LEAD against dense float64 NumPy
transcriptions of the papers' equations, on polynomial games whose derivatives are written out
by hand (2 and 3 players, players of 1 to 40 parameters); then the reference notebooks'
qualitative results on the standard games; then config, resume and error messages."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
from tfgames.optimizers.cgd import ACGD, CGD, GACGD
from tfgames.optimizers.hamiltonian import HamiltonianGD
from tfgames.optimizers.lead import LEAD
from tfgames.optimizers.lss import LSS
from tfgames.optimizers.opponent_shaping import LA, LOLA, SOS

# -- A polynomial n-player game with closed-form derivatives ---------------------------------
#   l_i(w) = 0.5 w^T Q_i w + q_i^T w + (c_i^T w)^3 / 6          (w: all players' parameters)
#   grad l_i = Q_i w + q_i + 0.5 (c_i^T w)^2 c_i,  Hess l_i = Q_i + (c_i^T w) c_i c_i^T


class PolyGame(tfgames.GameModel):
    def __init__(self, Q, q, c, sizes, w0, **kwargs):
        super().__init__(**kwargs)
        self.Q = [tf.constant(m, tf.float32) for m in Q]
        self.q = [tf.constant(v, tf.float32) for v in q]
        self.c = [tf.constant(v, tf.float32) for v in c]
        self.sizes = sizes
        starts = np.cumsum([0] + list(sizes))
        self.ws = [self.add_weight(shape=(s,), initializer=keras.initializers.Constant(
            np.asarray(w0[a:a + s], "float32")), name=f"w{i}")
            for i, (s, a) in enumerate(zip(sizes, starts))]

    def players(self):
        return {f"p{i}": w for i, w in enumerate(self.ws)}

    def compute_losses(self, data, training=False):
        w = tf.concat([tf.convert_to_tensor(x) for x in self.ws], 0)
        out = {}
        for i in range(len(self.sizes)):
            cw = tf.reduce_sum(self.c[i] * w)
            out[f"p{i}"] = (0.5 * tf.reduce_sum(w * tf.linalg.matvec(self.Q[i], w))
                            + tf.reduce_sum(self.q[i] * w) + cw**3 / 6.0)
        return out

    def weights_vector(self):
        return np.concatenate([w.numpy() for w in self.ws]).astype(np.float64)


def make_game(sizes, seed, zero_sum=False):
    rng = np.random.default_rng(seed)
    d = sum(sizes)
    n = len(sizes)
    Q, q, c = [], [], []
    for _ in range(n):
        m = rng.standard_normal((d, d))
        Q.append((m + m.T) / 2 + 0.5 * np.eye(d))
        q.append(rng.standard_normal(d))
        c.append(0.5 * rng.standard_normal(d))
    if zero_sum:  # l_2 = -l_1
        Q[1], q[1], c[1] = -Q[0], -q[0], c[0].copy()
    return dict(Q=Q, q=q, c=c, sizes=list(sizes), zero_sum=zero_sum)


class Dense:
    """float64 NumPy: xi, H, H_o, cross gradients and chi of a PolyGame at w."""

    def __init__(self, spec, w):
        self.spec, self.w = spec, np.asarray(w, np.float64)
        sizes = spec["sizes"]
        self.blocks = [slice(a, a + s) for a, s in zip(np.cumsum([0] + sizes), sizes)]
        n = len(sizes)
        sign = [1.0, -1.0] if spec["zero_sum"] else [1.0] * n
        self.grad, self.hess = [], []
        for i in range(n):
            Q, q, c = spec["Q"][i], spec["q"][i], spec["c"][i]
            cw = c @ self.w
            s = sign[i] if spec["zero_sum"] else 1.0
            if spec["zero_sum"] and i == 1:  # l_2 = -l_1 exactly, including the cubic term
                Q, q, c = spec["Q"][0], spec["q"][0], spec["c"][0]
                cw = c @ self.w
            self.grad.append(s * (Q @ self.w + q + 0.5 * cw**2 * c))
            self.hess.append(s * (Q + cw * np.outer(c, c)))
        self.xi = np.concatenate([self.grad[i][b] for i, b in enumerate(self.blocks)])
        self.H = np.concatenate([self.hess[i][b, :] for i, b in enumerate(self.blocks)], 0)
        self.Ho = self.H.copy()
        for b in self.blocks:
            self.Ho[b, b] = 0.0
        self.chi = np.zeros_like(self.xi)
        for i, bi in enumerate(self.blocks):
            for j, bj in enumerate(self.blocks):
                if j != i:  # grad_i <stop(grad_j l_i), grad_j l_j> = Hess(l_j)[i, j] grad_j l_i
                    self.chi[bi] += self.hess[j][bi, bj] @ self.grad[i][bj]


def numpy_direction(name, dense, **kw):
    xi, H, Ho = dense.xi, dense.H, dense.Ho
    d = len(xi)
    alpha = kw.get("alpha", 1.0)
    la = xi - alpha * Ho @ xi
    if name == "la":
        return la
    if name == "lola":
        return la - alpha * dense.chi
    if name == "sos":
        a, b = kw.get("a", 0.5), kw.get("b", 0.1)
        dot = (-alpha * dense.chi) @ la
        p1 = 1.0 if dot >= 0 else min(1.0, -a * (la @ la) / dot)
        p2 = (xi @ xi) if np.linalg.norm(xi) < b else 1.0
        return la - min(p1, p2) * alpha * dense.chi
    if name == "hgd":
        return H.T @ xi
    if name in ("cgd", "gacgd"):
        return np.linalg.solve(np.eye(d) + alpha * Ho, xi)
    if name == "lss":
        return 0.5 * (xi + H.T @ np.linalg.solve(H, xi))
    if name == "lss_reg":
        lam = kw["lambda_"]
        u = np.linalg.solve(H.T @ H + lam * np.eye(d), H.T @ xi)
        return 0.5 * (xi + H.T @ u)
    raise KeyError(name)


def one_step(spec, w0, optimizer, lr, steps=1, fit=False):
    """Run ``steps`` updates, eagerly through ``apply_game`` (fast) or through ``fit``; return
    the model and {diagnostic: [values]} of the last step."""
    model = ZeroSumPoly(spec, w0) if spec["zero_sum"] else PolyGame(
        spec["Q"], spec["q"], spec["c"], spec["sizes"], w0)
    if fit:
        model.compile(optimizer=optimizer)
        hist = model.fit(tfgames.datasets.step_dataset(steps), epochs=1, verbose=0).history
        return model, {k: v[-1:] for k, v in hist.items()}
    game = tfgames.Game(model.players(), lambda: model.compute_losses(None))
    for _ in range(steps):
        result = optimizer.apply_game(game)
    return model, {k: [float(v)] for k, v in result.diagnostics.items()}


class ZeroSumPoly(PolyGame):
    def __init__(self, spec, w0, **kwargs):
        super().__init__(spec["Q"], spec["q"], spec["c"], spec["sizes"], w0, **kwargs)

    def compute_losses(self, data, training=False):
        l1 = super().compute_losses(data, training)["p0"]
        return {"p0": l1, "p1": -l1}


CASES = [((1, 3), 0), ((2, 1, 3), 1)]
POINTS = [0, 1, 2]


def _w0(spec, point):
    return 0.7 * np.random.default_rng(100 + point).standard_normal(sum(spec["sizes"]))


@pytest.mark.parametrize("sizes, seed", CASES)
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("name, make", [
    ("la", lambda: LA(keras.optimizers.SGD(0.1), alpha=0.3)),
    ("lola", lambda: LOLA(keras.optimizers.SGD(0.1), alpha=0.3)),
    ("sos", lambda: SOS(keras.optimizers.SGD(0.1), alpha=0.3)),
    ("hgd", lambda: HamiltonianGD(keras.optimizers.SGD(0.1))),
    ("gacgd", lambda: GACGD(keras.optimizers.SGD(0.1), alpha=0.3, tol=1e-7,
                            max_iterations=10, warm_start=False)),
])
def test_direction_equals_dense_numpy(sizes, seed, point, name, make):
    spec = make_game(sizes, seed)
    w0 = _w0(spec, point)
    model, hist = one_step(spec, w0, make(), 0.1)
    got = (w0 - model.weights_vector()) / 0.1
    expected = numpy_direction(name, Dense(spec, w0), alpha=0.3)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4 * np.abs(expected).max())
    assert hist["hessian_products"][0] > 0


def test_sos_p_takes_both_branches_and_is_reported():
    """p1 < 1 and p2 < 1 both occur (checked against NumPy) and the metric is p."""
    spec = make_game((1, 3), 0)
    seen = set()
    for point, scale in [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.02)]:
        w0 = _w0(spec, point) * scale
        dense = Dense(spec, w0)
        xi, la = dense.xi, dense.xi - 0.3 * dense.Ho @ dense.xi
        dot = (-0.3 * dense.chi) @ la
        p1 = 1.0 if dot >= 0 else min(1.0, -0.5 * (la @ la) / dot)
        p2 = (xi @ xi) if np.linalg.norm(xi) < 5.0 else 1.0
        _, hist = one_step(spec, w0, SOS(keras.optimizers.SGD(0.1), alpha=0.3, b=5.0), 0.1)
        np.testing.assert_allclose(hist["sos_p"][0], min(p1, p2), rtol=1e-4)
        seen.add("p1" if p1 < min(1.0, p2) else "p2" if p2 < 1 else "one")
    assert {"p1", "p2"} <= seen, seen


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("sizes", [(1, 3), (1, 40), (40, 1), (1, 1)])
def test_cgd_cg_equals_dense_solve_zero_sum(point, sizes):
    """CGD with conjugate gradients on zero-sum games, including 1-dimensional players and
    players of very different sizes (cgds-package#2)."""
    spec = make_game(sizes, 3, zero_sum=True)
    w0 = _w0(spec, point)
    model, hist = one_step(spec, w0, CGD(keras.optimizers.SGD(0.1), alpha=0.3, tol=1e-7,
                                         max_iterations=45, warm_start=False), 0.1)
    got = (w0 - model.weights_vector()) / 0.1
    expected = numpy_direction("cgd", Dense(spec, w0), alpha=0.3)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4 * np.abs(expected).max())
    # The Schur complement lives on the smaller player: at most min(sizes) iterations.
    assert hist["solver_iterations"][0] <= min(sizes)
    assert hist["hessian_products"][0] == 2 + 2 * hist["solver_iterations"][0]


@pytest.mark.parametrize("point", POINTS)
def test_cgd_gmres_general_sum_and_warm_start(point):
    spec = make_game((2, 3), 4)
    w0 = _w0(spec, point)
    opt = CGD(keras.optimizers.SGD(0.05), alpha=0.3, solver="gmres", tol=1e-7,
              max_iterations=10)
    model, hist = one_step(spec, w0, opt, 0.05, steps=2)
    w1 = w0 - 0.05 * numpy_direction("cgd", Dense(spec, w0), alpha=0.3)
    w2 = w1 - 0.05 * numpy_direction("cgd", Dense(spec, w1), alpha=0.3)
    np.testing.assert_allclose(model.weights_vector(), w2, rtol=1e-4, atol=1e-5)
    # The warm start costs one product (its residual b - A x0, two H_o blocks).
    assert hist["hessian_products"][0] == 2 + 2 * (hist["solver_iterations"][0] + 1)


def test_warm_start_residual_is_computed_from_the_warm_start():
    """A warm start at the exact solution converges in 0 iterations; one at a wrong point is
    still solved to the tolerance (HyperGAN#255: r0 = b instead of b - A x0)."""
    from tfgames import solvers
    rng = np.random.default_rng(0)
    m = rng.standard_normal((6, 6))
    A = m @ m.T + np.eye(6)
    b = rng.standard_normal(6)
    op = lambda v: [tf.linalg.matvec(tf.constant(A, tf.float32), v[0])]
    exact = np.linalg.solve(A, b)
    for solve in (solvers.conjugate_gradient, solvers.gmres):
        r = solve(op, [tf.constant(b, tf.float32)], [tf.constant(exact, tf.float32)],
                  tol=1e-4, max_iterations=10)
        assert int(r.iterations) == 0 and int(r.products) == 1 and bool(r.converged)
        r = solve(op, [tf.constant(b, tf.float32)], [tf.constant(5 * exact + 1, tf.float32)],
                  tol=1e-6, max_iterations=10)
        np.testing.assert_allclose(r.x[0].numpy(), exact, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("sizes", [(1, 3), (3, 1), (1, 1)])
def test_acgd_two_steps_equal_numpy(point, sizes):
    """ACGD: v <- beta v + (1 - beta) xi^2, eta = lr sqrt(1 - beta^t) / (sqrt(v) + eps),
    Delta = -(I + eta H_o)^{-1} eta xi, on a zero-sum game (CG)."""
    spec = make_game(sizes, 5, zero_sum=True)
    w = _w0(spec, point)
    lr, beta, eps = 0.05, 0.9, 1e-5
    model, hist = one_step(spec, w, ACGD(lr, beta=beta, epsilon=eps, tol=1e-7,
                                         max_iterations=10), lr, steps=2)
    v = np.zeros_like(w)
    for t in (1, 2):
        dense = Dense(spec, w)
        v = beta * v + (1 - beta) * dense.xi**2
        eta = lr * np.sqrt(1 - beta**t) / (np.sqrt(v) + eps)
        w = w - np.linalg.solve(np.eye(len(w)) + eta[:, None] * dense.Ho, eta * dense.xi)
    np.testing.assert_allclose(model.weights_vector(), w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("sizes, seed", CASES)
def test_lss_equals_dense_numpy(point, sizes, seed):
    spec = make_game(sizes, seed)
    w0 = _w0(spec, point)
    dense = Dense(spec, w0)
    for regularize, name in (("never", "lss"), ("always", "lss_reg")):
        model, hist = one_step(spec, w0, LSS(keras.optimizers.SGD(0.1), lambda_=0.1,
                                             regularize=regularize, tol=1e-7,
                                             max_iterations=12), 0.1)
        got = (w0 - model.weights_vector()) / 0.1
        expected = numpy_direction(name, dense, lambda_=0.1)
        np.testing.assert_allclose(got, expected, rtol=5e-4,
                                   atol=5e-4 * np.abs(expected).max())
        assert hist["regularized"][0] == (1.0 if regularize == "always" else 0.0)


def test_lss_auto_regularizes_where_h_is_singular():
    """Tandem: H = [[2, 2], [2, 2]] is singular; "auto" falls back to the regularised form
    (the reference notebook's branch for det H = 0); on a nonsingular game it does not."""
    model = tfgames.games.Tandem(x0=0.3, y0=-0.1)
    model.compile(optimizer=LSS(keras.optimizers.SGD(0.1), lambda_=0.1, max_iterations=4))
    hist = model.fit(tfgames.datasets.step_dataset(1), epochs=1, verbose=0).history
    assert hist["regularized"] == [1.0]
    x, y = 0.3, -0.1
    xi = np.array([2 * (x + y) - 2, 2 * (x + y) - 2])
    H = np.full((2, 2), 2.0)
    u = np.linalg.solve(H.T @ H + 0.1 * np.eye(2), H.T @ xi)
    expected = np.array([x, y]) - 0.1 * 0.5 * (xi + H.T @ u)
    np.testing.assert_allclose([model.x.numpy()[0], model.y.numpy()[0]], expected, rtol=1e-5)
    spec = make_game((1, 3), 0)
    _, hist = one_step(spec, _w0(spec, 0), LSS(keras.optimizers.SGD(0.1), tol=1e-5), 0.1)
    assert hist["regularized"] == [0.0]


@pytest.mark.parametrize("sizes, seed", CASES)
def test_lead_three_steps_equal_numpy(sizes, seed):
    """dir_i = xi_i - alpha sum_{j != i} (grad_i xi_j)^T (w_j,t - w_j,t-1); w_{-1} = w_0."""
    spec = make_game(sizes, seed)
    lr, alpha = 0.05, 0.6
    w = _w0(spec, 0)
    model, hist = one_step(spec, w, LEAD(keras.optimizers.SGD(lr), alpha=alpha), lr, steps=3)
    previous = w.copy()
    for _ in range(3):
        dense = Dense(spec, w)
        delta = w - previous
        direction = dense.xi - alpha * dense.Ho.T @ delta
        previous, w = w, w - lr * direction
    np.testing.assert_allclose(model.weights_vector(), w, rtol=1e-5, atol=1e-6)
    assert hist["hessian_products"][0] == len(sizes)
