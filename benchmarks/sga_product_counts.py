"""Executed matrix products of exact SGA formulations that use the game Jacobian's blocks.

SGA needs the antisymmetric part A = (H - H^T) / 2 of the game Jacobian H. The diagonal blocks
H_ii (player i's own Hessian) are symmetric, so with H_o the off-diagonal blocks

    2 A^T xi = H^T xi - H xi = H_o^T xi - H_o xi,

and the block products H_o v, H_o^T v can be restricted to the paths between players, which
could take fewer matrix products than the full H v, H^T v. Sign alignment (on by default) also
needs H^T xi = H_d xi + H_o^T xi, with H_d the diagonal blocks, and {H^T xi, H_o xi} alone does
not give A^T xi. This script swaps the formulation inside ``tfgames.SGA``'s one forward and
backward pass (``tfgames.products._reverse_pass``, replaced for the duration of one row) and
counts the matrix products each executes, on the 4x4-grid GAN of ``benchmarks/step_time.py``
(depth 6, z from the model's seed generator inside ``compute_losses``, its compiled train step,
``step_time.executed_matmuls``). The formulations, exact in real arithmetic:

- ``current``: today's double backward: full H^T v, and H v = d<g(u), v>/du with
  g(u) = H^T u for a dummy u;
- ``one-gradient``: the same two products from ONE outer gradient at a watched u = v (its
  value is H^T v, its derivative along v is H v);
- ``full-off``: full H^T v + H_o^T v + H_o v, the block products from restricted outer
  gradients g_i(c_i) = grad_{w_-i} <xi_i, c_i> (H_o v by double backward through them);
- ``per-player``: grad_w <xi_i, v_i> per player (their sum is H^T v, their off-diagonal
  blocks H_o^T v) + H_o v as above;
- ``blocks``: H_d v (grad_{w_i} <xi_i, v_i>) + H_o^T v + H_o v, all restricted;
- ``off-only`` (``use_signs=False`` only, compared with ``current`` there): H_o^T v - H_o v.

Each row also checks its first ``SGD(1)`` step (minus the direction) against ``current``'s
(relative L2 difference, float32). Rows ``only:...`` count single products alongside xi
(``only:htv``, ``only:hv``, ``only:ho``, ``only:hot``, ``only:hd``; the others zero), to read
what each costs. Counts do not depend on the width, the batch or the machine's load.

Optimizer rows (``--optimizers``) count the library's own steps on the same GAN with the
shared-primal block products (:func:`tfgames.products.off_diagonal_products`, one evaluation
of the losses for xi, H_o v and H_o^T v) against the formulations they replaced, swapped in
for the duration of one row (``tfgames.optimizers._blocks.off_diagonal_products`` and
``lola_terms`` replaced):

- ``shared``: the library as it is;
- ``full`` (SGA with ``use_signs=False`` only): H xi and H^T xi of one double-backward pass
  (``Game.products``; H^T xi - H xi = H_o^T xi - H_o xi), SGA's path before;
- ``per-player``: xi from its own evaluation, then H_o v (forward mode) and H_o^T v
  (reverse-over-reverse) with one evaluation of the losses per player
  (:func:`tfgames.products.off_diagonal_hv`, :func:`~tfgames.products.off_diagonal_htv`),
  LEAD's and LA's path before; for LOLA, the cross gradients from one evaluation, then H_o xi
  and chi (:func:`tfgames.products.lola_chi`) with one evaluation per player and product.

For CGD, GACGD and ACGD (``cgd-k5``, ``gacgd-k5``, ``acgd-k5``: exactly 5 GMRES iterations)
``shared`` is the library's one evaluation kept for every product of the solve
(:func:`tfgames.products.off_diagonal_linearization`, ``_blocks.Linearization``) and
``per-player`` the evaluation per product it replaced (:func:`tfgames.products.player_jvps`);
their solver loops are unrolled in these rows, so that every iteration's products are counted
(a ``tf.while_loop`` body would be counted once).

For LSS (``lss-k5``: exactly 5 GMRES iterations, ``regularize="never"``) ``shared`` is the
default, xi and every H v and H^T v from one evaluation
(:func:`tfgames.products.game_linearization`), and ``per-player`` its path before: xi, each
forward-mode H v and the final H^T u from an evaluation of their own (``Game.products``);
``lss-k5-forward`` is today's ``hvp_mode="forward"`` (xi and H^T u shared, each H v from its
own evaluation). The per-player products of the "before" rows (one evaluation of the losses
per player and product) are written here, no optimizer uses them any more.

Each optimizer row also checks its first ``SGD(1)`` step against the ``shared`` one.

Usage: ``python benchmarks/sga_product_counts.py [--widths 128,384] [--rows ...]
[--optimizers sga-unaligned,lead,la,lola,cgd-k5,gacgd-k5,acgd-k5,lss-k5,lss-k5-forward]``
(``--rows ''`` skips the formulation rows).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras
import numpy as np
import step_time
import tensorflow as tf

import tfgames
from tfgames import products, solvers
from tfgames.optimizers import _blocks
from tfgames.optimizers.base import all_reduce_sum

ALIGNED_ROWS = ("current", "one-gradient", "full-off", "per-player", "blocks")
COMPONENTS = ("htv", "hv", "ho", "hot", "hd")
_original_pass = products._reverse_pass


def _restricted(outer, xi, values, players, cotangents) -> list[tf.Tensor]:
    """sum_i grad_{w_-i} <xi_i, c_i>, aligned with ``values`` (H_o^T c for c = cotangents)."""
    total = [None] * len(values)
    for _, a, b in products._player_slices(players):
        others = [k for k in range(len(values)) if not a <= k < b]
        grads = outer.gradient(xi[a:b], [values[k] for k in others],
                               output_gradients=cotangents[a:b])
        for k, g in zip(others, grads):
            if g is not None:
                total[k] = g if total[k] is None else total[k] + g
    return products._zeros_for_none(total, values)


def _own(outer, xi, values, players, cotangents) -> list[tf.Tensor]:
    """H_d c: grad_{w_i} <xi_i, c_i> for each player's own block."""
    out = []
    for _, a, b in products._player_slices(players):
        out += products._zeros_for_none(
            outer.gradient(xi[a:b], values[a:b], output_gradients=cotangents[a:b]), values[a:b])
    return out


