"""Step time of SGA against a plain step and against the seed's TF1 SymplecticOptimizer.

Measured side by side in one run, on the seed's 4x4-grid architecture (G and D: 6 hidden ReLU
layers of 384 units, z 64, batch 256), from identical initial weights:

- ``plain``: simultaneous RMSProp (a stock Keras optimizer in ``GameModel``);
- ``sga-forward`` / ``sga-double_backward``: ``tfgames.SGA`` with H xi in forward mode or by
  the double-backward trick, each with and without XLA;
- ``tf1-sga`` / ``tf1-rms``: the seed's code in ``tf.compat.v1`` graph mode in the same
  TensorFlow (``kfac.utils.fwd_gradients`` replaced by its double-backward definition).

Each configuration runs ``--steps`` steps per repetition; repetitions are interleaved across
configurations so that machine noise hits all of them alike, and the medians are reported with
the ratios. Absolute times depend on the machine; the ratios are the result.

With ``--matmuls`` it also prints, for each configuration without XLA, the number of matrix
products in one train step, counted two ways: those the step executes (the graphs TensorFlow
runs after its own Grappler pass and oneDNN rewrite: the partition graphs of the TF1 session's
run, those of the ``tf.function`` the eager context instantiates), and those left when Grappler's
default optimisations (common-subexpression elimination included) are run by hand on the whole
step's graph. This is the work each way of computing the products does, independent of the
machine's noise. It then splits the products' work: xi alone, each product alone, both, and
how many of H xi's ops CSE shares with H^T xi in each mode.

With ``--inner`` it also times, interleaved with the rest, the inner optimizer's update alone
on the GAN's variables: Keras 3's ``RMSprop`` (what ``tfgames.SGA`` wraps in both the Keras rows)
against TF1's fused ``ApplyRMSProp`` kernel (what the seed's code runs), and prints their
difference as a share of a TF1 SGA step: the part of the comparison that is the inner
optimizer's implementation, not the game machinery.

With ``--profile`` it also runs the non-XLA SGA steps and the TF1 code under TensorFlow's
profiler and prints, per step, the time spent in matrix products and in everything else (op
times summed over both cores; the profiler slows ops down, so compare the columns, not the
times with the table's).

Usage: ``python benchmarks/step_time.py [--reps 5] [--steps 10] [--small] [--matmuls] [--inner]
[--profile]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.eager import context  # noqa: E402

import tfgames  # noqa: E402
from tfgames.testing import tf1_seed  # noqa: E402


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


class SeedGAN(tfgames.GameModel):
    """The seed's GAN: sigmoid cross-entropy losses; data = (x_real, z)."""

    def __init__(self, weights: dict, **kwargs):
        super().__init__(**kwargs)
        self.discriminator = mlp(weights["discriminator"], "discriminator")
        self.generator = mlp(weights["generator"], "generator")

    def players(self):
        return {"discriminator": self.discriminator, "generator": self.generator}

    def compute_losses(self, data, training=False):
        x_real, z = data
        real = self.discriminator(x_real)
        fake = self.discriminator(self.generator(z))
        bce = tf.nn.sigmoid_cross_entropy_with_logits
        d = tf.reduce_mean(bce(tf.ones_like(real), real)) + tf.reduce_mean(
            bce(tf.zeros_like(fake), fake))
        return {"discriminator": d, "generator": tf.reduce_mean(bce(tf.ones_like(fake), fake))}


def init_weights(depth: int, width: int, z_dim: int, x_dim: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)

    def net(sizes):
        out = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            out += [(rng.standard_normal((a, b)) * np.sqrt(1.0 / a)).astype("float32"),
                    np.zeros(b, "float32")]
        return out

    return {"discriminator": net([x_dim] + [width] * depth + [1]),
            "generator": net([z_dim] + [width] * depth + [x_dim])}


