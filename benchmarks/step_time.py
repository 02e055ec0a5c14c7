"""Step time of tfgames on the path users run, against the seed's TF1 code and hand-written steps.

Every row trains the seed's 4x4-grid GAN (G and D: ``depth`` hidden ReLU layers of ``width``
units, z 64, x 2; sigmoid cross-entropy losses) from identical initial weights, with the
learning rate 1e-4, one step per call. The rows, measured side by side in one process:

- ``tfgames-plain``: a :class:`tfgames.GameModel` compiled with ``keras.optimizers.RMSprop``
  (simultaneous RMSProp), stepped by the model's own compiled ``train_function`` (the step
  ``fit`` runs, data from a ``tf.data`` iterator). The noise z is drawn **inside**
  ``compute_losses`` from ``self.seed_generator``, as the README's GAN does;
- ``tfgames-sga`` (the default ``tfgames.SGA``), ``tfgames-sga-forward`` and
  ``tfgames-sga-double_backward`` (``hvp_mode=...``): the same model compiled with
  ``tfgames.SGA(keras.optimizers.RMSprop(1e-4))``; the explicit row equal to what the default
  resolves to is left out;
- ``tfgames-sga-unchecked``, ``tfgames-plain-unchecked``: the default SGA and the plain step
  with ``model.check_finite = False`` (no per-step divergence check: its share of the step);
- ``hand-plain``, ``hand-sga-forward``, ``hand-sga-double_backward``: the fastest
  ``tf.function`` steps written without tfgames on the same Keras players and the same Keras
  ``RMSprop``, the noise drawn in the step from a ``keras.random.SeedGenerator``; SGA with
  H xi by forward-over-reverse (a ``ForwardAccumulator`` over the pass that computes xi, whose
  primal part is then the same graph: the noise is one tensor) or by the double-backward
  trick; no diagnostics;
- ``keras-plain``: Keras' own floor, without tfgames: a plain ``keras.Model`` subclass whose
  hand-written ``train_step`` draws z from its ``SeedGenerator``, computes both players'
  gradients, applies them with the same ``RMSprop`` and updates two ``Mean`` trackers, stepped
  by its own compiled ``train_function`` on the same ``tf.data`` iterator as ``tfgames-plain``
  (so ``tfgames-plain / keras-plain`` is what tfgames adds to Keras, and
  ``keras-plain / hand-plain`` what Keras' ``fit`` step adds to a bare ``tf.function``);
- ``tfgames-sga-tf1``, ``tfgames-plain-tf1``: what a user migrating the seed gets,
  ``tfgames.compat.v1.SymplecticOptimizer(1e-4)`` and a ``GameModel`` compiled with
  ``tfgames.compat.v1.RMSPropOptimizer(1e-4)``: the same steps with TF1's fused RMSProp kernel
  (``ResourceApplyRMSProp``) instead of Keras' ``RMSprop``, whose update is eight elementwise
  ops per variable (so ``tfgames-plain / tfgames-plain-tf1`` is the share of Keras' unfused
  update; the TF1 optimizer's mean square starts at one, which does not change the cost);
- ``tf1-rms``: the seed's TF1 RMSProp step (``tf.compat.v1`` graph mode, fused
  ``ApplyRMSProp``);
- ``tf1-sga-seed``: the seed's TF1 ``SymplecticOptimizer`` as written: kfac's
  ``fwd_gradients`` passes ``colocate_gradients_with_ops=True`` while the seed's other
  ``tf.gradients`` calls use TF1's default ``False``;
- ``tf1-sga-best``: the same code with every ``tf.gradients`` call colocated alike (``True``):
  Grappler's common-subexpression elimination then merges the products that the double-backward
  H xi has in common with H^T xi, which it does not do across differing colocation attributes.

The TF1 rows feed z and x through placeholders (drawing them in the graph makes no measurable
difference). For each architecture the configurations are built, warmed up (tracing is not step
time), then run ``--reps`` interleaved repetitions of ``--steps`` steps (the rows in a new
seeded random order each repetition, Python's garbage collector paused inside a timed
repetition and run between them, as ``timeit`` does); the medians and their
ratios are printed with each row's **executed** matrix products per step (``-`` for XLA rows,
whose products run inside compiled clusters): the ``MatMul`` ops
(and their oneDNN rewrites) in the graphs TensorFlow runs, read from the TF1 session's partition
graphs and, for ``tf.function`` steps, from the partition graphs the eager context collects on
the step's first call; the ``ops`` column counts every node of those graphs (constants,
function arguments and returns included). Absolute times depend on the machine; the ratios are
the result.
Below each table the issue's target ratios are printed three ways: as ratios of the medians, of
the fastest repetitions, and **paired**, as the median of the per-repetition ratios (two rows
of one repetition ran seconds apart, so their ratio cancels much of the machine's drift) with a
90% bootstrap interval over the repetitions, and a verdict per target: ``met`` (the whole
interval within the target), ``not met`` (none of it) or ``within noise``.

With ``--memory`` it also measures, for ``tfgames-plain``, ``-sga-forward`` and
``-sga-double_backward`` at each architecture, the peak resident memory of a training step:
each configuration runs in a fresh subprocess (with ``MALLOC_MMAP_THRESHOLD_`` fixed, so that
freed tensors go back to the system), warms up, resets the kernel's high-water mark
(``/proc/self/clear_refs``), runs steps and reads ``VmHWM``: the step's transient memory is
the high-water mark minus the resident size before the steps (weights, optimizer state, the
TensorFlow runtime). ``tf.config.experimental.get_memory_info`` has no statistics for the CPU.

``--targets-only`` runs just the five rows the targets compare (``TARGET_ROWS``): more
repetitions fit in the same time, and the process holds five configurations instead of
fourteen.

Usage: ``python benchmarks/step_time.py [--widths 128,384,1024] [--batches 64,256,1024]
[--reps 5] [--steps 3] [--memory] [--small] [--jit] [--plain-only | --targets-only]``. The
widths run at batch 256; the batches run at width 384. ``--small`` is a smoke run on tiny nets.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import tfgames
from tfgames.repeatability import executed_graphs

tf.get_logger().setLevel("ERROR")  # retracing warnings: every row is its own function

try:  # the lab split (issue 15) moves the TF1 reference
    from tfgames.lab import tf1_seed
except ImportError:  # pragma: no cover
    from tfgames.testing import tf1_seed

Z_DIM, X_DIM, LR = 64, 2, 1e-4
GRID = np.array([(i, j) for i in (-1.5, -0.5, 0.5, 1.5) for j in (-1.5, -0.5, 0.5, 1.5)])


# -- the model and data ------------------------------------------------------------------------
def init_weights(depth: int, width: int, z_dim: int = Z_DIM, x_dim: int = X_DIM,
                 seed: int = 0) -> dict:
    """LeCun-normal kernels and zero biases, as NumPy arrays, for both players."""
    rng = np.random.default_rng(seed)

    def net(sizes):
        out = []
        for a, b in itertools.pairwise(sizes):
            out += [(rng.standard_normal((a, b)) * np.sqrt(1.0 / a)).astype("float32"),
                    np.zeros(b, "float32")]
        return out

    return {"discriminator": net([x_dim] + [width] * depth + [1]),
            "generator": net([z_dim] + [width] * depth + [x_dim])}


def real_batch(batch_size: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    x = GRID[np.arange(batch_size) % 16] + 0.02 * rng.standard_normal((batch_size, X_DIM))
    return x.astype("float32")


def mlp(weights: list[np.ndarray], name: str) -> keras.Sequential:
    """ReLU MLP whose Dense layers take the given (in, out) kernels and biases."""
    layers = [keras.Input((weights[0].shape[0],))]
    n = len(weights) // 2
    for i in range(n):
        layers.append(keras.layers.Dense(weights[2 * i].shape[1],
                                         activation="relu" if i < n - 1 else None))
    model = keras.Sequential(layers, name=name)
    model.set_weights(weights)
    return model


def gan_losses(discriminator, generator, x_real, z) -> dict:
    """The seed's sigmoid cross-entropy losses."""
    real = discriminator(x_real)
    fake = discriminator(generator(z))
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    d = tf.reduce_mean(bce(tf.ones_like(real), real)) + tf.reduce_mean(
        bce(tf.zeros_like(fake), fake))
    return {"discriminator": d, "generator": tf.reduce_mean(bce(tf.ones_like(fake), fake))}