def _full(outer, xi, values, cotangents) -> list[tf.Tensor]:
    return products._zeros_for_none(outer.gradient(xi, values, output_gradients=cotangents),
                                    values)


def _double_backward(g_fn, values, vector) -> list[tf.Tensor]:
    """d<g(u), v>/du at a dummy u = 0: the transpose of the linear map g, applied to v."""
    dummies = [tf.zeros_like(x) for x in values]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(dummies)
        g_of_u = g_fn(dummies)
    return products._zeros_for_none(tape.gradient(g_of_u, dummies, output_gradients=vector),
                                    values)


def _products(row, outer, xi, values, players, vector):
    """``(htv, hv)`` such that SGA's own code (htv - hv; alignment dots with htv) computes the
    same direction as today's; for ``only:`` rows, the named products (others zero)."""
    if row == "one-gradient":
        us = [tf.identity(v) for v in vector]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(us)
            htv = _full(outer, xi, values, us)
        hv = products._zeros_for_none(tape.gradient(htv, us, output_gradients=vector), values)
        return htv, hv
    if row.startswith("only:"):
        got = {
            "htv": lambda: _full(outer, xi, values, vector),
            "hv": lambda: _double_backward(lambda u: _full(outer, xi, values, u), values,
                                           vector),
            "ho": lambda: _double_backward(
                lambda u: _restricted(outer, xi, values, players, u), values, vector),
            "hot": lambda: _restricted(outer, xi, values, players, vector),
            "hd": lambda: _own(outer, xi, values, players, vector),
        }
        zero = [tf.zeros_like(x) for x in values]
        htv, hv = zero, zero
        for name in row[len("only:"):].split(","):
            p = got[name]()
            if name in ("hv", "ho"):
                hv = [a + b for a, b in zip(hv, p)]
            else:
                htv = [a + b for a, b in zip(htv, p)]
        return htv, hv
    ho = _double_backward(lambda u: _restricted(outer, xi, values, players, u), values, vector)
    if row == "per-player":
        htv, hot = [tf.zeros_like(x) for x in values], [tf.zeros_like(x) for x in values]
        for _, a, b in products._player_slices(players):
            g = products._zeros_for_none(
                outer.gradient(xi[a:b], values, output_gradients=vector[a:b]), values)
            htv = [s + t for s, t in zip(htv, g)]
            hot = [s if a <= k < b else s + t for k, (s, t) in enumerate(zip(hot, g))]
    else:
        hot = _restricted(outer, xi, values, players, vector)
        if row == "off-only":
            return hot, ho  # with use_signs=False, SGA uses only htv - hv
        if row == "blocks":
            hd = _own(outer, xi, values, players, vector)
            return ([d + t for d, t in zip(hd, hot)], [d + o for d, o in zip(hd, ho)])
        htv = _full(outer, xi, values, vector)
    return htv, [h - t + o for h, t, o in zip(htv, hot, ho)]


