"""Executable TF1 reference of the seed notebook's SGA optimizer and GAN.

This module is a **test and benchmark reference**, not an API for users. It reproduces, in
``tf.compat.v1`` graph mode, the code of the seed notebook (Sirius See's "SGA implementation,
Comparison and Evaluation", itself adapted from DeepMind's 2018 SGA notebook):

* Experiment 1: ``SymplecticOptimizer`` with the helpers ``jacobian_vec``,
  ``jacobian_transpose_vec``, ``_dot``, ``list_divide_scalar`` and ``list_subtract``, ported
  statement for statement. The only substitution is ``kfac.utils.fwd_gradients``, which is
  re-implemented here (:func:`fwd_gradients`) with kfac's own double-backward definition.
* Experiments 2/3: the MLP generator/discriminator and ``reset_and_build_graph``: sigmoid
  cross-entropy losses, ``xs = disc_vars + gen_vars``, ``Xi = disc_grads + gen_grads``, a
  ``tf.control_dependencies`` block around ``optimizer.apply_gradients``.

Deliberate, documented differences from the seed, all needed to make it a deterministic
reference:

* ``snt.Linear`` is replaced by plain variables ``w`` of shape ``(in, out)`` and ``b`` of shape
  ``(out,)`` with ``tf.matmul(h, w) + b`` (what ``snt.Linear`` computes), initialised from given
  NumPy arrays instead of Sonnet's initialisers.
* ``x_real`` and ``z`` are placeholders fed from given batches instead of ``tf.random_normal``.
* The graph is built in a fresh ``tf.Graph`` with its own ``tf.compat.v1.Session``; eager
  execution is never disabled globally, so TF2 code can run in the same process.
* Variables are TF2's default resource variables (TF 1.14 used reference variables); the update
  semantics of one ``sess.run(train_op)`` are the same and resource variables make them
  deterministic.

Everything else (optimizers and their TF1 defaults, the ``n = len(vars_)`` count of variable
*tensors* in the sign rule, ``tf.sign(mult / n + 0.1) * reg_params``) is kept as in the seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

__all__ = [
    "MODES",
    "SeedGanGraph",
    "SymplecticOptimizer",
    "build_seed_gan_graph",
    "fwd_gradients",
    "jacobian_transpose_vec",
    "jacobian_vec",
    "list_divide_scalar",
    "list_subtract",
    "run_seed_gan",
]

#: Optimizer modes understood by the seed's ``reset_and_build_graph``.
MODES = ("SGA", "RMS", "SGD", "ADA", "ADG")


# ---------------------------------------------------------------------------------------------
# kfac.utils.fwd_gradients (kfac 0.1.x, kfac/python/ops/utils.py)
# ---------------------------------------------------------------------------------------------


def fwd_gradients(ys, xs, grad_xs=None, stop_gradients=None, colocate_gradients_with_ops=True):
    """Forward-mode gradients ``J(ys wrt xs) @ grad_xs`` by the double-backward trick.

    Same definition as ``kfac.utils.fwd_gradients``: take ``tf.gradients`` of ``ys`` with dummy
    cotangents ``us`` (NaN-filled; the result is linear in them and they are never evaluated),
    then differentiate that vector-Jacobian product with respect to ``us`` with cotangents
    ``grad_xs``. Graph mode only.

    Args:
      ys: list of tensors.
      xs: list of tensors or variables.
      grad_xs: list of tensors shaped like ``xs`` (the tangent vector).
      stop_gradients: passed to the first ``tf.gradients`` call.
      colocate_gradients_with_ops: passed to both ``tf.gradients`` calls.

    Returns:
      A list of tensors shaped like ``ys``.
    """
    us = [tf.zeros_like(y) + float("nan") for y in ys]
    dydxs = tf1.gradients(
        ys, xs, grad_ys=us, stop_gradients=stop_gradients,
        colocate_gradients_with_ops=colocate_gradients_with_ops)

    # Deal with strange types that tf.gradients returns but can't deal with.
    dydxs = [
        tf.convert_to_tensor(dydx) if isinstance(dydx, tf.IndexedSlices) else dydx
        for dydx in dydxs
    ]
    dydxs = [tf.zeros_like(x) if dydx is None else dydx for x, dydx in zip(xs, dydxs)]
    dysdx = tf1.gradients(
        dydxs, us, grad_ys=grad_xs, colocate_gradients_with_ops=colocate_gradients_with_ops)
    return dysdx


# ---------------------------------------------------------------------------------------------
# Seed, Experiment 1: helpers of SymplecticOptimizer
# ---------------------------------------------------------------------------------------------


def list_divide_scalar(xs, y):
    """Seed helper: ``[x / y for x in xs]``."""
    return [x / y for x in xs]


def list_subtract(xs, ys):
    """Seed helper: elementwise ``x - y`` over two lists."""
    return [x - y for (x, y) in zip(xs, ys)]


def jacobian_vec(ys, xs, vs):
    """Seed helper: Jacobian-vector product ``H v`` (via :func:`fwd_gradients`)."""
    return fwd_gradients(ys, xs, grad_xs=vs, stop_gradients=xs)


def jacobian_transpose_vec(ys, xs, vs):
    """Seed helper: transposed Jacobian-vector product ``H^T v`` (one ``tf.gradients``)."""
    dydxs = tf1.gradients(ys, xs, grad_ys=vs, stop_gradients=xs)
    dydxs = [tf.zeros_like(x) if dydx is None else dydx for x, dydx in zip(xs, dydxs)]
    return dydxs


def _dot(x, y):
    """Seed helper: sum over the list of ``reduce_sum(xx * yy)``."""
    dot_list = []
    for xx, yy in zip(x, y):
        dot_list.append(tf.reduce_sum(xx * yy))
    return tf.add_n(dot_list)


# ---------------------------------------------------------------------------------------------
# Seed, Experiment 1: SymplecticOptimizer
# ---------------------------------------------------------------------------------------------


class SymplecticOptimizer(tf1.train.Optimizer):
    """The seed's SGA optimizer: RMSProp on ``xi + lambda * A^T xi`` (TF1 graph mode).

    Ported verbatim from the seed. ``apply_gradients`` takes the game gradient ``xi`` as the
    gradients, forms ``H xi`` (double backward) and ``H^T xi``, ``A^T xi = (H^T xi - H xi) / 2``
    and, with ``use_signs``, ``lambda = sign(<xi, H^T xi> <A^T xi, H^T xi> / n + 0.1) *
    reg_params`` where ``n`` is the number of variable tensors. The adjusted gradient is passed to
    an inner ``tf.compat.v1.train.RMSPropOptimizer(learning_rate)`` with TF1 defaults (decay 0.9,
    momentum 0, epsilon 1e-10, mean-square slot initialised to ones).

    The only addition to the seed is :attr:`debug_tensors`, a dict holding the intermediate
    tensors of the last ``apply_gradients`` call (``h_v``, ``ht_v``, ``at_v``, ``lambda_``,
    ``apply_vec``) so tests can evaluate them.
    """

    def __init__(self,
                 learning_rate,
                 reg_params=1.,
                 use_signs=True,
                 use_locking=False,
                 name='symplectic_optimizer'):
        super().__init__(
            use_locking=use_locking, name=name)
        self._gd = tf1.train.RMSPropOptimizer(learning_rate)
        self._reg_params = reg_params
        self._use_signs = use_signs
        self.debug_tensors = {}

    def compute_gradients(self,
                          loss,
                          var_list=None,
                          gate_gradients=tf1.train.Optimizer.GATE_OP,
                          aggregation_method=None,
                          colocate_gradients_with_ops=False,
                          grad_loss=None):
        """Delegates to the inner RMSProp optimizer's ``compute_gradients`` (as the seed)."""
        return self._gd.compute_gradients(loss, var_list, gate_gradients,
                                          aggregation_method,
                                          colocate_gradients_with_ops, grad_loss)

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        """Applies the symplectic-adjusted gradients with the inner RMSProp optimizer."""
        grads, vars_ = zip(*grads_and_vars)
        n = len(vars_)
        h_v = jacobian_vec(grads, vars_, grads)
        ht_v = jacobian_transpose_vec(grads, vars_, grads)
        at_v = list_divide_scalar(list_subtract(ht_v, h_v), 2.)
        if self._use_signs:
            grad_dot_h = _dot(grads, ht_v)
            at_v_dot_h = _dot(at_v, ht_v)
            mult = grad_dot_h * at_v_dot_h
            lambda_ = tf.sign(mult / n + 0.1) * self._reg_params
        else:
            lambda_ = self._reg_params
        apply_vec = [(g + lambda_ * ag, x)
                     for (g, ag, x) in zip(grads, at_v, vars_)
                     if at_v is not None]
        self.debug_tensors = dict(
            h_v=list(h_v), ht_v=list(ht_v), at_v=list(at_v), lambda_=lambda_,
            apply_vec=apply_vec)
        return self._gd.apply_gradients(apply_vec, global_step, name)


