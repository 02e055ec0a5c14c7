"""Game-dynamics diagnostics: Jacobian spectra, path angle, Hamiltonian, duality gap.

For a game with parameters w = (w_1, ..., w_n), losses l_i and simultaneous gradient
xi(w) = (grad_{w_1} l_1, ..., grad_{w_n} l_n), the game Jacobian H = d xi / d w splits into a
symmetric ("potential") part and an antisymmetric ("rotational", Hamiltonian) part

    H = S + A,        S = (H + H^T) / 2,        A = (H - H^T) / 2

(Balduzzi et al., "The Mechanics of n-Player Differentiable Games", ICML 2018). Berard et al.
("A Closer Look at the Optimization Landscapes of Generative Adversarial Networks", ICLR 2020)
read the dynamics of GAN training off the top eigenvalues of H (large imaginary parts:
rotation), of S (negative eigenvalues: no local minimum for the players' losses jointly) and
the *path angle*. This module computes them matrix-free, from the products H v and H^T v of
:meth:`tfgames.Game.products` (:func:`tfgames.products.game_products`); H is never formed.

- :func:`jacobian_eigenvalues`: Ritz values of H by Arnoldi with full (twice-applied,
  "CGS2") re-orthogonalisation, one H v product per Krylov vector.
- :func:`symmetric_eigenvalues`: Ritz values of S by Lanczos with full re-orthogonalisation on
  S v = (H v + H^T v) / 2 (one combined product per vector).
- :func:`antisymmetric_eigenvalues`: eigenvalues of A, purely imaginary (+-i sigma), by Arnoldi
  on A v = (H v - H^T v) / 2; the projected matrix is skew-symmetric and its eigenvalues are
  taken as i times those of the Hermitian matrix -i T (exactly imaginary).
- :func:`path_angle`: cos of the angle between xi and the straight path between two parameter
  snapshots (Berard et al. 2020, Section 4).
- :func:`hamiltonian`: ||xi||^2 and the Hamiltonian 1/2 ||xi||^2 (Balduzzi et al. 2018 call
  H(w) = 1/2 ||xi||^2 the Hamiltonian; Mescheder et al.'s consensus term L = 1/2 ||xi||^2 too).
- :func:`duality_gap`: DG(u, v) = max_v' f(u, v') - min_u' f(u', v) of a two-player zero-sum
  game min_u max_v f, estimated by optimising each player against the frozen other (Grnarova
  et al., "A Domain Agnostic Measure for Monitoring and Evaluating GANs", NeurIPS 2019).
- :class:`GameDiagnostics`: a Keras callback recording these during ``fit``.

Krylov iterations run in NumPy float64 on flat vectors; each product is one compiled call of
:meth:`tfgames.Game.products` in the variables' dtype (float64 variables give products exact to
rounding; float32 variables limit every diagnostic to float32 accuracy). Every Ritz value comes
with its residual ||H y - theta y|| (y the unit Ritz vector), so partial spectra say how far
they have converged; with ``krylov_dim`` equal to the number of parameters the Krylov space is
the whole space and the Ritz values are the eigenvalues (up to rounding).

Evaluations on a :class:`tfgames.GameModel` never change it: every evaluation first resets the
model's non-trainable state (noise seed, BatchNorm statistics, dropout seeds) to its value at
the start of the call, so all products of one call see the same batch and noise and define one
linear operator; the state and the parameters are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfgames import products as _products
from tfgames.game import Game

__all__ = [
    "DualityGap",
    "GameDiagnostics",
    "JacobianOperator",
    "PathAngle",
    "Spectrum",
    "antisymmetric_eigenvalues",
    "duality_gap",
    "hamiltonian",
    "jacobian_eigenvalues",
    "parameter_snapshot",
    "path_angle",
    "symmetric_eigenvalues",
]

_WHICH = ("LM", "LR", "SR", "LI")


class Spectrum(NamedTuple):
    """Ritz values of one operator.

    Attributes:
      eigenvalues: the ``k`` selected Ritz values (complex for H and A, real for S), sorted by
        the selection rule (``which``).
      residuals: ||M y - theta y|| of each Ritz pair (unit y), same order.
      krylov_dim: dimension of the Krylov space used (= products evaluated).
      dim: the operator's dimension (number of parameters).
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    krylov_dim: int
    dim: int


class PathAngle(NamedTuple):
    """cos(angle(w' - w, xi(w + alpha (w' - w)))) and ||xi|| along the path."""

    alphas: np.ndarray
    cosine: np.ndarray
    xi_norm: np.ndarray


class DualityGap(NamedTuple):
    """DG = max_value - min_value; ``value`` = f(u, v) at the current parameters.

    Attributes:
      gap: the estimate max_value - min_value (a lower bound of the true gap when the inner
        optimisations stop short of their optima).
      max_value: f(u, v_worst), v_worst the max player's result against the frozen u.
      min_value: f(u_worst, v), u_worst the min player's result against the frozen v.
      value: f(u, v).
    """

    gap: float
    max_value: float
    min_value: float
    value: float


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Argument `{name}` must be an integer >= 1. Received: {name}={value!r}.")
    return int(value)