def _make_pass(row):
    def reverse_pass(loss_fn, players, values, scope, watch, vector, vector_fn, want_htv,
                     want_hv):
        if row == "current" or not (want_htv and want_hv):
            return _original_pass(loss_fn, players, values, scope, watch, vector, vector_fn,
                                  want_htv, want_hv)
        with contextlib.ExitStack() as stack:
            outer = stack.enter_context(
                tf.GradientTape(watch_accessed_variables=False, persistent=True))
            outer.watch(values)
            with tf.GradientTape(watch_accessed_variables=False, persistent=True) as inner:
                inner.watch(values)
                with watch, scope:
                    losses = dict(loss_fn())
            xi = products._player_gradients(inner, losses, players, values)
            if vector is None:
                vector = [tf.stop_gradient(u)
                          for u in vector_fn([tf.stop_gradient(x) for x in xi])]
        htv, hv = _products(row, outer, xi, values, players, vector)
        return losses, [tf.stop_gradient(x) for x in xi], vector, htv, hv

    return reverse_pass


def count(row: str, width: int, use_signs: bool = True, depth: int = 6, batch: int = 256):
    """``(executed products per step, minus the first SGD(1) step's weight change)``."""
    weights = step_time.init_weights(depth, width)
    optimizer = tfgames.SGA(keras.optimizers.SGD(1.0), hvp_mode="double_backward",
                            use_signs=use_signs)
    products._reverse_pass = _make_pass(row)
    # SGA without alignment uses the shared-primal block products; these rows swap the
    # formulation inside Game.products' pass, so route it there
    _blocks.off_diagonal_products = _full_products
    try:
        run = step_time.keras_runner(weights, optimizer, step_time.real_batch(batch),
                                     check_finite=False)
    finally:
        products._reverse_pass = _original_pass
        _blocks.off_diagonal_products = _shared_products
    before = weights["discriminator"] + weights["generator"]
    return run.products, [w - v.numpy() for w, v in zip(before, run.model.trainable_variables)]


OPTIMIZERS = {
    "sga-unaligned": (lambda: tfgames.SGA(keras.optimizers.SGD(1.0), use_signs=False,
                                          hvp_mode="double_backward"), ("full", "per-player")),
    "lead": (lambda: tfgames.LEAD(keras.optimizers.SGD(1.0), alpha=0.6), ("per-player",)),
    "la": (lambda: tfgames.LA(keras.optimizers.SGD(1.0), alpha=1.0), ("per-player",)),
    "lola": (lambda: tfgames.LOLA(keras.optimizers.SGD(1.0), alpha=1.0), ("per-player",)),
    # exactly 5 solver iterations (tolerance 0, no warm start), as benchmarks/second_order_family
    "cgd-k5": (lambda: tfgames.CGD(keras.optimizers.SGD(1.0), alpha=1.0, solver="gmres",
                                   max_iterations=5, tol=0.0, warm_start=False),
               ("per-player",)),
    "gacgd-k5": (lambda: tfgames.GACGD(keras.optimizers.SGD(1.0), alpha=1.0, max_iterations=5,
                                       tol=0.0, warm_start=False), ("per-player",)),
    "acgd-k5": (lambda: tfgames.ACGD(1.0, solver="gmres", max_iterations=5, tol=0.0,
                                     warm_start=False), ("per-player",)),
    # LSS, exactly 5 GMRES iterations: "shared" is the default (H v by double backward through
    # the one evaluation), "per-player" its path before (xi, every forward-mode H v and the
    # final H^T u each from its own evaluation); lss-k5-forward: hvp_mode="forward" today
    "lss-k5": (lambda: tfgames.LSS(keras.optimizers.SGD(1.0), regularize="never",
                                   max_iterations=5, tol=0.0), ("per-player",)),
    "lss-k5-forward": (lambda: tfgames.LSS(keras.optimizers.SGD(1.0), regularize="never",
                                           max_iterations=5, tol=0.0, hvp_mode="forward"),
                       ()),
}
_shared_products = _blocks.off_diagonal_products
_shared_lola_terms = _blocks.lola_terms