class NoiseGAN(tfgames.GameModel):
    """The README's GAN: the data are real samples; the noise is drawn inside
    ``compute_losses`` from the model's seed generator."""

    def __init__(self, weights: dict, z_dim: int = Z_DIM, **kwargs):
        super().__init__(**kwargs)
        self.z_dim = z_dim
        self.discriminator = mlp(weights["discriminator"], "discriminator")
        self.generator = mlp(weights["generator"], "generator")
        self.noise_draws = 0  # traces of compute_losses that drew noise (the test checks it)

    def players(self):
        return {"discriminator": self.discriminator, "generator": self.generator}

    def compute_losses(self, x_real, training=False):
        z = keras.random.normal((keras.ops.shape(x_real)[0], self.z_dim), seed=self.seed_generator)
        self.noise_draws += 1
        return gan_losses(self.discriminator, self.generator, x_real, z)


# -- executed matrix products ------------------------------------------------------------------
def matmuls(nodes) -> int:
    """Matrix products among ``nodes``: ``MatMul`` and, in the graphs TensorFlow executes, its
    oneDNN rewrites ``_MklMatMul`` and the bias/activation-fused ``_MklNativeFusedMatMul``."""
    return sum("MatMul" in n.op for n in nodes)


def executed_ops(graphs: list) -> int:
    """Ops executed per call: every node of the partition graphs that the first call
    instantiated (constants, function arguments and returns included)."""
    return sum(len(g.node) for g in graphs)


