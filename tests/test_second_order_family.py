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
@pytest.mark.parametrize("point", [0, 1, pytest.param(2, marks=pytest.mark.slow)])
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


def _numpy_p(dense, alpha, a, b):
    xi, la = dense.xi, dense.xi - alpha * dense.Ho @ dense.xi
    dot = (-alpha * dense.chi) @ la
    p1 = 1.0 if dot >= 0 else min(1.0, -a * (la @ la) / dot)
    p2 = (xi @ xi) if np.linalg.norm(xi) < b else 1.0
    return p1, p2


def test_sos_p_takes_both_branches_and_is_reported():
    """Points where p = p1 < 1 and where p = p2 < 1 (found with NumPy), and the metric is p."""
    spec = make_game((1, 3), 0)
    game = dict(spec, q=[np.zeros(4), np.zeros(4)])  # xi(0) = 0: small ||xi|| near 0
    cases = {}
    rng = np.random.default_rng(7)
    for _ in range(400):
        w = rng.standard_normal(4) * rng.choice([1.0, 0.1, 0.01])
        p1, p2 = _numpy_p(Dense(game, w), 1.0, 0.5, 0.5)
        kind = "p1" if p1 < min(1.0, p2) else "p2" if p2 < min(1.0, p1) else None
        if kind and kind not in cases:
            cases[kind] = (game, w, min(p1, p2))
    assert set(cases) == {"p1", "p2"}
    for game, w, p in cases.values():
        _, hist = one_step(game, w, SOS(keras.optimizers.SGD(0.1), alpha=1.0, b=0.5), 0.1)
        np.testing.assert_allclose(hist["sos_p"][0], p, rtol=1e-4)
        assert p < 1.0