def optimized_nodes(graph: tf.Graph, fetches: list[str]) -> list:
    """The NodeDefs of ``graph`` after Grappler's default optimisations (those of function
    bodies still in its library included), ``fetches`` and what they depend on kept."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer

    meta = tf.compat.v1.train.export_meta_graph(graph_def=graph.as_graph_def(), graph=graph,
                                                collection_list=[])
    meta.collection_def["train_op"].node_list.value.extend(fetches)
    out = tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta)
    return list(out.node) + [n for f in out.library.function for n in f.node_def]


def matmuls(nodes: list) -> int:
    """Matrix products among ``nodes``: ``MatMul`` and, in the graphs TensorFlow executes, its
    oneDNN rewrites ``_MklMatMul`` and the bias/activation-fused ``_MklNativeFusedMatMul``."""
    return sum("MatMul" in n.op for n in nodes)


def function_partition_graphs(run_once) -> list:
    """The partition graphs of the functions that ``run_once()`` instantiates (what the eager
    context executes for a ``tf.function`` it calls for the first time)."""
    ctx = context.context()
    ctx.enable_graph_collection()
    try:
        run_once()
        metadata = ctx.export_run_metadata()
    finally:
        ctx.disable_graph_collection()
    return [g for f in metadata.function_graphs for g in f.partition_graphs]


def traced_nodes(fn, batch) -> list:
    """The optimised nodes (:func:`optimized_nodes`) of ``fn(batch)`` traced by ``tf.function``
    with the batch as inputs, its outputs and stateful operations kept."""
    graph = tf.function(fn).get_concrete_function(tuple(tf.constant(b) for b in batch)).graph
    return optimized_nodes(graph, [t.name for t in graph.outputs]
                           + [op.name for op in graph.control_outputs])


def zero_operand_matmuls(nodes: list) -> int:
    """MatMul ops one of whose operands is an all-zero constant (through Identity ops)."""
    by_name = {n.name: n for n in nodes}

    def is_zero(name: str) -> bool:
        node = by_name.get(name.lstrip("^").split(":")[0])
        while node is not None and node.op == "Identity":
            node = by_name.get(node.input[0].lstrip("^").split(":")[0])
        if node is None or node.op != "Const":
            return False
        return not tf.make_ndarray(node.attr["value"].tensor).any()

    return sum(n.op == "MatMul" and any(is_zero(i) for i in n.input[:2]) for n in nodes)


def product_matmuls(weights: dict, batch) -> dict[str, int]:
    """MatMul ops of :func:`tfgames.products.game_products` alone on the seed GAN's game, for
    xi alone and with each product: which part of SGA's extra work each product costs, and how
    much of H xi's work Grappler's CSE shares with H^T xi (v = xi in both)."""
    model = SeedGAN(weights)
    players = {name: m.trainable_variables for name, m in model.players().items()}

    def nodes(**options) -> list:
        def products(data):
            p = tfgames.products.game_products(
                lambda: model.compute_losses(data), players, **options)
            return (p.hv or []) + (p.htv or []) + p.xi

        return traced_nodes(products, batch)

    all_forward, all_double_backward = nodes(), nodes(mode="double_backward")
    return {
        "xi": matmuls(nodes(hv=False, htv=False)),
        "xi, H^T xi": matmuls(nodes(hv=False)),
        "xi, H xi forward": matmuls(nodes(htv=False)),
        "xi, H xi double_backward": matmuls(nodes(htv=False, mode="double_backward")),
        "all, forward": matmuls(all_forward),
        "all, double_backward": matmuls(all_double_backward),
        "zero operand, all, forward": zero_operand_matmuls(all_forward),
        "zero operand, all, db": zero_operand_matmuls(all_double_backward),
    }


def keras_runner(weights, optimizer, jit: bool, batch: np.ndarray):
    model = SeedGAN(weights)
    model.compile(optimizer=optimizer, jit_compile=jit)
    data = tf.data.Dataset.from_tensors(batch).repeat()
    iterator = iter(data)
    model.make_train_function()

    def run(steps: int) -> None:
        for _ in range(steps):
            logs = model.train_function(iterator)
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, logs)

    def executed() -> int:  # a fresh tf.function of the same step, instantiated and run once
        step = tf.function(model.train_step, jit_compile=jit)
        graphs = function_partition_graphs(lambda: step(tuple(tf.constant(b) for b in batch)))
        return matmuls([n for g in graphs for n in g.node])

    run.matmuls = lambda: matmuls(traced_nodes(model.train_step, batch))  # after a step
    run.executed_matmuls = executed
    return run


def inner_update_runners(weights: dict) -> dict:
    """The inner optimizer's update alone on the GAN's variables, from identical gradients:
    Keras 3's ``RMSprop.apply`` (what ``tfgames.SGA`` wraps) and TF1's fused
    ``ResourceApplyRMSProp`` kernel (what the seed's ``tf.train.RMSPropOptimizer`` runs)."""
    rng = np.random.default_rng(2)
    arrays = weights["discriminator"] + weights["generator"]
    grads = [tf.constant(rng.standard_normal(a.shape).astype("float32")) for a in arrays]
    keras_vars = [keras.Variable(a) for a in arrays]
    optimizer = keras.optimizers.RMSprop(1e-4)
    optimizer.build(keras_vars)
    tf_vars = [tf.Variable(a) for a in arrays]
    ms = [tf.Variable(tf.ones_like(a)) for a in arrays]  # TF1's RMSProp starts ms at one
    mom = [tf.Variable(tf.zeros_like(a)) for a in arrays]

    @tf.function
    def keras_update():
        optimizer.apply(grads, keras_vars)

    @tf.function
    def fused_update():
        for v, m, p, g in zip(tf_vars, ms, mom, grads):
            tf.raw_ops.ResourceApplyRMSProp(var=v.handle, ms=m.handle, mom=p.handle, lr=1e-4,
                                            rho=0.9, momentum=0.0, epsilon=1e-10, grad=g)

    def runner(update):
        def run(steps: int) -> None:
            for _ in range(steps):
                update()
            keras_vars[0].numpy(), tf_vars[0].numpy()  # wait for the updates
        return run

    return {"update-keras-rmsprop": runner(keras_update),
            "update-tf1-fused-rmsprop": runner(fused_update)}


def profiled_op_times(run, steps: int) -> dict[str, float]:
    """Per step, the op time (microseconds, summed over threads) that ``run(steps)`` spends in
    matrix products and in all other TensorFlow ops, from the profiler's trace."""
    import glob
    import tempfile

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            run(steps)
        finally:
            tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    times = {"matrix products": 0.0, "other ops": 0.0}
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue  # the executor's threads run the ops; not Python, not tf.data's
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name  # "node name:OpType"
                if "::" in name or ":" not in name:
                    continue  # runtime regions around the ops (ExecutorState::Process, ...)
                key = "matrix products" if "MatMul" in name.rsplit(":", 1)[1] else "other ops"
                times[key] += event.duration_ps / 1e6 / steps
    return times


def tf1_runner(weights, mode: str, lr: float, depth: int, width: int, batch):
    g = tf1_seed.build_seed_gan_graph(weights, mode, lr, depth=depth, width=width,
                                      batch_size=batch[0].shape[0])
    feed = g.feed_dict(*batch)

    def run(steps: int) -> None:
        for _ in range(steps):
            g.session.run(g.train_op, feed)

    def executed() -> int:
        metadata = tf.compat.v1.RunMetadata()
        g.session.run(g.train_op, feed, run_metadata=metadata,
                      options=tf.compat.v1.RunOptions(output_partition_graphs=True))
        return matmuls([n for g in metadata.partition_graphs for n in g.node])

    run.matmuls = lambda: matmuls(optimized_nodes(g.graph, [g.train_op.name]))
    run.executed_matmuls = executed
    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--small", action="store_true", help="tiny nets (a smoke run)")
    parser.add_argument("--matmuls", action="store_true",
                        help="also print the matrix products of each train step")
    parser.add_argument("--inner", action="store_true",
                        help="also time the inner RMSProp update alone: Keras vs TF1's kernel")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the SGA steps: matrix products vs other ops")
    args = parser.parse_args(argv)
    depth, width, z_dim, batch_size = (2, 32, 8, 64) if args.small else (6, 384, 64, 256)
    lr = 1e-4
    weights = init_weights(depth, width, z_dim, 2)
    rng = np.random.default_rng(1)
    x = tfgames.datasets.GRID_CENTRES[np.arange(batch_size) % 16] + 0.02 * rng.standard_normal(
        (batch_size, 2))
    batch = (x.astype("float32"), rng.standard_normal((batch_size, z_dim)).astype("float32"))

    configs = {}
    for jit in (False, True):
        tag = "+xla" if jit else ""
        configs["plain-rmsprop" + tag] = keras_runner(
            weights, keras.optimizers.RMSprop(lr), jit, batch)
        for mode in ("forward", "double_backward"):
            configs[f"sga-{mode}{tag}"] = keras_runner(
                weights, tfgames.SGA(keras.optimizers.RMSprop(lr), hvp_mode=mode), jit, batch)
    configs["tf1-rms"] = tf1_runner(weights, "RMS", lr, depth, width, batch)
    configs["tf1-sga"] = tf1_runner(weights, "SGA", lr, depth, width, batch)
    if args.inner:
        configs.update(inner_update_runners(weights))

    for run in configs.values():  # warm-up: tracing and compilation are not step time
        run(2)
    times: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(args.reps):
        for name, run in configs.items():
            start = time.perf_counter()
            run(args.steps)
            times[name].append((time.perf_counter() - start) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}

    print(f"architecture: depth {depth}, width {width}, z {z_dim}, batch {batch_size}; "
          f"{args.reps} interleaved repetitions of {args.steps} steps; medians")
    print(f"{'configuration':28s} {'ms/step':>9s} {'/plain':>8s} {'/tf1-sga':>9s}")
    for name, t in med.items():
        plain = med["plain-rmsprop+xla" if name.endswith("+xla") else "plain-rmsprop"]
        print(f"{name:28s} {1e3 * t:9.2f} {t / plain:8.2f} {t / med['tf1-sga']:9.2f}")
    if args.matmuls:
        print("\nMatrix products in one train step (no XLA): executed, and left by Grappler "
              "run by hand on the step's graph")
        for name, run in configs.items():
            if hasattr(run, "matmuls") and not name.endswith("+xla"):
                print(f"{name:28s} {run.executed_matmuls():9d} {run.matmuls():9d}")
        parts = product_matmuls(weights, batch)
        print("\nMatMul ops of the products alone (tfgames.products.game_products, v = xi):")
        for name, n in parts.items():
            print(f"{name:28s} {n:9d}")
        for mode in ("forward", "double_backward"):
            own = parts[f"xi, H xi {mode}"] - parts["xi"]
            shared = parts["xi, H^T xi"] + own - parts[f"all, {mode}"]
            print(f"H xi {mode}: {own} ops alone, {shared} of them shared with H^T xi")
    if args.inner:
        keras_update, fused = med["update-keras-rmsprop"], med["update-tf1-fused-rmsprop"]
        print(f"\ninner update alone: Keras RMSprop {keras_update / fused:.2f}x TF1's fused kernel; "
              f"the difference is {(keras_update - fused) / med['tf1-sga']:.3f} of a TF1 SGA step")
    if args.profile:
        print("\nProfiled op time per step (us, summed over threads): matrix products, other ops")
        for name in ("sga-forward", "sga-double_backward", "tf1-sga"):
            t = profiled_op_times(configs[name], args.steps)
            print(f"{name:28s} {t['matrix products']:9.0f} {t['other ops']:9.0f}")
    default = med["sga-forward"]
    print(f"\ndefault (sga-forward, no XLA on CPU): {default / med['plain-rmsprop']:.2f}x a plain "
          f"step (target <= 4.5), {default / med['tf1-sga']:.2f}x the TF1 code (target <= 1.0)")


if __name__ == "__main__":
    main()