def executed_matmuls(graphs: list) -> int:
    """Products executed per call, summed over the partition graphs that the first call
    instantiated (``fit``'s loop function inlines its step function, so each product is
    counted once: the Keras rows give the counts of their step traced alone)."""
    return matmuls(n for g in graphs for n in g.node)


# -- runners: run(steps) runs that many steps and waits for them ----------------------------------
def keras_runner(weights: dict, optimizer, x: np.ndarray, jit: bool = False,
                 check_finite: bool | None = None):
    """``GameModel``'s own compiled train step (what ``fit`` runs) on a ``tf.data`` iterator;
    ``check_finite=False`` turns the model's per-step divergence check off."""
    model = NoiseGAN(weights, seed=0)
    if check_finite is not None and hasattr(model, "check_finite"):
        model.check_finite = check_finite
    model.compile(optimizer=optimizer, jit_compile=jit)
    return fit_step_runner(model, x, jit)


def fit_step_runner(model: keras.Model, x: np.ndarray, jit: bool):
    """``run(steps)`` stepping a compiled model's own ``train_function`` (what ``fit`` runs)
    on a ``tf.data`` iterator over ``x``; ``run.products``: its executed products per step."""
    iterator = iter(tf.data.Dataset.from_tensors(x).repeat())
    model.make_train_function()

    def run(steps: int) -> None:
        for _ in range(steps):
            logs = model.train_function(iterator)
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, logs)

    graphs = executed_graphs(lambda: run(1))
    run.products = None if jit else executed_matmuls(graphs)  # XLA: inside its clusters
    run.ops = None if jit else executed_ops(graphs)
    run.model = model
    return run


class KerasGAN(keras.Model):
    """The plain simultaneous step written as a stock ``keras.Model`` (no tfgames)."""

    def __init__(self, weights: dict, z_dim: int = Z_DIM):
        super().__init__()
        self.z_dim = z_dim
        self.discriminator = mlp(weights["discriminator"], "discriminator")
        self.generator = mlp(weights["generator"], "generator")
        self.noise = keras.random.SeedGenerator(0)
        self.trackers = [keras.metrics.Mean(name="discriminator_loss"),
                         keras.metrics.Mean(name="generator_loss")]

    def train_step(self, x_real):
        z = keras.random.normal((keras.ops.shape(x_real)[0], self.z_dim), seed=self.noise)
        with tf.GradientTape(persistent=True) as tape:
            losses = gan_losses(self.discriminator, self.generator, x_real, z)
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        grads = (tape.gradient(losses["discriminator"], d_vars)
                 + tape.gradient(losses["generator"], g_vars))
        self.optimizer.apply(grads, d_vars + g_vars)
        for tracker, name in zip(self.trackers, ("discriminator", "generator")):
            tracker.update_state(losses[name])
        return {t.name: t.result() for t in self.trackers}