# The per-player products the library used before the shared evaluation, on a Game, global
# (all-reduced like ``_blocks``' products): one evaluation of the losses per player and product.
def _cross_gradients(game):
    losses, grads = products.cross_gradients(game._checked_losses, game.players)
    return losses, [_blocks._global(game, g) for g in grads]


def _player_jvps(game, tangents):
    return _blocks._global(game, products.player_jvps(game._checked_losses, game.players,
                                                      tangents))


def _off_diagonal_hv(game, vector):
    return _blocks._global(game, products.off_diagonal_hv(game._checked_losses, game.players,
                                                          vector))


def _off_diagonal_htv(game, vector):
    return _blocks._global(game, products.off_diagonal_htv(game._checked_losses, game.players,
                                                           vector))


def _lola_chi(game, grads):
    return _blocks._global(game, products.lola_chi(game._checked_losses, game.players, grads))


def _full_products(game, vector=None, *, hv=True, htv=True):
    """H v and H^T v of one double-backward pass in place of H_o v, H_o^T v (for SGA without
    alignment, which uses only their difference)."""
    p = game.products(vector, hv=hv, htv=htv, mode="double_backward", vector_fn=all_reduce_sum)
    return products.OffDiagonalProducts(
        p.losses, p.xi, p.vector, None if p.hv is None else all_reduce_sum(p.hv),
        None if p.htv is None else all_reduce_sum(p.htv))


def _per_player_products(game, vector=None, *, hv=True, htv=True):
    """xi from its own evaluation, then one evaluation of the losses per player and product."""
    losses, xi = game.gradient()
    v = all_reduce_sum(xi) if vector is None else list(vector)
    return products.OffDiagonalProducts(
        losses, xi, v, _off_diagonal_hv(game, v) if hv else None,
        _off_diagonal_htv(game, v) if htv else None)


def _per_player_lola_terms(game):
    """The cross gradients from one evaluation, then H_o xi (forward mode) and chi
    (reverse-over-reverse) with one evaluation of the losses per player and product."""
    losses, grads = _cross_gradients(game)
    xi = [t for g, (_, a, b) in zip(grads, _blocks.player_blocks(game)) for t in g[a:b]]
    return products.ShapingTerms(losses, grads, xi, _off_diagonal_hv(game, xi),
                                 _lola_chi(game, grads))


class _PerPlayerLinearization:
    """The solvers' products as before: xi from its own evaluation, then one evaluation of the
    losses per product (:func:`tfgames.products.player_jvps`, forward mode; for LSS the full
    H v in forward mode and H^T v, each from ``Game.products``)."""

    def __init__(self, game, *, jacobian=False, full=False, blocks=()) -> None:
        del jacobian, full, blocks
        self._game = game
        self.losses, xi = game.gradient()
        self.xi = all_reduce_sum(xi)

    def hv(self, vector):
        return _blocks.full_hv(self._game, vector, "forward")

    def htv(self, vector):
        return _blocks.full_htv(self._game, vector)

    def ho_v(self, vector):
        return _off_diagonal_hv(self._game, vector)

    def block_v(self, target, source, vector):
        slices = _blocks.player_blocks(self._game)
        tangents = [[None] * len(self._game.variables) for _ in slices]
        for k, v in enumerate(vector):
            tangents[target][slices[source][1] + k] = v
        _, start, stop = slices[target]
        return _player_jvps(self._game, tangents)[start:stop]


