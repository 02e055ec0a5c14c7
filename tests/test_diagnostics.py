"""tfgames.diagnostics: Krylov spectra against dense NumPy eigenvalues (closed-form Jacobians and
finite differences of xi), path angle, Hamiltonian and duality gap against closed forms."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
from tfgames import diagnostics as dg

linear_sum_assignment = pytest.importorskip("scipy.optimize").linear_sum_assignment


def _match(found, expected):
    """Largest distance between two equally long sets of (complex) numbers, optimally paired."""
    found, expected = np.asarray(found, complex), np.asarray(expected, complex)
    cost = np.abs(found[:, None] - expected[None, :])
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols].max()


class LinearGame(tfgames.GameModel):
    """xi(w) = M w + c exactly: l_x = 1/2 x^T P x + x^T Q y + c_x^T x,
    l_y = 1/2 y^T R y + y^T U x + c_y^T y (P, R symmetric), so H = [[P, Q], [U, R]]."""

    def __init__(self, h, n_x, c=None, w0=None, **kwargs):
        super().__init__(**kwargs)
        h = np.asarray(h, np.float64)
        n = h.shape[0]
        self.n_x = n_x
        self.p, self.q = h[:n_x, :n_x], h[:n_x, n_x:]
        self.u, self.r = h[n_x:, :n_x], h[n_x:, n_x:]
        assert np.allclose(self.p, self.p.T) and np.allclose(self.r, self.r.T)
        c = np.zeros(n) if c is None else np.asarray(c, np.float64)
        w0 = np.zeros(n) if w0 is None else np.asarray(w0, np.float64)
        self.c = c
        self.x = self.add_weight(shape=(n_x,), dtype="float64", name="x",
                                 initializer=keras.initializers.Constant(w0[:n_x]))
        self.y = self.add_weight(shape=(n - n_x,), dtype="float64", name="y",
                                 initializer=keras.initializers.Constant(w0[n_x:]))

    def players(self):
        return {"x": self.x, "y": self.y}

    def compute_losses(self, data, training=False):
        x, y = tf.convert_to_tensor(self.x), tf.convert_to_tensor(self.y)
        mv, dot = tf.linalg.matvec, lambda a, b: tf.reduce_sum(a * b)
        c_x, c_y = self.c[: self.n_x], self.c[self.n_x:]
        return {
            "x": 0.5 * dot(x, mv(self.p, x)) + dot(x, mv(self.q, y)) + dot(c_x, x),
            "y": 0.5 * dot(y, mv(self.r, y)) + dot(y, mv(self.u, x)) + dot(c_y, y),
        }


def _random_game_jacobian(rng, n, n_x):
    h = rng.normal(size=(n, n)) / np.sqrt(n)
    h[:n_x, :n_x] = 0.5 * (h[:n_x, :n_x] + h[:n_x, :n_x].T)
    h[n_x:, n_x:] = 0.5 * (h[n_x:, n_x:] + h[n_x:, n_x:].T)
    return h


def test_full_spectra_match_dense_eigenvalues_200_parameters():
    rng = np.random.default_rng(0)
    n, n_x = 200, 90
    h = _random_game_jacobian(rng, n, n_x)
    model = LinearGame(h, n_x, w0=rng.normal(size=n))
    operator = dg.JacobianOperator.from_model(model, None)
    spectrum = dg.jacobian_eigenvalues(operator, k=n, krylov_dim=n)
    assert spectrum.dim == n and spectrum.krylov_dim == n
    assert _match(spectrum.eigenvalues, np.linalg.eigvals(h)) < 1e-6
    sym = dg.symmetric_eigenvalues(operator, k=n, krylov_dim=n)
    np.testing.assert_allclose(np.sort(sym.eigenvalues), np.linalg.eigvalsh(0.5 * (h + h.T)),
                               atol=1e-6)
    anti = dg.antisymmetric_eigenvalues(operator, k=n, krylov_dim=n)
    assert np.all(anti.eigenvalues.real == 0.0)
    assert _match(anti.eigenvalues, np.linalg.eigvals(0.5 * (h - h.T))) < 1e-6
    assert operator.products == 3 * n


def test_partial_spectra_converge_to_the_extreme_eigenvalues():
    rng = np.random.default_rng(1)
    n = 120
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    # H = Q T Q^T with 2x2 blocks [[a, b], [-b, a]]: eigenvalues a +- i b.
    a = np.concatenate([[6.0, 5.0, 4.0], rng.uniform(-1, 1, n // 2 - 3)])
    b = np.concatenate([[3.0, 7.0, 1.0], rng.uniform(-0.5, 0.5, n // 2 - 3)])
    t = np.zeros((n, n))
    for j in range(n // 2):
        t[2 * j:2 * j + 2, 2 * j:2 * j + 2] = [[a[j], b[j]], [-b[j], a[j]]]
    h = q @ t @ q.T
    # the players' own blocks of a game Jacobian are symmetric; make them so, keep H's form
    n_x = 60
    h[:n_x, :n_x] = 0.5 * (h[:n_x, :n_x] + h[:n_x, :n_x].T)
    h[n_x:, n_x:] = 0.5 * (h[n_x:, n_x:] + h[n_x:, n_x:].T)
    model = LinearGame(h, n_x)
    operator = dg.JacobianOperator.from_model(model, None)
    true = np.linalg.eigvals(h)
    top = true[np.argsort(-np.abs(true))][:4]
    spectrum = dg.jacobian_eigenvalues(operator, k=4, krylov_dim=60)
    assert _match(spectrum.eigenvalues, top) < 1e-6
    assert spectrum.residuals.max() < 1e-6
    a_true = np.linalg.eigvals(0.5 * (h - h.T))
    anti = dg.antisymmetric_eigenvalues(operator, k=4, krylov_dim=60)
    assert _match(anti.eigenvalues, a_true[np.argsort(-np.abs(a_true))][:4]) < 1e-6


def test_partial_symmetric_spectrum_lanczos():
    # S = H (symmetric game Jacobian, a potential game) with distinct extreme eigenvalues; a
    # Krylov method finds each distinct eigenvalue once (multiplicities are not resolved).
    rng = np.random.default_rng(5)
    n = 120
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    d = np.concatenate([[10.0, 9.0, 8.0, -10.0, -9.0], rng.uniform(-1, 1, n - 5)])
    h = q @ np.diag(d) @ q.T
    model = LinearGame(h, 50)
    sym = dg.symmetric_eigenvalues(model, None, k=3, which="LR", krylov_dim=50)
    np.testing.assert_allclose(sym.eigenvalues, [10.0, 9.0, 8.0], atol=1e-6)
    assert sym.residuals.max() < 1e-6
    low = dg.symmetric_eigenvalues(model, None, k=2, which="SR", krylov_dim=50)
    np.testing.assert_allclose(low.eigenvalues, [-10.0, -9.0], atol=1e-6)
    big = dg.symmetric_eigenvalues(model, None, k=4, which="LM", krylov_dim=50)
    np.testing.assert_allclose(np.sort(big.eigenvalues), [-10.0, -9.0, 9.0, 10.0], atol=1e-6)


class TanhGame(tfgames.GameModel):
    """A small non-linear GAN-like game (tanh MLPs, float64, fixed data and noise)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.RandomNormal(stddev=0.7, seed=4)
        # float64 inputs: a float32 Input would round g(z) on its way into d, and the finite
        # differences of xi would see that rounding (relative error ~1e-8 / step).
        self.g = keras.Sequential([keras.Input((2,), dtype="float64"), keras.layers.Dense(
            4, activation="tanh", dtype="float64", kernel_initializer=init,
            bias_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=5)),
            keras.layers.Dense(2, dtype="float64", kernel_initializer=init)])
        self.d = keras.Sequential([keras.Input((2,), dtype="float64"), keras.layers.Dense(
            4, activation="tanh", dtype="float64", kernel_initializer=init,
            bias_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=6)),
            keras.layers.Dense(1, dtype="float64", kernel_initializer=init)])

    def players(self):
        return {"d": self.d, "g": self.g}

    def compute_losses(self, data, training=False):
        x, z = data
        real, fake = self.d(x), self.d(self.g(z))
        sp = tf.math.softplus
        return {"d": tf.reduce_mean(sp(-real)) + tf.reduce_mean(sp(fake)),
                "g": tf.reduce_mean(sp(-fake))}