def keras_plain_runner(weights: dict, x: np.ndarray, jit: bool = False):
    """:class:`KerasGAN`'s own compiled train step on a ``tf.data`` iterator."""
    model = KerasGAN(weights)
    model.compile(optimizer=keras.optimizers.RMSprop(LR), jit_compile=jit)
    return fit_step_runner(model, x, jit)


def dense_stack(values: list, h: tf.Tensor) -> tf.Tensor:
    """The ReLU MLP as a function of its kernels and biases (tensors read once)."""
    n = len(values) // 2
    for i in range(n):
        h = tf.matmul(h, values[2 * i]) + values[2 * i + 1]
        if i < n - 1:
            h = tf.nn.relu(h)
    return h


def hand_runner(weights: dict, kind: str, x: np.ndarray, jit: bool = False):
    """The fastest step written without tfgames: ``kind`` is ``plain`` (simultaneous RMSProp),
    ``forward`` or ``double_backward`` (SGA, lambda 1, alignment, epsilon 0.1, d = number of
    scalars, as ``tfgames.SGA``'s defaults), on the same variables and the same Keras
    ``RMSprop``. The variables are read once per step and the losses written as functions of
    those tensors, so that in forward mode the second pass's primal part is the same graph as
    the first's (one noise tensor, one read of each variable) and Grappler computes it once."""
    discriminator = mlp(weights["discriminator"], "discriminator")
    generator = mlp(weights["generator"], "generator")
    keras_vars = discriminator.trainable_variables + generator.trainable_variables
    n_d = len(discriminator.trainable_variables)
    optimizer = keras.optimizers.RMSprop(LR)
    optimizer.build(keras_vars)
    seed = keras.random.SeedGenerator(0)
    size = float(sum(int(np.prod(v.shape)) for v in keras_vars))
    x = tf.constant(x)

    def losses_at(values, z):
        d, g = values[:n_d], values[n_d:]
        real, fake = dense_stack(d, x), dense_stack(d, dense_stack(g, z))
        bce = tf.nn.sigmoid_cross_entropy_with_logits
        return (tf.reduce_mean(bce(tf.ones_like(real), real))
                + tf.reduce_mean(bce(tf.zeros_like(fake), fake)),
                tf.reduce_mean(bce(tf.ones_like(fake), fake)))

    def xi_at(values, z, *tapes):
        with contextlib.ExitStack() as stack:
            tape = stack.enter_context(tf.GradientTape(persistent=True))
            for t in (tape,) + tapes:
                t.watch(values)
            d_loss, g_loss = losses_at(values, z)
        xi = tape.gradient(d_loss, values[:n_d]) + tape.gradient(g_loss, values[n_d:])
        return d_loss, xi

    def sga(xi, hv, htv):
        at = [h - v for h, v in zip(htv, hv)]  # 2 A^T xi
        dot = lambda a, b: tf.add_n([tf.reduce_sum(p * q) for p, q in zip(a, b)])  # noqa: E731
        lam = tf.sign(dot(xi, htv) * dot(at, htv) / (2.0 * size) + 0.1)
        return [g + 0.5 * lam * a for g, a in zip(xi, at)]

    def step():
        z = keras.random.normal((x.shape[0], Z_DIM), seed=seed)
        values = [tf.convert_to_tensor(v.value) for v in keras_vars]
        if kind == "plain":
            d_loss, direction = xi_at(values, z)
        elif kind == "forward":
            with tf.GradientTape(persistent=True) as outer:
                outer.watch(values)
                d_loss, xi = xi_at(values, z)
            v = [tf.stop_gradient(g) for g in xi]
            htv = outer.gradient(xi, values, output_gradients=v)
            with tf.autodiff.ForwardAccumulator(values, v) as acc:
                _, xi2 = xi_at(values, z)
            hv = [acc.jvp(g, unconnected_gradients="zero") for g in xi2]
            direction = sga(v, hv, htv)
        else:
            us = [tf.zeros_like(u) for u in values]
            with tf.GradientTape() as dummy_tape:
                dummy_tape.watch(us)
                with tf.GradientTape(persistent=True) as outer:
                    outer.watch(values)
                    d_loss, xi = xi_at(values, z)
                g_of_u = outer.gradient(xi, values, output_gradients=us)
            v = [tf.stop_gradient(g) for g in xi]
            htv = outer.gradient(xi, values, output_gradients=v)
            hv = dummy_tape.gradient(g_of_u, us, output_gradients=v)
            direction = sga(v, hv, htv)
        with tf.control_dependencies(direction):
            optimizer.apply(direction, keras_vars)
        return d_loss

    step = tf.function(step, jit_compile=jit)

    def run(steps: int) -> None:
        for _ in range(steps):
            out = step()
        out.numpy()

    graphs = executed_graphs(lambda: run(1))
    run.products = None if jit else executed_matmuls(graphs)  # XLA: inside its clusters
    run.ops = None if jit else executed_ops(graphs)
    run.seed = seed
    return run


