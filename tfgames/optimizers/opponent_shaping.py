"""Look-ahead (LA), LOLA and stable opponent shaping (SOS).

The class names are the papers' acronyms: :class:`LA` (look-ahead, Zhang & Lesser 2010) is
not :class:`tfgames.Lookahead` (the lookahead-minmax wrapper of Chavdarova et al., 2021).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers import _blocks
from tfgames.optimizers.base import GameOptimizer, num_replicas

__all__ = ["LA", "LOLA", "SOS", "look_ahead", "sos_p"]


def look_ahead(xi: list[tf.Tensor], h_o_xi: list[tf.Tensor], alpha: float) -> list[tf.Tensor]:
    """LA = (I - alpha H_o) xi, given xi and H_o xi."""
    return [x - tf.cast(alpha, x.dtype) * h for x, h in zip(xi, h_o_xi)]


def sos_p(
    xi: list[tf.Tensor], la: list[tf.Tensor], chi: list[tf.Tensor], *, alpha: float, a: float,
    b: float,
) -> tf.Tensor:
    """SOS's p = min(p1, p2) (Letcher et al. 2019, Algorithm 1).

    p1 = 1 if <-alpha chi, LA> >= 0 else min(1, -a ||LA||^2 / <-alpha chi, LA>),
    p2 = ||xi||^2 if ||xi|| < b else 1.
    """
    dot = -alpha * products.dot(chi, la)
    la_sq = tf.square(products.norm(la))
    safe = tf.where(dot < 0, dot, -tf.ones_like(dot))
    p1 = tf.where(dot >= 0, tf.ones_like(dot), tf.minimum(1.0, -a * la_sq / safe))
    xi_norm = products.norm(xi)
    p2 = tf.where(xi_norm < b, tf.square(xi_norm), tf.ones_like(xi_norm))
    return tf.minimum(p1, p2)


class _OpponentShaping(GameOptimizer):
    """LA, LOLA and SOS share the products: xi, the cross gradients, H_o xi and chi."""

    _uses_chi = True

    def __init__(self, inner_optimizer, *, alpha: float, name=None, **kwargs) -> None:
        alpha = _blocks.check_number(
            "alpha", alpha, hint="alpha is the look-ahead rate (the paper uses the "
            "learning rate), e.g. alpha=1.0 with keras.optimizers.SGD(1.0).")
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.alpha = alpha

    def _shaping_terms(self, game: Game):
        """losses, global xi, LA = (I - alpha H_o) xi and (LOLA, SOS) chi; products count."""
        # One evaluation of the losses: xi (and the cross gradients) and the products through
        # that same pass, restricted to the paths between players.
        n = len(game.players)
        if not self._uses_chi:  # LA needs xi only, not the cross gradients
            p = _blocks.off_diagonal_products(game, hv=True, htv=False)
            return p.losses, p.vector, look_ahead(p.vector, p.ho_v, self.alpha), None, n
        p = _blocks.lola_terms(game)
        return p.losses, p.xi, look_ahead(p.xi, p.ho_xi, self.alpha), p.chi, 2 * n

    def _share(self, direction):
        """The global direction as this replica's share (the inner optimizer sums them)."""
        share = 1.0 / num_replicas()
        return direction if share == 1.0 else [d * tf.cast(share, d.dtype) for d in direction]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="tfgames")
class LA(_OpponentShaping):
    """Look-ahead: w <- w - eta * inner((I - alpha H_o) xi).

        dir_i = xi_i - alpha sum_{j != i} (grad_j xi_i) xi_j

    Each player differentiates its loss through the other players' next naive step
    w_j - alpha xi_j, with that step held constant. xi is the simultaneous gradient, H_o the
    off-diagonal blocks of the game Jacobian (grad_j grad_i l_i, j != i); H_o xi comes from the
    evaluation of the losses that gives xi, by a double-backward product restricted to the
    paths between players (:func:`tfgames.products.off_diagonal_products`), never from H.
    Cost: one evaluation, n backward passes and H_o xi (reported as n Hessian-vector products,
    n players). ``alpha`` is the look-ahead rate (the reference notebook
    uses alpha = the learning rate of plain SGD). Under ``tf.distribute`` xi and the cross
    gradients are all-reduced before any product.

    Reported diagnostics: ``xi_norm`` (||xi||), ``direction_norm`` and ``hessian_products``
    (products per step).

    Args:
      inner_optimizer: Keras optimizer applying the direction (``SGD(alpha)`` reproduces the
        papers).
      alpha: the look-ahead rate, > 0.
      name: the optimizer's name.

    References:
      Zhang, Lesser. Multi-Agent Learning with Policy Prediction. AAAI 2010.
      Letcher, Foerster, Balduzzi, Rocktaschel, Whiteson. Stable Opponent Shaping in
      Differentiable Games. ICLR 2019.
    """

    diagnostic_names = ("xi_norm", "direction_norm", "hessian_products")
    _uses_chi = False

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, *, alpha: float = 1.0,
                 name: str | None = None, **kwargs) -> None:
        super().__init__(inner_optimizer, alpha=alpha, name=name or "la", **kwargs)

    def direction(self, game: Game):
        losses, xi, la, _, count = self._shaping_terms(game)
        diagnostics = {"xi_norm": products.norm(xi), "direction_norm": products.norm(la),
                       "hessian_products": _blocks.count(count)}
        return losses, self._share(la), diagnostics