# ---------------------------------------------------------------------------------------------
# Seed, Experiments 2/3: MLP and reset_and_build_graph
# ---------------------------------------------------------------------------------------------


class SeedGanGraph(tuple):
    """``(graph, session, train_op, feeds)`` returned by :func:`build_seed_gan_graph`.

    Unpacks as that 4-tuple; further handles are attributes:

    * ``graph``, ``session``, ``train_op``, ``feeds`` (``{"x_real": ph, "z": ph}``),
    * ``disc_loss``, ``gen_loss``, ``x_fake`` (tensors),
    * ``disc_vars``, ``gen_vars``, ``variables`` (``disc_vars + gen_vars``, the seed's ``xs``),
    * ``grads`` (the seed's ``Xi = disc_grads + gen_grads``), ``optimizer``, ``mode``.
    """

    def __new__(cls, graph, session, train_op, feeds, **extras):
        self = super().__new__(cls, (graph, session, train_op, feeds))
        self.__dict__.update(extras)
        return self

    graph = property(lambda self: self[0])
    session = property(lambda self: self[1])
    train_op = property(lambda self: self[2])
    feeds = property(lambda self: self[3])

    def feed_dict(self, x_real, z):
        """The ``feed_dict`` for one batch (``x_real`` of shape (B, x_dim), ``z`` (B, z_dim))."""
        return {self.feeds["x_real"]: x_real, self.feeds["z"]: z}