class _Colocated:
    """``tf.compat.v1`` whose ``tf.gradients`` always gets one ``colocate_gradients_with_ops``."""

    def __init__(self, module, value: bool):
        self._module, self._value = module, value

    def __getattr__(self, name):
        return getattr(self._module, name)

    def gradients(self, *args, **kwargs):
        kwargs["colocate_gradients_with_ops"] = self._value
        return self._module.gradients(*args, **kwargs)


def tf1_runner(weights: dict, mode: str, depth: int, width: int, x: np.ndarray,
               colocate_alike: bool = False):
    """The seed's TF1 step; ``colocate_alike`` builds it with every ``tf.gradients`` call
    (the seed's own and kfac's ``fwd_gradients``) passing ``colocate_gradients_with_ops=True``,
    as kfac's do (all ``False`` executes more products than all ``True``)."""
    original = tf1_seed.tf1
    if colocate_alike:
        tf1_seed.tf1 = _Colocated(original, True)
    try:
        g = tf1_seed.build_seed_gan_graph(weights, mode, LR, depth=depth, width=width,
                                          batch_size=x.shape[0])
    finally:
        tf1_seed.tf1 = original
    z = np.random.default_rng(2).standard_normal((x.shape[0], Z_DIM)).astype("float32")
    feed = g.feed_dict(x, z)

    def run(steps: int) -> None:
        for _ in range(steps):
            g.session.run(g.train_op, feed)

    metadata = tf.compat.v1.RunMetadata()
    g.session.run(g.train_op, feed, run_metadata=metadata,
                  options=tf.compat.v1.RunOptions(output_partition_graphs=True))
    run.products = matmuls(n for p in metadata.partition_graphs for n in p.node)
    run.ops = executed_ops(metadata.partition_graphs)
    run.close = g.session.close
    run.graph, run.feed = g, feed
    return run


def default_hvp_mode() -> str:
    """What the default ``tfgames.SGA`` computes H xi with on this machine."""
    opt = tfgames.SGA(keras.optimizers.RMSprop(LR))
    resolve = getattr(opt, "resolved_hvp_mode", None)
    return resolve() if resolve else opt.hvp_mode