def parameter_snapshot(model_or_game: Any) -> list[np.ndarray]:
    """The current values of the players' variables (flat list, player order), as NumPy arrays.

    Args:
      model_or_game: a :class:`tfgames.GameModel` or a :class:`tfgames.Game`.
    """
    return [np.array(_products.read_value(v)) for v in _variables_of(model_or_game)]


def _variables_of(model_or_game: Any) -> list:
    if isinstance(model_or_game, Game):
        return list(model_or_game.variables)
    if hasattr(model_or_game, "players") and hasattr(model_or_game, "make_game"):
        from tfgames.game import resolve_players

        return [v for vs in resolve_players(model_or_game.players()).values() for v in vs]
    raise TypeError(
        "Expected a tfgames.GameModel or a tfgames.Game. Received: an object of type "
        f"{type(model_or_game).__name__}."
    )


class JacobianOperator:
    """The game Jacobian H at the current parameters, as a linear map on flat float64 vectors.

    Build it with :meth:`from_model` (a :class:`tfgames.GameModel` and a batch; products are
    compiled with ``tf.function`` and the model's state is reset before each one) or
    :meth:`from_game` (a :class:`tfgames.Game`, evaluated eagerly; the game replays its noise).
    Call :meth:`restore` when done (the functions of this module do).

    Attributes:
      dim: number of parameters (length of the flat vectors).
      products: number of product evaluations so far.
    """

    def __init__(self, evaluate: Callable, variables: Sequence, restore: Callable[[], None],
                 player_sizes: Mapping[str, int] | None = None,
                 refresh: Callable[[], None] | None = None):
        self._evaluate = evaluate
        self._shapes = [tuple(_products.read_value(v).shape) for v in variables]
        self._sizes = [int(np.prod(s)) for s in self._shapes]
        self.dim = int(sum(self._sizes))
        self.products = 0
        self.restore = restore
        self.player_sizes = dict(player_sizes or {"all": self.dim})
        self._refresh = refresh

    def refresh(self) -> None:
        """Take the model's current non-trainable state as the operator's state (a model
        operator built once can then be reused after training steps, without retracing).
        """
        if self._refresh is not None:
            self._refresh()
        self.products = 0

    @classmethod
    def from_model(cls, model: Any, data: Any = None, *, training: bool = True,
                   mode: _products.HvpMode = "forward") -> JacobianOperator:
        """H of ``model.make_game(data, training)``.

        Args:
          model: a :class:`tfgames.GameModel`.
          data: one batch, as ``train_step`` receives it (``None`` when the model samples its
            own data).
          training: passed to ``compute_losses``.
          mode: H v by ``"forward"`` or ``"double_backward"`` mode (see
            :func:`tfgames.products.game_products`).
        """
        from tfgames.game import resolve_players

        state = _ModelState(model)
        players = resolve_players(model.players())
        variables = [v for vs in players.values() for v in vs]
        sizes = {name: int(sum(np.prod(_products.read_value(v).shape) for v in vs))
                 for name, vs in players.items()}

        @tf.function(reduce_retracing=True)
        def evaluate(flat, data, want_hv, want_htv):
            state.reset()
            game = model.make_game(data, training=training)
            vector = _unflatten(flat, variables)
            p = game.products(vector, hv=want_hv, htv=want_htv, mode=mode)
            empty = tf.zeros([0], tf.float64)
            return (_flatten(p.hv) if want_hv else empty,
                    _flatten(p.htv) if want_htv else empty, _flatten(p.xi))

        return cls(lambda flat, hv, htv: evaluate(flat, data, hv, htv), variables,
                   state.restore, sizes, state.save)

    @classmethod
    def from_game(cls, game: Game, *, mode: _products.HvpMode = "forward"
                  ) -> JacobianOperator:
        """H of one :class:`tfgames.Game`, evaluated eagerly (every evaluation of one game
        replays the same noise).
        """
        variables = list(game.variables)

        def evaluate(flat, want_hv, want_htv):
            p = game.products(_unflatten(tf.constant(flat), variables), hv=want_hv,
                              htv=want_htv, mode=mode)
            return (_flatten(p.hv) if want_hv else None,
                    _flatten(p.htv) if want_htv else None, _flatten(p.xi))

        sizes = {name: int(sum(np.prod(_products.read_value(v).shape) for v in vs))
                 for name, vs in game.players.items()}
        return cls(lambda flat, hv, htv: evaluate(flat, hv, htv), variables, lambda: None,
                   sizes)

    def _call(self, v: np.ndarray, hv: bool, htv: bool):
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self.dim,):
            raise ValueError(f"Expected a vector of shape ({self.dim},). Received: {v.shape}.")
        self.products += 1
        a, b, _ = self._evaluate(tf.constant(v, tf.float64), hv, htv)
        return (np.asarray(a, np.float64) if hv else None,
                np.asarray(b, np.float64) if htv else None)

    def xi(self) -> np.ndarray:
        """The simultaneous gradient xi at the operator's point (flat, float64)."""
        _, _, xi = self._evaluate(tf.zeros([self.dim], tf.float64), False, False)
        return np.asarray(xi, np.float64)

    def hamiltonian(self) -> dict[str, float]:
        """:func:`hamiltonian`'s values from :meth:`xi`."""
        xi, out, start = self.xi(), {}, 0
        for name, size in self.player_sizes.items():
            out[name] = float(np.sum(xi[start:start + size] ** 2))
            start += size
        total = float(np.sum(xi ** 2))
        result = {"hamiltonian": 0.5 * total, "xi_squared_norm": total}
        result.update({f"xi_squared_norm/{name}": value for name, value in out.items()})
        return result

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """H v."""
        return self._call(v, True, False)[0]

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        """H^T v."""
        return self._call(v, False, True)[1]

    def symmetric_matvec(self, v: np.ndarray) -> np.ndarray:
        """S v = (H v + H^T v) / 2 (one evaluation of both products)."""
        hv, htv = self._call(v, True, True)
        return 0.5 * (hv + htv)

    def antisymmetric_matvec(self, v: np.ndarray) -> np.ndarray:
        """A v = (H v - H^T v) / 2 (one evaluation of both products)."""
        hv, htv = self._call(v, True, True)
        return 0.5 * (hv - htv)

    def dense(self) -> np.ndarray:
        """H assembled column by column from H e_j (``dim`` products: small games only)."""
        return np.stack([self.matvec(e) for e in np.eye(self.dim)], axis=1)


