"""Shared plumbing of the second-order family: a game's block products and argument checks.

The products themselves are written once in :mod:`tfgames.products`
(:func:`~tfgames.products.off_diagonal_products`, :func:`~tfgames.products.lola_terms`,
:func:`~tfgames.products.game_linearization`, ...). Here they are evaluated on a
:class:`tfgames.Game` (its noise replayed at every evaluation, its mixed-precision loss scale
divided out) and summed over the replicas of a ``tf.distribute`` strategy: every vector given
to a product is global (all-reduced first), each replica's product is its share of the
global-batch product, and the all-reduce of the shares is the product on the global batch.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import all_reduce_sum

__all__ = [
    "check_iterations",
    "check_number",
    "count",
    "full_htv",
    "full_hv",
    "Linearization",
    "lola_terms",
    "off_diagonal_products",
    "player_blocks",
]


def check_number(name: str, value, *, minimum: float = 0.0, strict: bool = True,
                 hint: str = "") -> float:
    """``value`` as a float after checking it is a finite real number above ``minimum``."""
    ok = (
        isinstance(value, (numbers.Real, np.floating, np.integer))
        and not isinstance(value, bool)
        and np.isfinite(value)
        and (value > minimum if strict else value >= minimum)
    )
    if not ok:
        relation = ">" if strict else ">="
        raise ValueError(
            f"Argument `{name}` must be a finite number {relation} {minimum:g}. "
            f"Received: {name}={value!r}.{(' ' + hint) if hint else ''}"
        )
    return float(value)


def check_iterations(value) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (numbers.Integral, np.integer))
        or value < 1
    ):
        raise ValueError(
            "Argument `max_iterations` must be an integer >= 1 (the cap on the linear "
            "solver's iterations per step, each one or two Hessian-vector products). "
            f"Received: max_iterations={value!r}."
        )
    return int(value)


def _global(game: Game, tensors):
    """This replica's share of a sum over the batch, unscaled and summed over the replicas."""
    return all_reduce_sum(game._unscale(tensors))


def player_blocks(game: Game) -> list[tuple[str, int, int]]:
    """``(name, start, stop)`` of each player's block in ``game.variables``."""
    return products._player_slices(game.players)


def off_diagonal_products(
    game: Game, vector: Sequence[tf.Tensor] | None = None, *, hv: bool = True,
    htv: bool = True,
) -> products.OffDiagonalProducts:
    """xi, H_o v and H_o^T v from one evaluation of the losses
    (:func:`tfgames.products.off_diagonal_products`).

    ``xi`` is this replica's share; ``vector`` is global (a given v must be global; with
    ``vector=None`` it is the all-reduced xi of the same pass); ``ho_v`` and ``ho_t_v`` are the
    global-batch products (all-reduced).
    """
    game.check_exact()
    p = products.off_diagonal_products(
        game._checked_losses, game.players, vector, hv=hv, htv=htv,
        vector_fn=lambda xs: _global(game, xs),
    )
    reduce = lambda t: None if t is None else _global(game, t)  # noqa: E731
    return p._replace(xi=game._unscale(p.xi), ho_v=reduce(p.ho_v), ho_t_v=reduce(p.ho_t_v))


class Linearization:
    """A game's :class:`tfgames.products.GameLinearization`, global: ``xi`` is the
    all-reduced xi of the one evaluation, every product (v must be global) is all-reduced.
    """

    def __init__(self, game: Game, *, jacobian: bool = False, full: bool = False,
                 blocks=()) -> None:
        self._game = game
        game.check_exact()
        self._lin = products.game_linearization(
            game._checked_losses, game.players, jacobian=jacobian, off_diagonal=full,
            blocks=blocks, vector_fn=lambda xs: _global(game, xs))
        self.losses, self.xi = self._lin.losses, self._lin.vector

    def hv(self, vector: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """H v on the global batch (recorded with ``jacobian=True``)."""
        return _global(self._game, self._lin.hv(vector))

    def htv(self, vector: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """H^T v on the global batch."""
        return _global(self._game, self._lin.htv(vector))

    def ho_v(self, vector: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """H_o v on the global batch."""
        return _global(self._game, self._lin.ho_v(vector))

    def block_v(self, target: int, source: int, vector: Sequence[tf.Tensor]
                ) -> list[tf.Tensor]:
        """H_ts v_s on the global batch (player ``target``'s block)."""
        return _global(self._game, self._lin.block_v(target, source, vector))


def lola_terms(game: Game) -> products.ShapingTerms:
    """Every grad_w l_i, xi, H_o xi and chi from one evaluation of the losses, all global
    (:func:`tfgames.products.lola_terms`; the gradients are all-reduced before the products,
    the products' shares after).
    """
    game.check_exact()
    p = products.lola_terms(game._checked_losses, game.players,
                            reduce_fn=lambda g: _global(game, g))
    return p._replace(ho_xi=_global(game, p.ho_xi), chi=_global(game, p.chi))


def full_hv(game: Game, vector: Sequence[tf.Tensor], mode: str) -> list[tf.Tensor]:
    """H v on the global batch; v must be global."""
    p = game.products(vector, hv=True, htv=False, mode=mode)
    return all_reduce_sum(p.hv)


def full_htv(game: Game, vector: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """H^T v on the global batch; v must be global."""
    p = game.products(vector, hv=False, htv=True)
    return all_reduce_sum(p.htv)


def count(n: int) -> tf.Tensor:
    """A product count as a float32 metric."""
    return tf.constant(float(n), tf.float32)