def runners(kind: str, weights: dict, depth: int, width: int, x: np.ndarray, jit: bool):
    """One runner by row name."""
    if kind == "tfgames-plain-tf1":
        return keras_runner(weights, tfgames.compat.v1.RMSPropOptimizer(LR), x, jit)
    if kind == "tfgames-sga-tf1":
        return keras_runner(weights, tfgames.compat.v1.SymplecticOptimizer(LR), x, jit)
    if kind == "tfgames-plain":
        return keras_runner(weights, keras.optimizers.RMSprop(LR), x, jit)
    if kind == "tfgames-plain-unchecked":
        return keras_runner(weights, keras.optimizers.RMSprop(LR), x, jit, check_finite=False)
    if kind == "tfgames-sga":
        return keras_runner(weights, tfgames.SGA(keras.optimizers.RMSprop(LR)), x, jit)
    if kind == "tfgames-sga-unchecked":
        return keras_runner(weights, tfgames.SGA(keras.optimizers.RMSprop(LR)), x, jit,
                            check_finite=False)
    if kind.startswith("tfgames-sga-"):
        mode = kind[len("tfgames-sga-"):]
        return keras_runner(weights, tfgames.SGA(keras.optimizers.RMSprop(LR), hvp_mode=mode),
                            x, jit)
    if kind == "keras-plain":
        return keras_plain_runner(weights, x, jit)
    if kind.startswith("hand-"):
        return hand_runner(weights, kind.split("-")[-1], x, jit)
    if kind == "tf1-rms":
        return tf1_runner(weights, "RMS", depth, width, x)
    if kind == "tf1-sga-seed":
        return tf1_runner(weights, "SGA", depth, width, x)
    if kind == "tf1-sga-best":
        return tf1_runner(weights, "SGA", depth, width, x, colocate_alike=True)
    raise ValueError(kind)


def row_names(jit: bool = False) -> list[str]:
    """The rows of one table; the explicit mode equal to the default's resolution is left out.
    The TF1 rows run without XLA in every table (they are the reference)."""
    default = default_hvp_mode()
    rows = ["tfgames-sga"] + [f"tfgames-sga-{m}" for m in ("forward", "double_backward")
                              if m != default]
    rows += ["tfgames-sga-unchecked", "tfgames-sga-tf1", "hand-sga-forward",
             "hand-sga-double_backward", "tf1-sga-seed", "tf1-sga-best"]
    return rows + PLAIN_ROWS


#: The plain rows (``--plain-only`` runs just these).
PLAIN_ROWS = ["tfgames-plain", "tfgames-plain-unchecked", "tfgames-plain-tf1", "keras-plain",
              "hand-plain", "tf1-rms"]
#: The rows the issue's targets compare (``--targets-only`` runs just these): the default SGA,
#: the best TF1 graph, the fastest hand-written SGA step (double backward in every run so far),
#: the plain step and the hand-written plain step.
TARGET_ROWS = ["tfgames-sga", "hand-sga-double_backward", "tf1-sga-best", "tfgames-plain",
               "hand-plain"]


class Timing(NamedTuple):
    """One row of one architecture: seconds per step and what the step executes."""

    median: float
    products: int | None  # None for XLA rows (inside compiled clusters)
    ops: int | None
    fastest: float
    times: list[float]  # per repetition; entry r of every row is from the same repetition


def time_interleaved(configs: dict, reps: int, steps: int) -> dict[str, list[float]]:
    """Seconds per step of each runner in ``configs``, one entry per repetition: after one
    warm-up call each, ``reps`` repetitions of ``steps`` steps of every runner, the runners in
    a new seeded random order each repetition, the garbage collector paused inside a timed
    repetition."""
    for run in configs.values():
        run(1)  # warm-up beyond the first (counted) call
    times: dict[str, list[float]] = {k: [] for k in configs}
    order = random.Random(0)
    for _ in range(reps):
        names = list(configs)
        order.shuffle(names)  # no row always runs after the same one
        for name in names:
            gc.collect()
            gc.disable()  # as timeit does: no collection pause inside a timed repetition
            try:
                start = time.perf_counter()
                configs[name](steps)
                times[name].append((time.perf_counter() - start) / steps)
            finally:
                gc.enable()
    return times


def measure(depth: int, width: int, batch: int, reps: int, steps: int, jit: bool = False,
            rows: list[str] | None = None) -> dict[str, Timing]:
    """``{row: Timing}``, the repetitions interleaved."""
    weights = init_weights(depth, width)
    x = real_batch(batch)
    configs = {name: runners(name, weights, depth, width, x, jit)
               for name in rows or row_names(jit)}
    times = time_interleaved(configs, reps, steps)
    out = {k: Timing(statistics.median(v), configs[k].products, configs[k].ops, min(v), v)
           for k, v in times.items()}
    for run in configs.values():
        getattr(run, "close", lambda: None)()
    return out


#: What each target ratio must not exceed (issue 21).
LIMITS = {"sga/tf1-best": 1.0, "sga/plain": 3.6, "sga/hand-sga": 1.05, "plain/hand-plain": 1.05}