def _mlp(h, params):
    """Seed's MLP with plain variables: ReLU(h w + b) per hidden layer, linear output."""
    n_layers = len(params) // 2
    for i in range(n_layers):
        h = tf.matmul(h, params[2 * i]) + params[2 * i + 1]
        if i < n_layers - 1:
            h = tf.nn.relu(h)
    return h


def _make_optimizer(mode, learning_rate, reg_params, use_signs):
    if mode == 'RMS':
        return tf1.train.RMSPropOptimizer(learning_rate)
    elif mode == 'SGD':
        return tf1.train.GradientDescentOptimizer(learning_rate)
    elif mode == 'ADG':
        return tf1.train.AdagradOptimizer(learning_rate)
    elif mode == 'ADA':
        return tf1.train.AdamOptimizer(learning_rate)
    elif mode == 'SGA':
        return SymplecticOptimizer(learning_rate, reg_params=reg_params, use_signs=use_signs)
    else:
        raise ValueError('Mode %s not recognised' % mode)


def _check_weights(weights, depth, width, name):
    weights = list(weights)
    if len(weights) != 2 * (depth + 1):
        raise ValueError(
            f"init_weights[{name!r}] needs {2 * (depth + 1)} arrays (w, b per layer for depth "
            f"{depth}), got {len(weights)}")
    for i in range(depth + 1):
        w, b = np.shape(weights[2 * i]), np.shape(weights[2 * i + 1])
        if len(w) != 2 or b != (w[1],):
            raise ValueError(f"{name} layer {i}: expected w (in, out) and b (out,), got {w}, {b}")
        if i < depth and w[1] != width:
            raise ValueError(f"{name} layer {i}: hidden width {w[1]} != width={width}")
        if i > 0 and w[0] != np.shape(weights[2 * i - 2])[1]:
            raise ValueError(f"{name} layer {i}: input size {w[0]} does not chain")
    return weights