def _flatten(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    return tf.concat([tf.reshape(tf.cast(t, tf.float64), [-1]) for t in tensors], axis=0)


def _unflatten(flat: tf.Tensor, variables: Sequence) -> list[tf.Tensor]:
    out, start = [], 0
    for v in variables:
        value = _products.read_value(v)
        size = int(np.prod(value.shape))
        out.append(tf.cast(tf.reshape(flat[start:start + size], value.shape), value.dtype))
        start += size
    return out


class _ModelState:
    """The non-trainable state of a GameModel (noise seeds, BatchNorm statistics, dropout
    seeds), saved in shadow variables: :meth:`save` copies the current values into them,
    :meth:`reset` assigns them back (inside or outside ``tf.function``, so that one traced
    function serves every later snapshot), :meth:`restore` is :meth:`reset` called eagerly.
    """

    def __init__(self, model: Any) -> None:
        variables, seen = [], set()
        candidates = list(model.non_trainable_variables)
        seed_generator = getattr(model, "seed_generator", None)
        if seed_generator is not None:
            candidates.append(seed_generator.state)
        for v in candidates:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
        self.variables = variables
        self.shadows = [tf.Variable(_products.read_value(v), trainable=False)
                        for v in variables]

    def save(self) -> None:
        for shadow, v in zip(self.shadows, self.variables):
            shadow.assign(_products.read_value(v))

    def reset(self) -> None:
        for v, shadow in zip(self.variables, self.shadows):
            v.assign(tf.convert_to_tensor(shadow))

    def restore(self) -> None:
        self.reset()


# -- Krylov methods (NumPy float64) -----------------------------------------------------------

def _orthonormal_random(rng: np.random.Generator, basis: np.ndarray, n: int) -> np.ndarray | None:
    """A unit vector orthogonal to the columns of ``basis`` (None when they span R^n)."""
    if basis.shape[1] >= n:
        return None
    w = rng.standard_normal(n)
    for _ in range(2):
        w -= basis @ (basis.T @ w)
    norm = np.linalg.norm(w)
    return w / norm if norm > 0 else None


def _arnoldi(matvec: Callable, n: int, m: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, float]:
    """Arnoldi with full re-orthogonalisation (classical Gram-Schmidt applied twice).

    Builds Q (n x m, orthonormal) and the upper Hessenberg T = Q^T M Q (m x m) with
    M Q = Q T + t_{m+1,m} q_{m+1} e_m^T. On breakdown (an invariant subspace: t_{j+1,j} ~ 0)
    the next basis vector is a random unit vector orthogonal to Q and t_{j+1,j} = 0, so the
    relation still holds and, for m = n, eig(T) = eig(M).

    Returns:
      (T, t_{m+1,m}).
    """
    basis = np.zeros((n, m))
    t = np.zeros((m + 1, m))
    basis[:, 0] = _orthonormal_random(rng, basis[:, :0], n)
    scale = 0.0
    for j in range(m):
        w = matvec(basis[:, j])
        scale = max(scale, float(np.linalg.norm(w)))
        for _ in range(2):
            c = basis[:, : j + 1].T @ w
            w = w - basis[:, : j + 1] @ c
            t[: j + 1, j] += c
        beta = float(np.linalg.norm(w))
        if j + 1 == m:
            t[m, j] = beta
            break
        if beta <= 1e-12 * max(scale, 1e-300):
            t[j + 1, j] = 0.0
            nxt = _orthonormal_random(rng, basis[:, : j + 1], n)
        else:
            t[j + 1, j] = beta
            nxt = w / beta
        basis[:, j + 1] = nxt
    return t[:m, :m], float(t[m, m - 1])


def _lanczos(matvec: Callable, n: int, m: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, float]:
    """Lanczos for a symmetric M with full re-orthogonalisation: T = Q^T M Q tridiagonal
    (alpha on the diagonal, beta beside it), M Q = Q T + beta_m q_{m+1} e_m^T; breakdowns
    restart with a random orthogonal vector (beta = 0), as in :func:`_arnoldi`.
    """
    basis = np.zeros((n, m))
    alpha, beta = np.zeros(m), np.zeros(m)
    basis[:, 0] = _orthonormal_random(rng, basis[:, :0], n)
    scale = 0.0
    for j in range(m):
        w = matvec(basis[:, j])
        scale = max(scale, float(np.linalg.norm(w)))
        alpha[j] = basis[:, j] @ w
        w = w - alpha[j] * basis[:, j] - (beta[j - 1] * basis[:, j - 1] if j > 0 else 0.0)
        for _ in range(2):  # full re-orthogonalisation against every previous vector
            w = w - basis[:, : j + 1] @ (basis[:, : j + 1].T @ w)
        b = float(np.linalg.norm(w))
        if j + 1 == m:
            beta[j] = b
            break
        if b <= 1e-12 * max(scale, 1e-300):
            beta[j] = 0.0
            basis[:, j + 1] = _orthonormal_random(rng, basis[:, : j + 1], n)
        else:
            beta[j] = b
            basis[:, j + 1] = w / b
    t = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
    return t, float(beta[m - 1])


def _select(values: np.ndarray, residuals: np.ndarray, k: int, which: str):
    keys = {
        "LM": -np.abs(values),
        "LR": -np.real(values),
        "SR": np.real(values),
        "LI": -np.abs(np.imag(values)),
    }[which]
    order = np.lexsort((np.imag(values), np.real(values), keys))[:k]
    return values[order], residuals[order]


def _krylov_args(operator: JacobianOperator, k: int, which: str, krylov_dim: int | None,
                 allowed: Iterable[str] = _WHICH) -> tuple[int, int]:
    k = _check_positive_int("k", k)
    allowed = tuple(allowed)
    if which not in allowed:
        raise ValueError(f"Argument `which` must be one of {allowed}. Received: which={which!r}.")
    n = operator.dim
    if krylov_dim is None:
        krylov_dim = min(n, max(2 * k + 10, 30))
    krylov_dim = _check_positive_int("krylov_dim", krylov_dim)
    if krylov_dim > n or k > krylov_dim:
        raise ValueError(
            f"Need k <= krylov_dim <= the number of parameters ({n}). Received: k={k}, "
            f"krylov_dim={krylov_dim}. Lower k or krylov_dim."
        )
    return k, krylov_dim


def _as_operator(target: Any, data: Any, training: bool, mode: str
                 ) -> tuple[JacobianOperator, bool]:
    if isinstance(target, JacobianOperator):
        return target, False
    if isinstance(target, Game):
        return JacobianOperator.from_game(target, mode=mode), True
    return JacobianOperator.from_model(target, data, training=training, mode=mode), True


def jacobian_eigenvalues(target: Any, data: Any = None, *, k: int = 6, which: str = "LM",
                         krylov_dim: int | None = None, seed: int = 0, training: bool = True,
                         mode: _products.HvpMode = "forward") -> Spectrum:
    """Top-k Ritz values of the game Jacobian H = d xi / d w by Arnoldi on H v products.

    Arnoldi builds an orthonormal basis Q of the Krylov space span{q, H q, ..., H^{m-1} q}
    (q a random unit vector drawn with ``seed``, every new vector re-orthogonalised twice
    against all previous ones) and the Hessenberg matrix T = Q^T H Q; the Ritz values are the
    eigenvalues of T. For m = dim they are H's eigenvalues. The residual of a Ritz pair
    (theta, Q s) is |t_{m+1,m}| |s_m| (Saad, "Numerical Methods for Large Eigenvalue Problems",
    2011, Proposition 6.8).

    Args:
      target: a :class:`tfgames.GameModel` (with ``data``), a :class:`tfgames.Game`, or a
        :class:`JacobianOperator`.
      data: the batch for a model (``None`` when it samples its own data).
      k: number of Ritz values returned.
      which: ``"LM"`` largest magnitude, ``"LR"`` largest real part, ``"SR"`` smallest real
        part, ``"LI"`` largest |imaginary part|.
      krylov_dim: m, the number of H v products (default min(dim, max(2k + 10, 30))).
      seed: seed of the starting vector.
      training: passed to the model's ``compute_losses``.
      mode: how H v is computed (:func:`tfgames.products.game_products`).

    Returns:
      A :class:`Spectrum` with complex eigenvalues.
    """
    operator, owned = _as_operator(target, data, training, mode)
    try:
        k, m = _krylov_args(operator, k, which, krylov_dim)
        t, last = _arnoldi(operator.matvec, operator.dim, m, np.random.default_rng(seed))
        values, vectors = np.linalg.eig(t)
        vectors = vectors / np.linalg.norm(vectors, axis=0, keepdims=True)
        residuals = np.abs(last) * np.abs(vectors[-1, :])
        values, residuals = _select(values.astype(complex), residuals, k, which)
    finally:
        if owned:
            operator.restore()
    return Spectrum(values, residuals, m, operator.dim)


def symmetric_eigenvalues(target: Any, data: Any = None, *, k: int = 6, which: str = "LM",
                          krylov_dim: int | None = None, seed: int = 0, training: bool = True,
                          mode: _products.HvpMode = "forward") -> Spectrum:
    """Top-k Ritz values of S = (H + H^T) / 2 by Lanczos on S v = (H v + H^T v) / 2.

    Lanczos (with full re-orthogonalisation) gives the tridiagonal T = Q^T S Q; its eigenvalues
    (``numpy.linalg.eigvalsh``) are the Ritz values, real, with residuals |beta_m| |s_m|.
    A negative eigenvalue of S means the players' losses have no joint local minimum there
    (Berard et al. 2020). Arguments as :func:`jacobian_eigenvalues`; ``which`` is ``"LM"``,
    ``"LR"`` (largest) or ``"SR"`` (smallest).

    Returns:
      A :class:`Spectrum` with real eigenvalues.
    """
    operator, owned = _as_operator(target, data, training, mode)
    try:
        k, m = _krylov_args(operator, k, which, krylov_dim, ("LM", "LR", "SR"))
        t, last = _lanczos(operator.symmetric_matvec, operator.dim, m,
                           np.random.default_rng(seed))
        values, vectors = np.linalg.eigh(t)
        residuals = np.abs(last) * np.abs(vectors[-1, :])
        values, residuals = _select(values, residuals, k, which)
    finally:
        if owned:
            operator.restore()
    return Spectrum(values, residuals, m, operator.dim)


def antisymmetric_eigenvalues(target: Any, data: Any = None, *, k: int = 6,
                              krylov_dim: int | None = None, seed: int = 0,
                              training: bool = True, mode: _products.HvpMode = "forward"
                              ) -> Spectrum:
    """Top-k (largest |.|) eigenvalues of A = (H - H^T) / 2, purely imaginary (+-i sigma).

    Arnoldi on A v = (H v - H^T v) / 2 gives T = Q^T A Q, skew-symmetric (its symmetric part,
    rounding only, is dropped); the eigenvalues of T are i lambda with lambda the (real)
    eigenvalues of the Hermitian matrix -i T (``numpy.linalg.eigh``), so they are exactly
    imaginary and come in pairs +-i sigma. Large |sigma| relative to S's eigenvalues means
    rotational dynamics (Balduzzi et al. 2018; Berard et al. 2020). Arguments as
    :func:`jacobian_eigenvalues` (selection: largest magnitude).

    Returns:
      A :class:`Spectrum` with imaginary (complex dtype) eigenvalues.
    """
    operator, owned = _as_operator(target, data, training, mode)
    try:
        k, m = _krylov_args(operator, k, "LM", krylov_dim)
        t, last = _arnoldi(operator.antisymmetric_matvec, operator.dim, m,
                           np.random.default_rng(seed))
        skew = 0.5 * (t - t.T)
        lambdas, vectors = np.linalg.eigh(-1j * skew)
        residuals = np.abs(last) * np.abs(vectors[-1, :])
        values, residuals = _select(1j * lambdas, residuals, k, "LM")
    finally:
        if owned:
            operator.restore()
    return Spectrum(values, residuals, m, operator.dim)


# -- Gradient-field diagnostics ----------------------------------------------------------------

class _Evaluator:
    """xi and the losses of a GameModel at given parameter values, with the state reset before
    each evaluation and parameters plus state restored by :meth:`restore`.
    """

    def __init__(self, model: Any, data: Any, training: bool) -> None:
        self.model = model
        self.data = data
        self.state = _ModelState(model)
        self.variables = _variables_of(model)
        self.saved = [tf.identity(_products.read_value(v)) for v in self.variables]

        @tf.function(reduce_retracing=True)
        def xi_at(flat, data):
            self.state.reset()
            for v, value in zip(self.variables, _unflatten(flat, self.variables)):
                v.assign(value)
            losses, xi = model.make_game(data, training=training).gradient()
            return ({k: tf.cast(x, tf.float64) for k, x in losses.items()}, _flatten(xi))

        self._xi_at = xi_at

    def xi(self, flat: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        losses, xi = self._xi_at(tf.constant(flat, tf.float64), self.data)
        return {k: float(v) for k, v in losses.items()}, np.asarray(xi, np.float64)

    def restore(self) -> None:
        for v, value in zip(self.variables, self.saved):
            v.assign(value)
        self.state.restore()


def _flat_snapshot(name: str, snapshot: Any, variables: Sequence) -> np.ndarray:
    shapes = [tuple(_products.read_value(v).shape) for v in variables]
    if not isinstance(snapshot, (list, tuple)) or len(snapshot) != len(variables):
        raise ValueError(
            f"Argument `{name}` must be a list of {len(variables)} arrays aligned with the "
            "players' variables (tfgames.diagnostics.parameter_snapshot(model)). Received: "
            f"{type(snapshot).__name__} of length "
            f"{len(snapshot) if hasattr(snapshot, '__len__') else '?'}."
        )
    parts = []
    for i, (value, shape) in enumerate(zip(snapshot, shapes)):
        array = np.asarray(value, dtype=np.float64)
        if array.shape != shape:
            raise ValueError(
                f"{name}[{i}] must have the shape of variable {i}, {shape}. Received: "
                f"{array.shape}."
            )
        parts.append(array.reshape(-1))
    return np.concatenate(parts)


def path_angle(model: Any, data: Any = None, *, start: Sequence[Any], end: Sequence[Any],
               alphas: Any = None, training: bool = True) -> PathAngle:
    """Path angle: cos of the angle between xi and the straight path from ``start`` to ``end``.

    For parameters w (``start``, e.g. the initialisation) and w' (``end``, e.g. the end of
    training), w_alpha = w + alpha (w' - w) and

        cos(alpha) = <w' - w, xi(w_alpha)> / (||w' - w|| ||xi(w_alpha)||),

    as in Berard et al., "A Closer Look at the Optimization Landscapes of Generative
    Adversarial Networks", ICLR 2020, Section 4 ("path-angle"): near a stable fixed point at
    alpha = 1, a purely potential (minimisation) field gives cos = -1 before it and +1 after;
    a purely rotational field gives cos ~ 0, and a "bump" of the cosine around alpha = 1
    shows rotation around the end point. Every evaluation uses the same batch and noise.

    Args:
      model: a :class:`tfgames.GameModel`; its parameters and state are restored afterwards.
      data: the batch (``None`` when the model samples its own data).
      start: w, a list of arrays aligned with the players' variables
        (:func:`parameter_snapshot`).
      end: w', same layout; must differ from ``start``.
      alphas: the alpha values (default ``numpy.linspace(-0.5, 1.5, 41)``).
      training: passed to ``compute_losses``.

    Returns:
      A :class:`PathAngle` ``(alphas, cosine, xi_norm)``; the cosine is NaN where xi = 0.
    """
    evaluator = _Evaluator(model, data, training)
    w0 = _flat_snapshot("start", start, evaluator.variables)
    w1 = _flat_snapshot("end", end, evaluator.variables)
    delta = w1 - w0
    delta_norm = float(np.linalg.norm(delta))
    if delta_norm == 0.0:
        raise ValueError(
            "Arguments `start` and `end` are the same point, so the path has no direction. "
            "Pass two different parameter snapshots."
        )
    alphas = np.linspace(-0.5, 1.5, 41) if alphas is None else np.asarray(alphas, np.float64)
    cosines, norms = [], []
    try:
        for alpha in alphas.reshape(-1):
            _, xi = evaluator.xi(w0 + alpha * delta)
            xi_norm = float(np.linalg.norm(xi))
            norms.append(xi_norm)
            cosines.append(float(delta @ xi) / (delta_norm * xi_norm) if xi_norm > 0 else np.nan)
    finally:
        evaluator.restore()
    return PathAngle(alphas.reshape(-1), np.array(cosines), np.array(norms))


def hamiltonian(model: Any, data: Any = None, *, training: bool = True) -> dict[str, float]:
    """||xi||^2 and the Hamiltonian 1/2 ||xi||^2 at the current parameters.

    Balduzzi et al. (ICML 2018) define the Hamiltonian of a game as H(w) = 1/2 ||xi(w)||^2
    (zero exactly at the fixed points of the simultaneous gradient); ``xi_squared_norm`` is
    ||xi||^2 without the 1/2. Per-player terms ||xi_i||^2 are included as
    ``xi_squared_norm/<player>``.

    Args:
      model: a :class:`tfgames.GameModel` (its state is left unchanged) or a
        :class:`tfgames.Game`.
      data: the batch for a model.
      training: passed to ``compute_losses``.

    Returns:
      ``{"hamiltonian": 1/2 ||xi||^2, "xi_squared_norm": ||xi||^2,
      "xi_squared_norm/<player>": ||xi_i||^2, ...}`` as floats.
    """
    if isinstance(model, Game):
        operator = JacobianOperator.from_game(model)
    else:
        operator = JacobianOperator.from_model(model, data, training=training)
    try:
        return operator.hamiltonian()
    finally:
        operator.restore()


def _fresh_optimizer(optimizer: Any) -> keras.optimizers.Optimizer:
    if optimizer is None:
        return keras.optimizers.Adam(learning_rate=1e-3)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer.__class__.from_config(optimizer.get_config())
    if callable(optimizer):
        built = optimizer()
        if isinstance(built, keras.optimizers.Optimizer):
            return built
    raise TypeError(
        "Argument `optimizer` must be a Keras optimizer (copied for each inner optimisation), "
        "a zero-argument callable returning one, or None for Adam(1e-3). Received: "
        f"{optimizer!r}."
    )


def duality_gap(model: Any, data: Any = None, *, min_player: str, max_player: str,
                steps: int = 100, optimizer: Any = None, training: bool = False,
                zero_sum_tolerance: float = 1e-6) -> DualityGap:
    """Duality gap DG(u, v) = max_v' f(u, v') - min_u' f(u', v) of a zero-sum game, estimated.

    For min_u max_v f (Grnarova et al., "A Domain Agnostic Measure for Monitoring and
    Evaluating GANs", NeurIPS 2019), DG >= 0 and DG = 0 exactly at a (pure) equilibrium. The
    two inner problems are solved approximately: starting from the current parameters, the max
    player alone takes ``steps`` steps of ``optimizer`` on -f (u frozen), giving v_worst; then,
    from the current parameters again, the min player alone takes ``steps`` steps on f
    (v frozen), giving u_worst; DG ~ f(u, v_worst) - f(u_worst, v). Every step uses the same
    batch and noise (the model's state is reset before each evaluation), and the parameters,
    the state and the training optimizer are untouched afterwards. When the inner problems are
    not solved to optimality the estimate is a lower bound of DG (the max is underestimated,
    the min overestimated).

    f is the min player's loss; the game must be zero-sum on this batch: the max player's loss
    must equal -f within ``zero_sum_tolerance`` (relative), otherwise a ValueError is raised
    (e.g. for a non-saturating GAN generator loss, which is not -f).

    Args:
      model: a :class:`tfgames.GameModel` with two players.
      data: the batch (``None`` when the model samples its own data).
      min_player: the player minimising f.
      max_player: the player maximising f (loss -f).
      steps: inner optimisation steps per player, >= 1.
      optimizer: the inner optimizer: a Keras optimizer (a fresh copy from its config is used
        for each player), a zero-argument callable returning one, or ``None`` for
        ``keras.optimizers.Adam(1e-3)``.
      training: passed to ``compute_losses`` (default False: evaluation mode).
      zero_sum_tolerance: relative tolerance of the zero-sum check.

    Returns:
      A :class:`DualityGap` ``(gap, max_value, min_value, value)``.
    """
    steps = _check_positive_int("steps", steps)
    from tfgames.game import resolve_players

    players = resolve_players(model.players())
    for role, name in (("min_player", min_player), ("max_player", max_player)):
        if name not in players:
            raise ValueError(
                f"Argument `{role}` must name a player of the model {list(players)}. "
                f"Received: {role}={name!r}."
            )
    if min_player == max_player:
        raise ValueError(
            "Arguments `min_player` and `max_player` must differ. "
            f"Received: both {min_player!r}."
        )
    state = _ModelState(model)
    all_variables = [v for vs in players.values() for v in vs]
    saved = [tf.identity(_products.read_value(v)) for v in all_variables]

    @tf.function(reduce_retracing=True)
    def losses_fn(data):
        state.reset()
        out = model.compute_losses(data, training=training)
        return {k: tf.cast(out[k], tf.float64) for k in (min_player, max_player)}

    def payoff() -> float:
        losses = losses_fn(data)
        f, g = float(losses[min_player]), float(losses[max_player])
        if abs(f + g) > zero_sum_tolerance * max(1.0, abs(f)):
            raise ValueError(
                "duality_gap needs a zero-sum game: the loss of `max_player` must be -f, the "
                f"negative of `min_player`'s loss. Received: {min_player} loss {f!r}, "
                f"{max_player} loss {g!r}. Use a zero-sum payoff (tfgames.zero_sum), e.g. "
                "the minimax GAN loss, for this diagnostic."
            )
        return f

    def optimise(player: str, sign: float) -> float:
        variables = players[player]
        opt = _fresh_optimizer(optimizer)
        opt.build(variables)

        @tf.function(reduce_retracing=True)
        def step(data):
            state.reset()
            with tf.GradientTape() as tape:
                f = model.compute_losses(data, training=training)[min_player]
                objective = sign * f
            grads = tape.gradient(objective, variables)
            opt.apply_gradients(zip(grads, variables))

        for _ in range(steps):
            step(data)
        return payoff()

    def reset_parameters() -> None:
        for v, value in zip(all_variables, saved):
            v.assign(value)

    try:
        value = payoff()
        max_value = optimise(max_player, -1.0)
        reset_parameters()
        min_value = optimise(min_player, 1.0)
    finally:
        reset_parameters()
        state.restore()
    return DualityGap(max_value - min_value, max_value, min_value, value)


# -- Keras callback ----------------------------------------------------------------------------

class GameDiagnostics(keras.callbacks.Callback):
    """Record game diagnostics during ``fit`` on a fixed batch.

    Every ``every`` training steps (and at the end of training) the callback evaluates, on
    ``data`` and without changing the model (parameters, noise stream and statistics are
    restored): the top-k Ritz values of H (:func:`jacobian_eigenvalues`), of S
    (:func:`symmetric_eigenvalues`) and of A (:func:`antisymmetric_eigenvalues`) as selected by
    ``spectra``, and the Hamiltonian (:func:`hamiltonian`). Each record is appended to
    :attr:`history` as ``{"step": ..., "H": Spectrum, "S": ..., "A": ..., "hamiltonian": ...,
    "xi_squared_norm": ...}``. At the end of training, with ``path_angle=True``, the path angle
    between the parameters at the start and at the end of ``fit`` is stored in
    :attr:`path_angle` (:func:`path_angle`).

    Each spectrum costs ``krylov_dim`` forward-and-backward product evaluations; pick
    ``every`` accordingly.

    Args:
      data: the batch the diagnostics are evaluated on (``None`` when the model samples its
        own data, e.g. :class:`tfgames.lab.experiments.runner.MLPGAN`).
      every: training steps between records (the first record is taken before the first step).
      k: Ritz values per spectrum.
      krylov_dim: Krylov dimension (default as :func:`jacobian_eigenvalues`).
      spectra: which of ``"H"``, ``"S"``, ``"A"`` to compute.
      which: selection rule for H's Ritz values (``"LM"``, ``"LR"``, ``"SR"``, ``"LI"``).
      path_angle: compute the path angle from the start to the end of ``fit``.
      alphas: the path angle's alpha values.
      training: passed to ``compute_losses``.
      seed: seed of the Krylov starting vectors.
    """

    def __init__(self, data: Any = None, *, every: int = 100, k: int = 6,
                 krylov_dim: int | None = None, spectra: Sequence[str] = ("H", "S", "A"),
                 which: str = "LM", path_angle: bool = False, alphas: Any = None,
                 training: bool = True, seed: int = 0) -> None:
        super().__init__()
        self.every = _check_positive_int("every", every)
        self.k = _check_positive_int("k", k)
        unknown = [s for s in spectra if s not in ("H", "S", "A")]
        if unknown:
            raise ValueError(
                f"Argument `spectra` must list some of 'H', 'S', 'A'. Received: {list(spectra)!r}."
            )
        if which not in _WHICH:
            raise ValueError(f"Argument `which` must be one of {_WHICH}. Received: {which!r}.")
        self.data = data
        self.krylov_dim = krylov_dim
        self.spectra = tuple(spectra)
        self.which = which
        self.want_path_angle = bool(path_angle)
        self.alphas = alphas
        self.training = training
        self.seed = seed
        self.history: list[dict[str, Any]] = []
        self.path_angle: PathAngle | None = None
        self._step = 0
        self._start: list[np.ndarray] | None = None
        self._operator: JacobianOperator | None = None
        self._operator_model: Any = None

    def record(self) -> dict[str, Any]:
        """Evaluate the diagnostics now, append them to :attr:`history` and return them."""
        entry: dict[str, Any] = {"step": self._step}
        if self._operator is None or self._operator_model is not self.model:
            self._operator = JacobianOperator.from_model(self.model, self.data,
                                                         training=self.training)
            self._operator_model = self.model
        operator = self._operator
        operator.refresh()
        try:
            kwargs = dict(k=self.k, krylov_dim=self.krylov_dim, seed=self.seed)
            if "H" in self.spectra:
                entry["H"] = jacobian_eigenvalues(operator, which=self.which, **kwargs)
            if "S" in self.spectra:
                entry["S"] = symmetric_eigenvalues(operator, **kwargs)
            if "A" in self.spectra:
                entry["A"] = antisymmetric_eigenvalues(operator, **kwargs)
            entry.update(operator.hamiltonian())
        finally:
            operator.restore()
        self.history.append(entry)
        return entry

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._start = parameter_snapshot(self.model)
        if not self.history or self.history[-1]["step"] != self._step:
            self.record()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._step += 1
        if self._step % self.every == 0:
            self.record()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.history[-1]["step"] != self._step:
            self.record()
        if self.want_path_angle and self._start is not None:
            end = parameter_snapshot(self.model)
            if any(np.any(a != b) for a, b in zip(self._start, end)):
                self.path_angle = path_angle(self.model, self.data, start=self._start, end=end,
                                             alphas=self.alphas, training=self.training)