def paired_ratio(a: list[float], b: list[float], level: float = 0.9,
                 resamples: int = 4000) -> tuple[float, float, float]:
    """The median of the per-repetition ratios a[r] / b[r] and a bootstrap interval of it.

    Rows a and b ran in the same repetition r, minutes apart at most, so a ratio within one
    repetition cancels much of the machine's drift that a ratio of two medians keeps. The
    interval: the ``level`` percentile interval of the median over ``resamples`` resamples of
    the repetitions (with replacement, seeded).
    """
    ratios = np.asarray(a) / np.asarray(b)
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(ratios, (resamples, len(ratios))), axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(np.median(ratios)), float(low), float(high)


#: Fewer repetitions than this give no verdict (a bootstrap of one or two ratios says nothing).
MIN_REPS_FOR_VERDICT = 5


def verdict(low: float, high: float, limit: float, reps: int) -> str:
    """``met`` if the whole interval is within ``limit``, ``not met`` if none of it is, else
    ``within noise``; ``too few repetitions`` below :data:`MIN_REPS_FOR_VERDICT`."""
    if reps < MIN_REPS_FOR_VERDICT:
        return "too few repetitions"
    return "met" if high <= limit else "not met" if low > limit else "within noise"


#: The hand-written SGA steps; the ``/hand-sga`` column and target use the fastest that ran.
HAND_SGA_ROWS = ("hand-sga-forward", "hand-sga-double_backward")


def print_table(title: str, result: dict[str, Timing]) -> dict:
    """Print one architecture's rows: medians, executed products and ops, ratios of the
    medians, and the fastest repetition; returns the target ratios of the medians (those whose
    rows ran)."""
    cols = [("tf1-sga-best", "/tf1-best"), ("tf1-sga-seed", "/tf1-seed"),
            (None, "/hand-sga"), ("tfgames-plain", "/plain"), ("keras-plain", "/keras-plain"),
            ("hand-plain", "/hand-plain"), ("tf1-rms", "/tf1-rms")]
    has_sga = "tfgames-sga" in result
    cols = [(k, h) for k, h in cols if (k is None and has_sga) or k in result]
    print(f"\n{title}")
    print(f"{'row':28s} {'ms/step':>9s} {'products':>9s} {'ops':>6s}"
          + "".join(f" {h:>12s}" for _, h in cols) + f" {'min ms':>9s}")
    out: dict = {}
    for which in ("median", "fastest"):
        t = {k: getattr(r, which) for k, r in result.items()}
        if has_sga:
            t[None] = min(t[k] for k in HAND_SGA_ROWS if k in t)
        if which == "median":
            for name, r in result.items():
                ratios = "".join(f" {r.median / t[k]:12.3f}" for k, _ in cols)
                count = "-" if r.products is None else str(r.products)
                ops = "-" if r.ops is None else str(r.ops)
                print(f"{name:28s} {1e3 * r.median:9.2f} {count:>9s} {ops:>6s}{ratios} "
                      f"{1e3 * r.fastest:9.2f}")
        targets = {}
        if has_sga:
            sga = t["tfgames-sga"]
            targets = {"sga/tf1-best": sga / t["tf1-sga-best"],
                       "sga/plain": sga / t["tfgames-plain"], "sga/hand-sga": sga / t[None]}
        targets["plain/hand-plain"] = t["tfgames-plain"] / t["hand-plain"]
        text = ", ".join(f"{k} {v:.3f}" for k, v in targets.items())
        bounds = ", ".join(f"<= {LIMITS[k]}" for k in targets)
        print(f"targets ({'medians' if which == 'median' else 'minima'}; default tfgames.SGA, "
              f"hvp_mode resolves to {default_hvp_mode()!r}): {text} ({bounds})")
        if which == "median":
            out = targets
    # The same targets as medians of per-repetition ratios, with 90% intervals.
    reps = {k: r.times for k, r in result.items()}
    pairs = {"plain/hand-plain": ("tfgames-plain", "hand-plain")}
    if has_sga:
        hand = min((k for k in HAND_SGA_ROWS if k in result), key=lambda k: result[k].median)
        pairs = {"sga/tf1-best": ("tfgames-sga", "tf1-sga-best"),
                 "sga/plain": ("tfgames-sga", "tfgames-plain"),
                 "sga/hand-sga": ("tfgames-sga", hand), **pairs}
    paired = {k: paired_ratio(reps[a], reps[b]) for k, (a, b) in pairs.items()}
    n = len(reps["tfgames-plain"])
    print(f"targets (paired: median of the {n} per-repetition ratios [90% bootstrap interval], "
          "verdict): " + ", ".join(
              f"{k} {m:.3f} [{lo:.3f}, {hi:.3f}] <= {LIMITS[k]}: {verdict(lo, hi, LIMITS[k], n)}"
              for k, (m, lo, hi) in paired.items()))
    return out