def _finite_difference_jacobian(model, data, step=1e-5):
    """Central differences of xi (first derivatives only, no second-order autodiff)."""
    variables = dg._variables_of(model)
    base = dg.parameter_snapshot(model)
    flat0 = np.concatenate([b.ravel() for b in base])

    def xi_at(flat):
        start = 0
        for v, b in zip(variables, base):
            v.assign(flat[start:start + b.size].reshape(b.shape))
            start += b.size
        return np.concatenate([np.asarray(g).ravel()
                               for g in model.make_game(data).gradient()[1]])

    cols = []
    for j in range(flat0.size):
        e = np.zeros_like(flat0)
        e[j] = step
        cols.append((xi_at(flat0 + e) - xi_at(flat0 - e)) / (2 * step))
    xi_at(flat0)
    return np.stack(cols, axis=1)


def test_nonlinear_game_against_finite_differences():
    model = TanhGame()
    rng = np.random.default_rng(2)
    data = (rng.normal(size=(16, 2)), rng.normal(size=(16, 2)))
    h_fd = _finite_difference_jacobian(model, data)
    n = h_fd.shape[0]
    before = dg.parameter_snapshot(model)
    operator = dg.JacobianOperator.from_model(model, data)
    np.testing.assert_allclose(operator.dense(), h_fd, atol=1e-8)
    spectrum = dg.jacobian_eigenvalues(operator, k=n, krylov_dim=n)
    assert _match(spectrum.eigenvalues, np.linalg.eigvals(h_fd)) < 1e-6
    double_backward = dg.JacobianOperator.from_model(model, data, mode="double_backward")
    np.testing.assert_allclose(double_backward.dense(), h_fd, atol=1e-8)
    game_op = dg.JacobianOperator.from_game(model.make_game(data))
    spectrum = dg.jacobian_eigenvalues(game_op, k=6, krylov_dim=n)
    true = np.linalg.eigvals(h_fd)
    # the 6 largest |lambda| close under conjugation here (5 would split a conjugate pair)
    assert _match(spectrum.eigenvalues, true[np.argsort(-np.abs(true))][:6]) < 1e-6
    for a, b in zip(before, dg.parameter_snapshot(model)):
        np.testing.assert_array_equal(a, b)