@pytest.mark.parametrize("point", [0, pytest.param(1, marks=pytest.mark.slow)])
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

    def op(v):
        return [tf.linalg.matvec(tf.constant(A, tf.float32), v[0])]

    exact = np.linalg.solve(A, b)
    for solve in (solvers.conjugate_gradient, solvers.gmres):
        r = solve(op, [tf.constant(b, tf.float32)], [tf.constant(exact, tf.float32)],
                  tol=1e-4, max_iterations=10)
        assert int(r.iterations) == 0 and int(r.products) == 1 and bool(r.converged)
        r = solve(op, [tf.constant(b, tf.float32)], [tf.constant(5 * exact + 1, tf.float32)],
                  tol=1e-6, max_iterations=10)
        np.testing.assert_allclose(r.x[0].numpy(), exact, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("point", POINTS[:2])
@pytest.mark.parametrize("sizes", [(1, 3), (3, 1)])
def test_acgd_two_steps_equal_numpy(point, sizes):
    """ACGD: v <- beta v + (1 - beta) xi^2, eta = lr sqrt(1 - beta^t) / (sqrt(v) + eps),
    Delta = -(I + eta H_o)^{-1} eta xi, on a zero-sum game (CG)."""
    spec = make_game(sizes, 5, zero_sum=True)
    w = _w0(spec, point)
    lr, beta, eps = 0.05, 0.9, 1e-5
    model, _ = one_step(spec, w, ACGD(lr, beta=beta, epsilon=eps, tol=1e-7,
                                      max_iterations=10), lr, steps=2)
    v = np.zeros_like(w)
    for t in (1, 2):
        dense = Dense(spec, w)
        v = beta * v + (1 - beta) * dense.xi**2
        eta = lr * np.sqrt(1 - beta**t) / (np.sqrt(v) + eps)
        w = w - np.linalg.solve(np.eye(len(w)) + eta[:, None] * dense.Ho, eta * dense.xi)
    np.testing.assert_allclose(model.weights_vector(), w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("point", POINTS[:2])
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
    """l_1 = x y + x, l_2 = y: H = [[0, 1], [0, 0]] is singular and xi = (y + 1, 1) is not in
    its range, so GMRES cannot reach the tolerance and "auto" takes the reference notebook's
    regularised branch, u = (H^T H + lambda I)^{-1} H^T xi; "always" gives the same."""
    spec = dict(Q=[np.array([[0.0, 1.0], [1.0, 0.0]]), np.zeros((2, 2))],
                q=[np.array([1.0, 0.0]), np.array([0.0, 1.0])], c=[np.zeros(2)] * 2,
                sizes=[1, 1], zero_sum=False)
    w0 = np.array([0.3, -0.4])
    expected = numpy_direction("lss_reg", Dense(spec, w0), lambda_=0.1)
    for regularize in ("auto", "always"):
        model, hist = one_step(spec, w0, LSS(keras.optimizers.SGD(0.1), lambda_=0.1,
                                             regularize=regularize, max_iterations=4), 0.1)
        np.testing.assert_allclose((w0 - model.weights_vector()) / 0.1, expected, rtol=1e-5)
        assert hist["regularized"] == [1.0]


def test_lss_auto_keeps_the_plain_solve_on_consistent_singular_systems():
    """Tandem: H = [[2, 2], [2, 2]] is singular but xi lies in its range, so GMRES solves
    H u = xi exactly and dir = (xi + H^T u) / 2 = xi. (The notebook, testing det H = 0, would
    regularise here: a matrix-free solver cannot see the determinant; documented.)"""
    model = tfgames.games.Tandem(x0=0.3, y0=-0.1)
    model.compile(optimizer=LSS(keras.optimizers.SGD(0.1), lambda_=0.1, max_iterations=4))
    hist = model.fit(tfgames.datasets.step_dataset(1), epochs=1, verbose=0).history
    assert hist["regularized"] == [0.0]
    xi = 2 * (0.3 - 0.1) - 2
    np.testing.assert_allclose([model.x.numpy()[0], model.y.numpy()[0]],
                               [0.3 - 0.1 * xi, -0.1 - 0.1 * xi], rtol=1e-5)


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


# -- The reference notebooks' qualitative results on the standard games ---------------------

def _fit(model, optimizer, steps):
    model.compile(optimizer=optimizer)
    return model.fit(tfgames.datasets.step_dataset(steps), epochs=1, verbose=0).history


def _slow_unless(*default):
    """Parameters: the ones listed run by default, the others under the slow marker."""
    def mark(values):
        return [v if v in default else pytest.param(v, marks=pytest.mark.slow) for v in values]
    return mark


SHAPERS = {"nl": lambda a: keras.optimizers.SGD(a),
           "lola": lambda a: LOLA(keras.optimizers.SGD(a), alpha=a),
           "sos": lambda a: SOS(keras.optimizers.SGD(a), alpha=a)}


@pytest.mark.parametrize("seed", _slow_unless(0)([0, 1, 2]))
@pytest.mark.parametrize("method", _slow_unless("nl", "sos")(["nl", "lola", "sos"]))
def test_matching_pennies_lola_sos_converge_naive_cycles(seed, method):
    """Letcher et al.'s notebook: alpha = 1, theta ~ N(0, 1), 100 steps."""
    model = tfgames.games.MatchingPennies(
        theta0=np.random.default_rng(seed).standard_normal(2))
    model.compile(optimizer=SHAPERS[method](1.0))
    far = []
    for _ in range(4):
        model.fit(tfgames.datasets.step_dataset(25), epochs=1, verbose=0)
        far.append(np.abs(model.probabilities() - 0.5).max())
    if method == "nl":
        assert max(far) > 0.2 and far[-1] > 0.05, far  # it cycles around (1/2, 1/2)
    else:
        assert far[-1] < 0.01, far


@pytest.mark.parametrize("seed", _slow_unless(0)([0, 1, 2]))
@pytest.mark.parametrize("method", _slow_unless("sos")(["nl", "lola", "sos"]))
def test_ipd_lola_sos_cooperate_naive_defects(seed, method):
    """gamma = 0.96, alpha = 1, 100 steps: (1 - gamma) L is 2 at mutual defection, 1 at mutual
    cooperation."""
    model = tfgames.games.IteratedPrisonersDilemma(
        theta0=np.random.default_rng(seed).standard_normal((2, 5)))
    _fit(model, SHAPERS[method](1.0), 100)
    values = [0.04 * float(v) for v in model.compute_losses(None).values()]
    if method == "nl":
        assert min(values) > 1.9, values
    else:
        assert max(values) < 1.1, values


def test_ipd_exact_value_at_pure_policies():
    """(1 - gamma) L = 1 under mutual cooperation, 2 under mutual defection, and the sucker's
    payoff 3 (and 0 for the defector) when one always cooperates and the other defects."""
    big = 30.0
    for t1, t2, expected in [(big, big, (1, 1)), (-big, -big, (2, 2)), (big, -big, (3, 0))]:
        model = tfgames.games.IteratedPrisonersDilemma(theta0=[[t1] * 5, [t2] * 5])
        values = [0.04 * float(v) for v in model.compute_losses(None).values()]
        np.testing.assert_allclose(values, expected, atol=1e-4)


@pytest.mark.parametrize("seed", _slow_unless(0)([0, 1, 2]))
def test_tandem_sos_converges_where_lola_overshoots(seed):
    """alpha = 0.1, theta ~ N(0, 0.1^2), 30 steps: SOS reaches the fixed line x + y = 1,
    LOLA goes past it (to x + y ~ 4/3, where both players' losses are worse)."""
    x0, y0 = 0.1 * np.random.default_rng(seed).standard_normal(2)
    out = {}
    for method in ("lola", "sos"):
        model = tfgames.games.Tandem(x0=x0, y0=y0)
        _fit(model, SHAPERS[method](0.1), 30)
        out[method] = float(model.x.numpy()[0] + model.y.numpy()[0])
    assert abs(out["sos"] - 1.0) < 1e-3, out
    assert out["lola"] > 1.3, out


IMPOSSIBLE = {
    "gd": lambda a: keras.optimizers.SGD(a),
    "cgd": lambda a: CGD(keras.optimizers.SGD(a), alpha=a),
    "la": lambda a: LA(keras.optimizers.SGD(a), alpha=a),
    "lola": lambda a: LOLA(keras.optimizers.SGD(a), alpha=a),
    "sos": lambda a: SOS(keras.optimizers.SGD(a), alpha=a),
    "lead": lambda a: LEAD(keras.optimizers.SGD(a), alpha=0.6),
    "extragradient": lambda a: tfgames.Extragradient(keras.optimizers.SGD(a)),
    "consensus": lambda a: tfgames.Consensus(keras.optimizers.SGD(a), gamma=0.01),
}


@pytest.mark.parametrize("method", _slow_unless("gd", "sos")(list(IMPOSSIBLE)))
def test_impossibility_game_every_method_cycles(method):
    """Letcher 2020: step 0.05 from (0.5, 0.5), 400 steps: the iterates go round the origin
    (all four quadrants after the first 100 steps) without approaching it or settling."""
    model = tfgames.games.ImpossibilityGame(x0=0.5, y0=0.5)
    model.compile(optimizer=IMPOSSIBLE[method](0.05))
    points = []
    for _ in range(16):
        model.fit(tfgames.datasets.step_dataset(25), epochs=1, verbose=0)
        points.append((float(model.x.numpy()[0]), float(model.y.numpy()[0])))
    late = np.array(points[4:])
    quadrants = {(x > 0, y > 0) for x, y in late}
    assert len(quadrants) == 4, points
    assert np.hypot(*late.T).min() > 0.8, points
    assert np.abs(np.diff(late, axis=0)).max() > 0.3, points


@pytest.mark.slow
def test_impossibility_game_lss_and_hamiltonian_stop_at_non_nash_points():
    """Not cycling, and not Nash: Hamiltonian descent converges to (0, 0), a strict maximum of
    each player's own loss; LSS stops at (1/sqrt 3, 1/sqrt 3) where H^T H^{-1} = -I makes its
    direction vanish although xi != 0 (both as their equations predict)."""
    model = tfgames.games.ImpossibilityGame(x0=0.5, y0=0.5)
    _fit(model, HamiltonianGD(keras.optimizers.SGD(0.05)), 400)
    assert np.hypot(model.x.numpy()[0], model.y.numpy()[0]) < 1e-3
    model = tfgames.games.ImpossibilityGame(x0=0.5, y0=0.5)
    _fit(model, LSS(keras.optimizers.SGD(0.05)), 400)
    np.testing.assert_allclose([model.x.numpy()[0], model.y.numpy()[0]],
                               [3**-0.5, 3**-0.5], atol=1e-3)


@pytest.mark.parametrize("eta", _slow_unless(0.5)([0.2, 0.5, 1.0]))
def test_cgd_converges_on_bilinear_where_simultaneous_descent_diverges(eta):
    """f = x y, 100 steps of step eta: GD's distance grows as (1 + eta^2)^(t/2); CGD (CG) and
    GACGD (GMRES) with alpha = eta contract by 1/sqrt(1 + eta^2) per step."""
    start = np.sqrt(2.0)
    gd = tfgames.games.Bilinear()
    _fit(gd, keras.optimizers.SGD(eta), 100)
    np.testing.assert_allclose(gd.distance_to_equilibrium(), start * (1 + eta**2) ** 50,
                               rtol=1e-3)
    for opt in (CGD(keras.optimizers.SGD(eta), alpha=eta),
                GACGD(keras.optimizers.SGD(eta), alpha=eta)):
        model = tfgames.games.Bilinear()
        _fit(model, opt, 100)
        np.testing.assert_allclose(model.distance_to_equilibrium(),
                                   start * (1 + eta**2) ** -50, rtol=1e-2, atol=1e-12)


def test_dirac_gan_gd_spirals_out_cgd_and_lead_converge():
    """DiracGAN (Mescheder et al. 2018): H at (0, 0) has eigenvalues +-i/2."""
    gd = tfgames.games.DiracGAN()
    _fit(gd, keras.optimizers.SGD(0.5), 200)
    assert gd.distance_to_equilibrium() > np.sqrt(2)
    for opt in (CGD(keras.optimizers.SGD(0.5), alpha=0.5),
                LEAD(keras.optimizers.SGD(0.5, momentum=0.0), alpha=2.0)):
        model = tfgames.games.DiracGAN()
        _fit(model, opt, 200)
        assert model.distance_to_equilibrium() < 0.1, type(opt).__name__


# -- Serialisation, exact resume, tf.distribute, errors ---------------------------------------

MAKERS = {
    "la": lambda: LA(keras.optimizers.SGD(0.05), alpha=0.4),
    "lola": lambda: LOLA(keras.optimizers.RMSprop(0.01), alpha=0.4),
    "sos": lambda: SOS(keras.optimizers.Adam(0.01), alpha=0.4, a=0.3, b=0.2),
    "hgd": lambda: HamiltonianGD(keras.optimizers.SGD(0.05), two_sample=True),
    "cgd": lambda: CGD(keras.optimizers.SGD(0.05), alpha=0.4, solver="gmres", tol=1e-5,
                       atol=1e-9, max_iterations=3, warm_start=True),
    "gacgd": lambda: GACGD(keras.optimizers.Adam(0.01), alpha=0.4, max_iterations=3),
    "acgd": lambda: ACGD(0.01, beta=0.9, epsilon=1e-6, max_iterations=3),
    "acgd_schedule": lambda: ACGD(keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.5)),
    "lss": lambda: LSS(keras.optimizers.SGD(0.05), lambda_=0.2, regularize="always",
                       max_iterations=3, hvp_mode="double_backward"),
    "lead": lambda: LEAD(keras.optimizers.SGD(0.05, momentum=0.5), alpha=0.3),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_config_round_trip(name):
    opt = MAKERS[name]()
    config = opt.get_config()
    clone = type(opt).from_config(config)
    assert clone.get_config() == config
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is type(opt) and again.get_config() == config


@pytest.mark.parametrize("name", _slow_unless("cgd", "acgd", "lead")(
    ["la", "lola", "sos", "cgd", "gacgd", "acgd", "lss", "lead"]))
def test_save_load_resume_equals_uninterrupted(tmp_path, name, fixed_sum_order):
    """Saved optimizer state (warm starts, ACGD's mean squares, LEAD's previous parameters)
    makes 3 + 3 steps with a save/load in between equal 6 straight steps."""
    def model():
        return tfgames.games.QuadraticZeroSum(a=0.3, c=0.2, x0=[1.0, -0.5], y0=[0.3, 2.0])

    straight = model()
    straight.compile(optimizer=MAKERS[name]())
    straight.fit(tfgames.datasets.step_dataset(6), epochs=1, verbose=0)
    first = model()
    first.compile(optimizer=MAKERS[name]())
    first.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    assert type(resumed.optimizer) is type(first.optimizer)
    for a, b in zip(resumed.optimizer.variables, first.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    resumed.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)
    for a, b in zip(resumed.trainable_variables, straight.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_mirrored_strategy_equals_one_device():
    """MirroredStrategy on 2 logical CPUs equals one device on the same global batch for every
    method (the global xi and cross gradients are all-reduced before any product; the solvers
    unroll their loops there because TensorFlow allows no all-reduce inside a while_loop)."""
    import json
    import os
    import subprocess
    import sys
    here = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(here), here])}
    names = ["la", "lola", "sos", "hgd", "cgd", "gacgd", "acgd", "lss", "lead"]
    proc = subprocess.run(
        [sys.executable, os.path.join(here, "second_order_distributed_worker.py"),
         ",".join(names)], capture_output=True, text=True, env=env, timeout=1800)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line[len("RESULT "):]))
    assert set(results) == set(names), proc.stdout[-2000:] + proc.stderr[-4000:]
    for name in names:
        assert "error" not in results[name], (name, results[name].get("error"))
        single, mirrored, init = (np.concatenate([np.ravel(w) for w in results[name][k]])
                                  for k in ("single", "mirrored", "init"))
        assert np.abs(single - init).max() > 1e-3, name
        np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("make, match", [
    (lambda: LA(keras.optimizers.SGD(0.1), alpha=float("nan")),
     r"`alpha` must be a finite number > 0. Received: alpha=nan"),
    (lambda: LOLA(keras.optimizers.SGD(0.1), alpha=-1), r"`alpha` must be .*alpha=-1"),
    (lambda: SOS(keras.optimizers.SGD(0.1), a=1.5), r"`a` must be in \(0, 1\).*a=1.5"),
    (lambda: SOS(keras.optimizers.SGD(0.1), b=0), r"`b` must be a finite number > 0.*b=0"),
    (lambda: CGD(keras.optimizers.SGD(0.1), solver="bicg"),
     r"`solver` must be one of \('cg', 'gmres', 'bicgstab'\). Received: solver='bicg'"),
    (lambda: CGD(keras.optimizers.SGD(0.1), max_iterations=0),
     r"`max_iterations` must be an integer >= 1.*max_iterations=0"),
    (lambda: GACGD(keras.optimizers.SGD(0.1), tol=-1.0), r"`tol` must be .*>= 0.*tol=-1.0"),
    (lambda: ACGD(0.01, beta=1.0), r"`beta` must be in \[0, 1\). Received: beta=1.0"),
    (lambda: ACGD("fast"), r"`learning_rate` must be a finite number > 0.*'fast'"),
    (lambda: LSS(keras.optimizers.SGD(0.1), regularize="sometimes"),
     r"`regularize` must be one of .*regularize='sometimes'"),
    (lambda: LEAD(keras.optimizers.SGD(0.1), alpha=-0.5), r"`alpha` must be .*>= 0.*-0.5"),
])
def test_invalid_arguments_are_explained(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_numpy_scalars_are_accepted():
    opt = SOS(keras.optimizers.SGD(0.1), alpha=np.float32(0.5), a=np.float64(0.4))
    assert opt.alpha == 0.5 and isinstance(opt.get_config()["alpha"], float)
    assert CGD(keras.optimizers.SGD(0.1), max_iterations=np.int64(4)).max_iterations == 4


def test_cgd_refuses_three_players_and_points_to_gacgd():
    model = tfgames.games.CyclicThreePlayer()
    game = tfgames.Game(model.players(), lambda: model.compute_losses(None))
    with pytest.raises(ValueError, match="CGD is defined for two players.*3 players.*GACGD"):
        CGD(keras.optimizers.SGD(0.1)).apply_game(game)