# -- memory: one configuration per fresh process -----------------------------------------------
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_worker(kind: str, depth: int, width: int, batch: int, steps: int) -> dict:
    """In this (fresh) process: resident memory before steps, and the high-water mark of
    ``steps`` warm steps of one configuration (kB)."""
    run = runners(kind, init_weights(depth, width), depth, width, real_batch(batch), False)
    run(2)
    before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    run(steps)
    peak = _status_kb("VmHWM")
    return {"rss_before_kb": before, "peak_kb": peak, "step_kb": peak - before}


def measure_memory(kind: str, depth: int, width: int, batch: int, steps: int = 2) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-worker",
           f"{kind},{depth},{width},{batch},{steps}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="128,384,1024",
                        help="comma-separated widths, at batch 256 ('' for none)")
    parser.add_argument("--batches", default="64,1024",
                        help="comma-separated batch sizes at width 384 ('' for none)")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--jit", action="store_true", help="XLA (jit_compile=True) rows only")
    parser.add_argument("--memory", action="store_true",
                        help="also the peak resident memory of a step, per configuration")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the memory table (no step times)")
    parser.add_argument("--small", action="store_true", help="tiny nets (a smoke run)")
    parser.add_argument("--plain-only", action="store_true",
                        help="only the plain (first-order) rows: " + ", ".join(PLAIN_ROWS))
    parser.add_argument("--targets-only", action="store_true",
                        help="only the rows the targets compare: " + ", ".join(TARGET_ROWS))
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # long runs: a table as soon as it is done
    if args.memory_worker:
        kind, *nums = args.memory_worker.split(",")
        print(json.dumps(memory_worker(kind, *map(int, nums))))
        return
    parse = lambda s: [int(v) for v in s.split(",") if v]  # noqa: E731
    if args.small:
        depth, archs = 2, [(32, 32)]
    else:
        depth = args.depth
        archs = [(w, 256) for w in parse(args.widths)]
        archs += [(384, b) for b in parse(args.batches) if (384, b) not in archs]
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs; "
          f"default tfgames.SGA hvp_mode resolves to {default_hvp_mode()!r}; "
          f"XLA {'on' if args.jit else 'off'}; {args.reps} interleaved repetitions of "
          f"{args.steps} steps, medians")
    summary = {}
    for width, batch in [] if args.memory_only else archs:
        result = measure(depth, width, batch, args.reps, args.steps, args.jit,
                         rows=(PLAIN_ROWS if args.plain_only
                               else TARGET_ROWS if args.targets_only else None))
        summary[(width, batch)] = print_table(
            f"depth {depth}, width {width}, batch {batch}", result)
    if args.memory or args.memory_only:
        print("\nPeak resident memory of a warm step (MiB; fresh process per configuration): "
              "step = high-water mark - resident before the steps")
        print(f"{'row':28s} {'width':>6s} {'batch':>6s} {'step':>8s} {'peak':>8s} {'before':>8s}")
        for width, batch in archs:
            for kind in ("tfgames-plain", "tfgames-sga-forward", "tfgames-sga-double_backward"):
                m = measure_memory(kind, depth, width, batch)
                print(f"{kind:28s} {width:6d} {batch:6d} {m['step_kb'] / 1024:8.1f} "
                      f"{m['peak_kb'] / 1024:8.1f} {m['rss_before_kb'] / 1024:8.1f}", flush=True)


if __name__ == "__main__":
    main()