def _linear_field(rng, n_x, n_y, bilinear_only):
    b = rng.normal(size=(n_x, n_y))
    p = np.zeros((n_x, n_x)) if bilinear_only else np.diag(rng.uniform(0.5, 2.0, n_x))
    r = np.zeros((n_y, n_y)) if bilinear_only else np.diag(rng.uniform(0.5, 2.0, n_y))
    # zero-sum min_x max_y f, f = 1/2 x^T P x + x^T B y - 1/2 y^T R y: xi = M w
    return np.block([[p, b], [-b.T, r]])


@pytest.mark.parametrize("bilinear_only", [True, False])
def test_path_angle_and_hamiltonian_closed_form(bilinear_only):
    rng = np.random.default_rng(3)
    n_x, n_y = 3, 2
    m = _linear_field(rng, n_x, n_y, bilinear_only)
    w0 = rng.normal(size=n_x + n_y)
    model = LinearGame(m, n_x, w0=w0)
    start = dg.parameter_snapshot(model)
    end = [np.zeros(n_x), np.zeros(n_y)]  # the equilibrium
    alphas = np.array([-0.5, 0.0, 0.3, 0.9, 1.2, 1.5])
    result = dg.path_angle(model, None, start=start, end=end, alphas=alphas)
    delta = -w0
    expected = [delta @ (m @ (w0 + a * delta)) / (np.linalg.norm(delta)
                                                   * np.linalg.norm(m @ (w0 + a * delta)))
                for a in alphas]
    np.testing.assert_allclose(result.cosine, expected, atol=1e-12)
    np.testing.assert_allclose(result.xi_norm,
                               [np.linalg.norm(m @ (w0 + a * delta)) for a in alphas], rtol=1e-12)
    if bilinear_only:  # pure rotation: the field is orthogonal to the path everywhere
        np.testing.assert_allclose(result.cosine, 0.0, atol=1e-12)
    else:  # sign(1 - alpha) * constant, negative before the equilibrium
        c = -w0 @ m @ w0 / (np.linalg.norm(w0) * np.linalg.norm(m @ w0))
        np.testing.assert_allclose(result.cosine, np.sign(1 - alphas) * c, atol=1e-12)
        assert c < 0
    for a, b in zip(start, dg.parameter_snapshot(model)):  # parameters restored
        np.testing.assert_array_equal(a, b)
    values = dg.hamiltonian(model)
    xi = m @ w0
    assert values["xi_squared_norm"] == pytest.approx(xi @ xi, rel=1e-12)
    assert values["hamiltonian"] == pytest.approx(0.5 * xi @ xi, rel=1e-12)
    assert values["xi_squared_norm/x"] == pytest.approx(xi[:n_x] @ xi[:n_x], rel=1e-12)
    # a path between two general points
    end2 = [rng.normal(size=n_x), rng.normal(size=n_y)]
    w1 = np.concatenate(end2)
    result = dg.path_angle(model, None, start=start, end=end2, alphas=alphas)
    d = w1 - w0
    expected = [d @ (m @ (w0 + a * d)) / (np.linalg.norm(d) * np.linalg.norm(m @ (w0 + a * d)))
                for a in alphas]
    np.testing.assert_allclose(result.cosine, expected, atol=1e-12)