@keras.saving.register_keras_serializable(package="tfgames")
class LOLA(_OpponentShaping):
    """Learning with opponent-learning awareness: w <- w - eta * inner(LA - alpha chi).

        dir = (I - alpha H_o) xi - alpha chi,
        chi_i = grad_i sum_{j != i} <stop(grad_j l_i), grad_j l_j>

    in the n-player form of Letcher et al. (2019): player i differentiates its loss through
    the other players' naive steps w_j - alpha grad_j l_j, including their dependence on w_i
    (the chi term, the "shaping" of the opponents' learning). chi is a reverse-over-reverse
    product with the cross gradients grad_j l_i as vector; the cross gradients, xi, H_o xi and
    chi all come from one evaluation of the losses (:func:`tfgames.products.lola_terms`).
    Cost: one evaluation, n backward passes and the two products (reported as 2n
    Hessian-vector products, n players). Under ``tf.distribute`` xi and the cross gradients
    are all-reduced before any product.

    Reported diagnostics: ``xi_norm``, ``chi_norm`` (||chi||), ``direction_norm`` and
    ``hessian_products``.

    Args:
      inner_optimizer: Keras optimizer applying the direction.
      alpha: the look-ahead rate, > 0.
      name: the optimizer's name.

    References:
      Foerster, Chen, Al-Shedivat, Whiteson, Abbeel, Mordatch. Learning with Opponent-Learning
      Awareness. AAMAS 2018.
      Letcher, Foerster, Balduzzi, Rocktaschel, Whiteson. Stable Opponent Shaping in
      Differentiable Games. ICLR 2019.
    """

    diagnostic_names = ("xi_norm", "chi_norm", "direction_norm", "hessian_products")

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, *, alpha: float = 1.0,
                 name: str | None = None, **kwargs) -> None:
        super().__init__(inner_optimizer, alpha=alpha, name=name or "lola", **kwargs)

    def direction(self, game: Game):
        losses, xi, la, chi, count = self._shaping_terms(game)
        out = [d - tf.cast(self.alpha, d.dtype) * c for d, c in zip(la, chi)]
        diagnostics = {"xi_norm": products.norm(xi), "chi_norm": products.norm(chi),
                       "direction_norm": products.norm(out),
                       "hessian_products": _blocks.count(count)}
        return losses, self._share(out), diagnostics


@keras.saving.register_keras_serializable(package="tfgames")
class SOS(_OpponentShaping):
    """Stable opponent shaping: w <- w - eta * inner(LA - p alpha chi).

        dir = (I - alpha H_o) xi - p alpha chi,     p = min(p1, p2),
        p1 = 1 if <-alpha chi, LA> >= 0 else min(1, -a ||LA||^2 / <-alpha chi, LA>),
        p2 = ||xi||^2 if ||xi|| < b else 1

    LA = (I - alpha H_o) xi and chi are LOLA's terms (:class:`LOLA`). p keeps the shaping term
    from pointing against the look-ahead direction (p1, with ``a`` in (0, 1)) and switches it
    off near fixed points (p2, with ``b`` > 0), which makes SOS converge locally to stable
    fixed points while keeping LOLA's opponent shaping (Letcher et al. 2019, Algorithm 1; the
    defaults a = 0.5, b = 0.1 are the reference notebook's). Cost: as LOLA, one evaluation of
    the losses and LOLA's products (reported as 2n).

    Reported diagnostics: ``sos_p`` (p), ``xi_norm``, ``chi_norm``, ``direction_norm`` and
    ``hessian_products``.

    Args:
      inner_optimizer: Keras optimizer applying the direction.
      alpha: the look-ahead rate, > 0.
      a: p1's threshold, in (0, 1).
      b: p2's radius, > 0.
      name: the optimizer's name.

    References:
      Letcher, Foerster, Balduzzi, Rocktaschel, Whiteson. Stable Opponent Shaping in
      Differentiable Games. ICLR 2019.
    """

    diagnostic_names = ("sos_p", "xi_norm", "chi_norm", "direction_norm", "hessian_products")

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, *, alpha: float = 1.0,
                 a: float = 0.5, b: float = 0.1, name: str | None = None, **kwargs) -> None:
        a = _blocks.check_number("a", a)
        if a >= 1.0:
            raise ValueError(f"Argument `a` must be in (0, 1) (SOS's p1 threshold). "
                             f"Received: a={a!r}.")
        b = _blocks.check_number("b", b)
        super().__init__(inner_optimizer, alpha=alpha, name=name or "sos", **kwargs)
        self.a, self.b = a, b

    def direction(self, game: Game):
        losses, xi, la, chi, count = self._shaping_terms(game)
        p = sos_p(xi, la, chi, alpha=self.alpha, a=self.a, b=self.b)
        out = [d - tf.cast(p * self.alpha, d.dtype) * c for d, c in zip(la, chi)]
        diagnostics = {"sos_p": tf.cast(p, tf.float32), "xi_norm": products.norm(xi),
                       "chi_norm": products.norm(chi), "direction_norm": products.norm(out),
                       "hessian_products": _blocks.count(count)}
        return losses, self._share(out), diagnostics

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "a": self.a, "b": self.b}