def build_seed_gan_graph(init_weights: Mapping[str, Sequence[np.ndarray]],
                         mode: str,
                         learning_rate: float,
                         depth: int,
                         width: int,
                         batch_size: int | None = None,
                         reg_params: float = 1.0,
                         use_signs: bool = True,
                         dtype=tf.float32,
                         config: tf1.ConfigProto | None = None) -> SeedGanGraph:
    """Builds the seed's ``reset_and_build_graph`` GAN in a fresh graph and opens a session.

    The generator maps ``z`` (B, z_dim) to ``x_fake`` (B, x_dim) and the discriminator maps
    (B, x_dim) to one logit; both are MLPs with ``depth`` hidden ReLU layers of ``width`` units.
    ``z_dim`` and ``x_dim`` are read from the weight shapes. Losses are the seed's sigmoid
    cross-entropies; the train op applies ``Xi = disc_grads + gen_grads`` to
    ``xs = disc_vars + gen_vars`` under ``tf.control_dependencies`` with the optimizer chosen by
    ``mode`` (TF1 defaults). Variables are initialised (``global_variables_initializer``, then
    assigned from ``init_weights``) and the graph is finalised before returning.

    Args:
      init_weights: ``{"discriminator": [w0, b0, ..., w_depth, b_depth], "generator": [...]}``;
        each ``w`` of shape ``(in, out)``, each ``b`` of shape ``(out,)``.
      mode: one of ``"SGA", "RMS", "SGD", "ADA"`` (Adam), ``"ADG"`` (Adagrad).
      learning_rate: learning rate of the optimizer.
      depth: number of hidden layers of each MLP.
      width: hidden layer width.
      batch_size: static batch size of the placeholders (``None`` leaves it dynamic).
      reg_params: SGA's ``reg_params`` (seed default 1.0); ignored by other modes.
      use_signs: SGA's ``use_signs`` (seed default True); ignored by other modes.
      dtype: variable and placeholder dtype (the seed used float32).
      config: optional ``tf.compat.v1.ConfigProto`` for the session.

    Returns:
      A :class:`SeedGanGraph`, unpacking as ``(graph, session, train_op, feeds)``; run a step
      with ``session.run(train_op, {feeds["x_real"]: x, feeds["z"]: z})``. The caller owns the
      session and should close it.
    """
    if mode not in MODES:
        raise ValueError('Mode %s not recognised' % mode)
    dtype = tf.as_dtype(dtype)
    np_dtype = dtype.as_numpy_dtype
    disc_w = _check_weights(init_weights["discriminator"], depth, width, "discriminator")
    gen_w = _check_weights(init_weights["generator"], depth, width, "generator")
    z_dim = np.shape(gen_w[0])[0]
    x_dim = np.shape(gen_w[-2])[1]
    if np.shape(disc_w[0])[0] != x_dim or np.shape(disc_w[-2])[1] != 1:
        raise ValueError("discriminator must map x_dim -> 1 with x_dim the generator output")

    graph = tf.Graph()
    with graph.as_default():
        x_real = tf1.placeholder(dtype, [batch_size, x_dim], name="x_real")
        z = tf1.placeholder(dtype, [batch_size, z_dim], name="z")

        def make_vars(scope, arrays):
            out = []
            with tf1.variable_scope(scope):
                for i in range(len(arrays) // 2):
                    with tf1.variable_scope("linear" if i == 0 else "linear_%d" % i):
                        for pname, arr in zip(("w", "b"), arrays[2 * i:2 * i + 2]):
                            out.append(tf1.get_variable(
                                pname, shape=np.shape(arr), dtype=dtype,
                                initializer=tf1.zeros_initializer(), use_resource=True))
            return out

        gen_vars = make_vars("generator", gen_w)
        disc_vars = make_vars("discriminator", disc_w)

        x_fake = _mlp(z, gen_vars)
        disc_out_real = _mlp(x_real, disc_vars)
        disc_out_fake = _mlp(x_fake, disc_vars)

        # Loss
        disc_loss_real = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(
                logits=disc_out_real, labels=tf.ones_like(disc_out_real)))
        disc_loss_fake = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(
                logits=disc_out_fake, labels=tf.zeros_like(disc_out_fake)))
        disc_loss = disc_loss_real + disc_loss_fake

        gen_loss = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(
                logits=disc_out_fake, labels=tf.ones_like(disc_out_fake)))

        # Compute gradients
        xs = disc_vars + gen_vars
        disc_grads = tf1.gradients(disc_loss, disc_vars)
        gen_grads = tf1.gradients(gen_loss, gen_vars)
        Xi = disc_grads + gen_grads
        apply_vec = list(zip(Xi, xs))

        optimizer = _make_optimizer(mode, learning_rate, reg_params, use_signs)

        with tf.control_dependencies([g for (g, v) in apply_vec]):
            train_op = optimizer.apply_gradients(apply_vec)

        init = tf1.global_variables_initializer()

        value_phs = [tf1.placeholder(dtype, v.shape) for v in xs]
        load_op = tf.group(*[v.assign(p) for v, p in zip(xs, value_phs)])
        graph.finalize()

    session = tf1.Session(graph=graph, config=config)
    session.run(init)
    session.run(load_op, {p: np.asarray(a, dtype=np_dtype)
                          for p, a in zip(value_phs, disc_w + gen_w)})

    return SeedGanGraph(
        graph, session, train_op, {"x_real": x_real, "z": z},
        disc_loss=disc_loss, gen_loss=gen_loss, x_fake=x_fake,
        disc_vars=disc_vars, gen_vars=gen_vars, variables=xs, grads=Xi,
        optimizer=optimizer, mode=mode)


