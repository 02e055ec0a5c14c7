"""NumPy float64 transcriptions of the papers' updates: the one independent oracle of the tests.

Every game optimizer's first steps are checked against these (see ``registry.py``). A game is
given by its simultaneous gradient ``field(w)`` and game Jacobian ``jacobian(w)`` in closed
form; an oracle is an object with ``step(w) -> w`` that keeps its own state (moments, the
previous direction, the step counter), so that a trajectory is ``[w_1, ..., w_T]``.

Conventions are Keras' where an inner Keras optimizer is wrapped: Adam adds epsilon to
sqrt(v) and folds the bias corrections into the step; RMSprop divides by sqrt(v + epsilon).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Field = Callable[[np.ndarray], np.ndarray]


# -- games in closed form --------------------------------------------------------------------------
@dataclass(frozen=True)
class QuadraticGame:
    """min_x max_y f = a/2 |x|^2 + x^T B y - c/2 |y|^2 (``tfgames.games.QuadraticZeroSum``)."""

    a: float
    c: float
    B: np.ndarray

    def field(self, w: np.ndarray) -> np.ndarray:
        k = len(self.B)
        x, y = w[:k], w[k:]
        return np.concatenate([self.a * x + self.B @ y, -self.B.T @ x + self.c * y])

    def jacobian(self, w: np.ndarray) -> np.ndarray:
        k = len(self.B)
        return np.block([[self.a * np.eye(k), self.B], [-self.B.T, self.c * np.eye(k)]])

    def off_diagonal(self, w: np.ndarray) -> np.ndarray:
        """H_o: H with its diagonal (own-player) blocks zeroed."""
        k, jac = len(self.B), self.jacobian(w).copy()
        jac[:k, :k] = jac[k:, k:] = 0.0
        return jac

    def chi(self, w: np.ndarray) -> np.ndarray:
        """LOLA's chi_i = sum_{j != i} Hess(l_j)[i, j] grad_j l_i with l_x = f, l_y = -f:
        chi_x = (-B)(B^T x - c y), chi_y = B^T (-(a x + B y))."""
        k = len(self.B)
        x, y = w[:k], w[k:]
        return np.concatenate([-self.B @ (self.B.T @ x - self.c * y),
                               -self.B.T @ (self.a * x + self.B @ y)])


BILINEAR = QuadraticGame(0.0, 0.0, np.array([[1.0]]))  # f = x * y


# -- inner first-order optimizers ------------------------------------------------------------------
class SGD:
    """w <- w - lr g."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, w, g, lr=None):
        return w - (self.lr if lr is None else lr) * g


class Adam:
    """Keras' Adam: m, v moments; w <- w - lr sqrt(1 - b2^t)/(1 - b1^t) m / (sqrt(v) + eps)."""

    def __init__(self, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7) -> None:
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m = self.v = 0.0
        self.t = 0

    def step(self, w, g, lr=None):
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        lr = self.lr if lr is None else lr
        alpha = lr * np.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        return w - alpha * self.m / (np.sqrt(self.v) + self.eps)


class RMSprop:
    """Keras' RMSprop: v <- rho v + (1 - rho) g^2; w <- w - lr g / sqrt(v + eps)."""

    def __init__(self, lr: float, rho: float = 0.9, eps: float = 1e-7) -> None:
        self.lr, self.rho, self.eps = lr, rho, eps
        self.v = 0.0

    def step(self, w, g, lr=None):
        self.v = self.rho * self.v + (1 - self.rho) * g * g
        return w - (self.lr if lr is None else lr) * g / np.sqrt(self.v + self.eps)


# -- game methods ----------------------------------------------------------------------------------
class Simultaneous:
    """Simultaneous gradient descent: w <- inner(w, xi(w))."""

    def __init__(self, game, inner) -> None:
        self.game, self.inner = game, inner

    def step(self, w):
        return self.inner.step(w, self.game.field(w))


class SGAMethod:
    """Balduzzi et al. (ICML 2018): dir = xi + lambda A^T xi, A^T xi = (H^T xi - H xi)/2,
    lambda = sign(<xi, H^T xi> <A^T xi, H^T xi> / d + eps) |lambda_0| when aligned."""

    def __init__(self, game, inner, lambda_=1.0, use_signs=True, epsilon=0.1, d=None) -> None:
        self.game, self.inner = game, inner
        self.lambda_, self.use_signs, self.epsilon, self.d = lambda_, use_signs, epsilon, d

    def step(self, w):
        xi, jac = self.game.field(w), self.game.jacobian(w)
        ht_xi = jac.T @ xi
        at_xi = 0.5 * (ht_xi - jac @ xi)
        lam = self.lambda_
        if self.use_signs:
            d = len(w) if self.d is None else self.d
            lam = np.sign((xi @ ht_xi) * (at_xi @ ht_xi) / d + self.epsilon) * abs(lam)
        return self.inner.step(w, xi + lam * at_xi)