_shared_linearization = _blocks.Linearization
FORMULATIONS = {"shared": (_shared_products, _shared_lola_terms, _shared_linearization),
                "full": (_full_products, _shared_lola_terms, _shared_linearization),
                "per-player": (_per_player_products, _per_player_lola_terms,
                               _PerPlayerLinearization)}
_original_solvers = (solvers.conjugate_gradient, solvers.gmres)


def _unrolled(solve):
    """The solver with its loop unrolled (as under a distribution strategy), so that the
    executed products of all its iterations are counted, not those of one loop body."""
    return lambda *args, **kwargs: solve(*args, **{**kwargs, "unroll": True})


def count_optimizer(name: str, formulation: str, width: int, depth: int = 6,
                    batch: int = 256):
    """Like :func:`count`, for the library optimizer ``name`` with the block products of
    ``formulation``."""
    weights = step_time.init_weights(depth, width)
    (_blocks.off_diagonal_products, _blocks.lola_terms,
     _blocks.Linearization) = FORMULATIONS[formulation]
    solvers.conjugate_gradient, solvers.gmres = (_unrolled(f) for f in _original_solvers)
    try:
        run = step_time.keras_runner(weights, OPTIMIZERS[name][0](),
                                     step_time.real_batch(batch), check_finite=False)
    finally:
        _blocks.off_diagonal_products = _shared_products
        _blocks.lola_terms = _shared_lola_terms
        _blocks.Linearization = _shared_linearization
        solvers.conjugate_gradient, solvers.gmres = _original_solvers
    before = weights["discriminator"] + weights["generator"]
    return run.products, [w - v.numpy() for w, v in zip(before, run.model.trainable_variables)]


def relative(x, reference) -> float:
    diff = sum(float(np.sum((a - b) ** 2)) for a, b in zip(x, reference))
    return float(np.sqrt(diff / sum(float(np.sum(b**2)) for b in reference)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="128,384")
    parser.add_argument("--rows", default=",".join(ALIGNED_ROWS[1:]) + ",off-only",
                        help="comma-separated rows besides 'current'; 'only:hv+ho' style "
                        "rows use '+' between products")
    parser.add_argument("--optimizers", default="",
                        help=f"comma-separated optimizer rows, of {sorted(OPTIMIZERS)}")
    args = parser.parse_args(argv)
    rows = [r.replace("+", ",") for r in args.rows.split(",") if r]
    names = [n for n in args.optimizers.split(",") if n]
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; depth 6, batch 256; "
          "executed matrix products per SGA step (plain RMSProp step: 67)")
    for width in (int(w) for w in args.widths.split(",") if w):
        if names:
            print(f"\nwidth {width}\n{'optimizer':14s} {'formulation':12s} {'products':>9s} "
                  f"{'/shared':>8s} {'step vs shared':>15s}")
        for name in names:
            n_ref, ref_step = count_optimizer(name, "shared", width)
            print(f"{name:14s} {'shared':12s} {n_ref:9d} {1.0:8.3f} {'-':>15s}", flush=True)
            for formulation in OPTIMIZERS[name][1]:
                n, step = count_optimizer(name, formulation, width)
                print(f"{name:14s} {formulation:12s} {n:9d} {n / n_ref:8.3f} "
                      f"{relative(step, ref_step):15.1e}", flush=True)
        if not rows:
            continue
        reference = {True: count("current", width), False: None}
        print(f"\nwidth {width}\n{'row':22s} {'use_signs':>9s} {'products':>9s} "
              f"{'/current':>9s} {'direction vs current':>21s}")
        n_ref = reference[True][0]
        print(f"{'current':22s} {'True':>9s} {n_ref:9d} {1.0:9.3f} {'-':>21s}")
        for row in rows:
            signs = row != "off-only"
            if not signs and reference[False] is None:
                reference[False] = count("current", width, use_signs=False)
                n0 = reference[False][0]
                print(f"{'current':22s} {'False':>9s} {n0:9d} {1.0:9.3f} {'-':>21s}")
            n, step = count(row, width, use_signs=signs)
            n0, ref_step = reference[signs]
            check = "-" if row.startswith("only:") else f"{relative(step, ref_step):.1e}"
            print(f"{row:22s} {signs!s:>9s} {n:9d} {n / n0:9.3f} {check:>21s}", flush=True)


if __name__ == "__main__":
    main()