def run_seed_gan(init_weights: Mapping[str, Sequence[np.ndarray]],
                 batches: Sequence[tuple[np.ndarray, np.ndarray]],
                 mode: str,
                 learning_rate: float,
                 depth: int,
                 width: int,
                 **kwargs) -> tuple[list[list[np.ndarray]], list[tuple[float, float]]]:
    """Runs the seed's GAN training loop, one ``train_op`` per batch, and records it.

    Args:
      init_weights: initial weights, see :func:`build_seed_gan_graph`.
      batches: list of ``(x_real, z)`` NumPy arrays of shapes (B, x_dim) and (B, z_dim).
      mode, learning_rate, depth, width: as in :func:`build_seed_gan_graph`.
      **kwargs: further keyword arguments of :func:`build_seed_gan_graph` (``reg_params``,
        ``use_signs``, ``dtype``, ``config``, ``batch_size``).

    Returns:
      ``(params, losses)``: ``params[t]`` is the list of variable values after step ``t``, in
      the order ``disc_vars + gen_vars`` (``[dw0, db0, ..., gw0, gb0, ...]``); ``losses[t]`` is
      ``(disc_loss, gen_loss)`` fetched in the same ``sess.run`` as step ``t``'s train op, i.e.
      evaluated at the parameters *before* the update (as the seed's training loop prints them).
    """
    g = build_seed_gan_graph(init_weights, mode, learning_rate, depth, width, **kwargs)
    params, losses = [], []
    try:
        for x_real, z in batches:
            d_loss, g_loss, _ = g.session.run(
                [g.disc_loss, g.gen_loss, g.train_op], g.feed_dict(x_real, z))
            losses.append((float(d_loss), float(g_loss)))
            params.append([np.array(v) for v in g.session.run(g.variables)])
    finally:
        g.session.close()
    return params, losses