class ConsensusMethod:
    """Mescheder et al. (NeurIPS 2017): dir = xi + gamma H^T xi."""

    def __init__(self, game, inner, gamma=1.0) -> None:
        self.game, self.inner, self.gamma = game, inner, gamma

    def step(self, w):
        xi = self.game.field(w)
        return self.inner.step(w, xi + self.gamma * self.game.jacobian(w).T @ xi)


class OGDMethod:
    """Daskalakis et al. (ICLR 2018): w <- w - 2 lr g_t + lr g_{t-1}; g_{-1} = g_0 ("plain")
    or 0 ("double")."""

    def __init__(self, game, lr, first_step="plain") -> None:
        self.game, self.lr, self.first_step, self.previous = game, lr, first_step, None

    def step(self, w):
        g = self.game.field(w)
        if self.previous is None:
            self.previous = g if self.first_step == "plain" else np.zeros_like(g)
        w = w - 2 * self.lr * g + self.lr * self.previous
        self.previous = g
        return w


class AdamirrorMethod:
    """Daskalakis et al. (ICLR 2018), Algorithm 1 (optimistic Adam) on Adam's bias-corrected
    direction d_t = m^_t / (sqrt(v^_t) + eps): w <- w - 2 lr d_t + lr d_{t-1}."""

    def __init__(self, game, lr, b1=0.9, b2=0.999, eps=1e-7, first_step="plain") -> None:
        self.game, self.lr, self.b1, self.b2, self.eps = game, lr, b1, b2, eps
        self.first_step, self.previous = first_step, None
        self.m = self.v = 0.0
        self.t = 0

    def step(self, w):
        g = self.game.field(w)
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        d = (self.m / (1 - self.b1**self.t)) / (np.sqrt(self.v / (1 - self.b2**self.t)) + self.eps)
        if self.previous is None:
            self.previous = d if self.first_step == "plain" else np.zeros_like(d)
        w = w - 2 * self.lr * d + self.lr * self.previous
        self.previous = d
        return w


class ExtragradientMethod:
    """Korpelevich (1976) / Gidel et al. (ICLR 2019): w_{+1/2} = inner(w, F(w)) with step
    lr_e, w <- inner(w, F(w_{+1/2})); ``past``: Popov (1980), F(w) replaced by the last
    F(w_{-1/2}) (0 at the first step). Both half-steps advance the inner optimizer."""

    def __init__(self, game, inner, lr_e=None, past=False) -> None:
        self.game, self.inner, self.lr_e, self.past = game, inner, lr_e, past
        self.last = None

    def step(self, w):
        if self.last is None:
            self.last = np.zeros_like(w)
        half = self.inner.step(w, self.last if self.past else self.game.field(w), self.lr_e)
        self.last = self.game.field(half)
        return self.inner.step(w, self.last)


class LookaheadMethod:
    """Chavdarova et al. (ICLR 2021): every k steps slow <- slow + alpha (fast - slow),
    fast <- slow."""

    def __init__(self, base, k=5, alpha=0.5) -> None:
        self.base, self.k, self.alpha = base, k, alpha
        self.slow, self.t = None, 0

    def step(self, w):
        if self.slow is None:
            self.slow = w.copy()
        w = self.base.step(w)
        self.t += 1
        if self.t % self.k == 0:
            self.slow = self.slow + self.alpha * (w - self.slow)
            w = self.slow.copy()
        return w


def trajectory(method, w0: np.ndarray, steps: int) -> np.ndarray:
    """``[w_1, ..., w_steps]`` of ``method`` from ``w0`` (float64)."""
    w, out = np.asarray(w0, dtype=np.float64), []
    for _ in range(steps):
        w = method.step(w)
        out.append(w)
    return np.array(out)


class PerPlayerMethod:
    """Each player its own first-order optimizer on its block of xi. ``order`` is None for
    simultaneous steps, or ``[(player index, consecutive steps), ...]`` for a k:1 cycle in
    which only the active player moves (its optimizer's state advances only then)."""

    def __init__(self, game, blocks, inners, order=None) -> None:
        self.game, self.blocks, self.inners, self.order, self.t = game, blocks, inners, order, 0

    def step(self, w):
        g, out = self.game.field(w), w.copy()
        active = range(len(self.blocks))
        if self.order is not None:
            cycle = [p for p, k in self.order for _ in range(k)]
            active = [cycle[self.t % len(cycle)]]
        for p in active:
            block = self.blocks[p]
            out[block] = self.inners[p].step(w[block], g[block])
        self.t += 1
        return out


@dataclass(frozen=True)
class FieldGame:
    """A game given by its simultaneous gradient alone (first-order oracles need nothing else)."""

    field: Field