class ZeroSumQuadratic(tfgames.GameModel):
    """f(x, y) = 1/2 x^T A x + x^T B y - 1/2 y^T C y, min over x, max over y."""

    def __init__(self, a, b, c, x0, y0, **kwargs):
        super().__init__(**kwargs)
        self.a, self.b, self.c = a, b, c
        self.x = self.add_weight(shape=x0.shape, dtype="float64", name="x",
                                 initializer=keras.initializers.Constant(x0))
        self.y = self.add_weight(shape=y0.shape, dtype="float64", name="y",
                                 initializer=keras.initializers.Constant(y0))

    def players(self):
        return {"x": self.x, "y": self.y}

    def compute_losses(self, data, training=False):
        x, y = tf.convert_to_tensor(self.x), tf.convert_to_tensor(self.y)
        mv, dot = tf.linalg.matvec, lambda u, v: tf.reduce_sum(u * v)
        f = 0.5 * dot(x, mv(self.a, x)) + dot(x, mv(self.b, y)) - 0.5 * dot(y, mv(self.c, y))
        return tfgames.zero_sum(f, min_player="x", max_player="y")


def _spd(rng, n):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q @ np.diag(rng.uniform(1.0, 2.0, n)) @ q.T


def test_duality_gap_closed_form():
    rng = np.random.default_rng(4)
    a, c = _spd(rng, 3), _spd(rng, 2)
    b = 0.5 * rng.normal(size=(3, 2))
    x0, y0 = rng.normal(size=3), rng.normal(size=2)
    model = ZeroSumQuadratic(a, b, c, x0, y0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    result = dg.duality_gap(model, None, min_player="x", max_player="y", steps=300,
                            optimizer=keras.optimizers.SGD(0.2))
    max_closed = 0.5 * x0 @ (a + b @ np.linalg.solve(c, b.T)) @ x0
    min_closed = -0.5 * y0 @ (c + b.T @ np.linalg.solve(a, b)) @ y0
    f0 = 0.5 * x0 @ a @ x0 + x0 @ b @ y0 - 0.5 * y0 @ c @ y0
    assert result.value == pytest.approx(f0, abs=1e-12)
    assert result.max_value == pytest.approx(max_closed, abs=1e-9)
    assert result.min_value == pytest.approx(min_closed, abs=1e-9)
    assert result.gap == pytest.approx(max_closed - min_closed, abs=1e-9)
    np.testing.assert_array_equal(np.asarray(model.x), x0)
    np.testing.assert_array_equal(np.asarray(model.y), y0)
    # few steps: a lower bound of the gap
    short = dg.duality_gap(model, None, min_player="x", max_player="y", steps=2,
                           optimizer=lambda: keras.optimizers.SGD(0.2))
    assert 0 < short.gap < result.gap


def test_duality_gap_rejects_non_zero_sum(tiny_gan):
    data = tf.zeros((8, 2))
    with pytest.raises(ValueError, match="duality_gap needs a zero-sum game"):
        dg.duality_gap(tiny_gan, data, min_player="generator", max_player="discriminator",
                       steps=1)
    with pytest.raises(ValueError, match=r"`min_player` must name a player of the model"):
        dg.duality_gap(tiny_gan, data, min_player="g", max_player="discriminator", steps=1)


def test_bad_arguments():
    model = LinearGame(np.eye(4), 2)
    with pytest.raises(ValueError, match=r"Need k <= krylov_dim <= the number of parameters \(4\)"):
        dg.jacobian_eigenvalues(model, k=2, krylov_dim=5)
    with pytest.raises(ValueError, match=r"`which` must be one of"):
        dg.symmetric_eigenvalues(model, k=2, which="LI")
    with pytest.raises(ValueError, match="same point"):
        s = dg.parameter_snapshot(model)
        dg.path_angle(model, start=s, end=s)
    with pytest.raises(ValueError, match=r"`every` must be an integer >= 1. Received: every=0"):
        dg.GameDiagnostics(every=0)


def test_callback_records_without_changing_training(tiny_gan, fixed_sum_order):
    from conftest import TinyGAN, real_batches

    data = next(iter(real_batches(1, batch=16)))

    def train(with_callback):
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.05)))
        callback = dg.GameDiagnostics(data, every=2, k=3, krylov_dim=6, path_angle=True,
                                      alphas=[0.0, 1.0])
        model.fit(real_batches(5, batch=16), epochs=1, verbose=0,
                  callbacks=[callback] if with_callback else [])
        return model, callback

    plain, _ = train(False)
    watched, callback = train(True)
    for a, b in zip(plain.weights, watched.weights):  # diagnostics did not perturb training
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert [e["step"] for e in callback.history] == [0, 2, 4, 5]
    for entry in callback.history:
        assert entry["H"].eigenvalues.shape == (3,)
        assert np.all(entry["A"].eigenvalues.real == 0)
        assert entry["hamiltonian"] == pytest.approx(0.5 * entry["xi_squared_norm"])
    assert callback.path_angle.cosine.shape == (2,)