class HeavyBall:
    """Polyak's heavy ball, simultaneous: w <- w - lr xi(w) + beta (w - w_prev), w_prev = w_0 at
    the first step (negative beta: Gidel et al., AISTATS 2019)."""

    def __init__(self, game, lr, beta) -> None:
        self.game, self.lr, self.beta, self.previous = game, lr, beta, None

    def step(self, w):
        previous = w if self.previous is None else self.previous
        self.previous = w
        return w - self.lr * self.game.field(w) + self.beta * (w - previous)


class FromTrajectory:
    """An oracle given as ``trajectory(field, w0, steps) -> [w_1, ..., w_steps]`` (a paper's
    update transcribed as a loop): steps through the precomputed trajectory."""

    def __init__(self, game, trajectory_fn, horizon: int = 16) -> None:
        self.game, self.fn, self.horizon, self.out = game, trajectory_fn, horizon, None

    def step(self, w):
        if self.out is None:
            self.out = iter(self.fn(self.game.field, w, self.horizon))
        return next(self.out)


class OpponentShaping:
    """Letcher et al. (ICLR 2019): LA = xi - alpha H_o xi; LOLA = LA - alpha chi; SOS = LA -
    p alpha chi with p = min(p1, p2), p1 = 1 if <-alpha chi, LA> >= 0 else
    min(1, -a ||LA||^2 / <-alpha chi, LA>), p2 = ||xi||^2 if ||xi|| < b else 1."""

    def __init__(self, game, inner, method, alpha=1.0, a=0.5, b=0.1) -> None:
        self.game, self.inner, self.method = game, inner, method
        self.alpha, self.a, self.b = alpha, a, b

    def step(self, w):
        xi = self.game.field(w)
        la = xi - self.alpha * self.game.off_diagonal(w) @ xi
        if self.method == "la":
            return self.inner.step(w, la)
        chi = self.alpha * self.game.chi(w)
        if self.method == "lola":
            return self.inner.step(w, la - chi)
        dot = (-chi) @ la
        p1 = 1.0 if dot >= 0 else min(1.0, -self.a * (la @ la) / dot)
        p2 = (xi @ xi) if np.linalg.norm(xi) < self.b else 1.0
        return self.inner.step(w, la - min(p1, p2) * chi)


class HamiltonianMethod:
    """Balduzzi et al. (2018) / Loizou et al. (2020): dir = grad 1/2 ||xi||^2 = H^T xi."""

    def __init__(self, game, inner) -> None:
        self.game, self.inner = game, inner

    def step(self, w):
        return self.inner.step(w, self.game.jacobian(w).T @ self.game.field(w))


class CompetitiveMethod:
    """Schaefer & Anandkumar (NeurIPS 2019), linearised n-player form: dir =
    (I + alpha H_o)^{-1} xi."""

    def __init__(self, game, inner, alpha) -> None:
        self.game, self.inner, self.alpha = game, inner, alpha

    def step(self, w):
        system = np.eye(len(w)) + self.alpha * self.game.off_diagonal(w)
        return self.inner.step(w, np.linalg.solve(system, self.game.field(w)))


class ACGDMethod:
    """Schaefer, Zheng & Anandkumar (ICML 2020): v <- beta v + (1 - beta) xi^2,
    eta = lr sqrt(1 - beta^t) / (sqrt(v) + eps), w <- w - (I + eta H_o)^{-1} eta xi."""

    def __init__(self, game, lr, beta=0.99, eps=1e-8) -> None:
        self.game, self.lr, self.beta, self.eps = game, lr, beta, eps
        self.v, self.t = 0.0, 0

    def step(self, w):
        xi = self.game.field(w)
        self.t += 1
        self.v = self.beta * self.v + (1 - self.beta) * xi**2
        eta = self.lr * np.sqrt(1 - self.beta**self.t) / (np.sqrt(self.v) + self.eps)
        system = np.eye(len(w)) + eta[:, None] * self.game.off_diagonal(w)
        return w - np.linalg.solve(system, eta * xi)


class LSSMethod:
    """Mazumdar, Jordan & Sastry (2019): dir = (xi + H^T H^{-1} xi) / 2."""

    def __init__(self, game, inner) -> None:
        self.game, self.inner = game, inner

    def step(self, w):
        xi, jac = self.game.field(w), self.game.jacobian(w)
        return self.inner.step(w, 0.5 * (xi + jac.T @ np.linalg.solve(jac, xi)))


class LEADMethod:
    """Askari Hemmat et al. (TMLR 2023): dir = xi - alpha H_o^T (w_t - w_{t-1}), w_{-1} = w_0."""

    def __init__(self, game, inner, alpha) -> None:
        self.game, self.inner, self.alpha, self.previous = game, inner, alpha, None

    def step(self, w):
        previous = w if self.previous is None else self.previous
        self.previous = w
        direction = self.game.field(w) - self.alpha * self.game.off_diagonal(w).T @ (w - previous)
        return self.inner.step(w, direction)
