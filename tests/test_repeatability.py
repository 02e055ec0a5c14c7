"""Summation order of TensorFlow's ``AddN``: the check that finds sums whose order depends on
thread scheduling, the setting that fixes it, and the lab's steps under that setting.

CI failed once (2026-11-30, exact-resume test, extragradient): the resumed run's last weights
differed from the uninterrupted run's in one bit. The lab's extragradient step had ``AddN``
nodes whose inputs Grappler's arithmetic optimizer had merged across the players' losses; the
tutorial's double-backward SGA step also reordered the gradient tape's own sums (module
docstring of :mod:`tfgames.repeatability`). The lab now trains every optimizer under
:func:`tfgames.repeatability.fixed_sum_order`, which leaves no sum of three or more.
"""

from __future__ import annotations

import dataclasses

import pytest
import tensorflow as tf

from tfgames import repeatability
from tfgames.lab.experiments import mog, registry
from tfgames.lab.experiments.runner import train_with_snapshots

OPTION = "arithmetic_optimization"


def _arithmetic_optimization() -> bool | None:
    return tf.config.optimizer.get_experimental_options().get(OPTION)


def _fresh(build):
    """A run() that traces and executes a new tf.function built by ``build``."""
    x = tf.constant([1.0, 2.0, 3.0])
    return lambda: tf.function(build)(x)


def _chain(x):  # exp + sin + cos: two AddV2, which Grappler's arithmetic optimizer merges
    return tf.exp(x) + tf.sin(x) + tf.cos(x)


def _gradient(x):  # x contributes three times to the gradient: one sum of three on the tape
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(tf.exp(x) * tf.sin(x) * tf.cos(x))
    return tape.gradient(y, x)


def test_a_chain_grappler_merges_is_listed_and_fixed_sum_order_keeps_it_a_chain():
    assert repeatability.order_dependent_sums(_fresh(_chain)) == [
        "ArithmeticOptimizer/AddOpsRewrite_add_1"]  # the two additions, merged into one AddN
    before = _arithmetic_optimization()
    with repeatability.fixed_sum_order():
        assert _arithmetic_optimization() is False
        assert repeatability.order_dependent_sums(_fresh(_chain)) == []
    assert (_arithmetic_optimization() is False) == (before is False)  # None: on by default


def test_the_tapes_sums_are_added_in_order_when_traced_inside_the_block():
    assert len(repeatability.order_dependent_sums(_fresh(_gradient))) == 1
    x = tf.constant([0.3, 1.1, 2.0])
    expected = tf.function(_gradient)(x)
    with repeatability.fixed_sum_order():
        assert repeatability.order_dependent_sums(_fresh(_gradient)) == []
        eager = _gradient(x)  # the tape's sum in eager mode too
        traced = tf.function(_gradient)(x)
    assert float(tf.reduce_max(tf.abs(traced - expected))) < 1e-6
    assert float(tf.reduce_max(tf.abs(eager - expected))) < 1e-6
    # restored: a function traced after the block has the tape's AddN again
    assert len(repeatability.order_dependent_sums(_fresh(_gradient))) == 1


def test_the_tapes_order_is_fixed_when_traced_the_optimizers_when_called():
    gradient, chain = tf.function(_gradient), tf.function(_chain)
    x = tf.constant([1.0])
    gradient(x), chain(x)  # traced before the block
    with repeatability.fixed_sum_order():
        assert len(repeatability.order_dependent_sums(lambda: gradient(x))) == 1
        assert repeatability.order_dependent_sums(lambda: chain(x)) == []
    assert repeatability.order_dependent_sums(lambda: chain(x)) == [
        "ArithmeticOptimizer/AddOpsRewrite_add_1"]


def test_sum_in_order_adds_left_to_right():
    big = tf.constant(1e8, tf.float32)
    terms = [big, tf.constant(1.0), -big]
    assert float(repeatability.sum_in_order(terms)) == 0.0  # (1e8 + 1) + -1e8 in float32
    assert float(repeatability.sum_in_order([terms[0], terms[2], terms[1]])) == 1.0
    assert float(repeatability.sum_in_order([tf.constant(2.5)])) == 2.5
    with pytest.raises(ValueError, match="at least one tensor.*Received an empty"):
        repeatability.sum_in_order([])


def test_every_sum_of_three_or_more_is_listed_and_a_sum_of_two_is_not():
    """An AddN whose inputs have no other consumer changed its order from run to run too (the
    tutorial's double-backward SGA step, module docstring), so no sum of three is ruled out."""
    def own_sum(x):  # written with tf.add_n: stays one AddN under the setting
        return tf.add_n([tf.exp(x), tf.sin(x), tf.cos(x)])

    def in_order(x):
        return repeatability.sum_in_order([tf.exp(x), tf.sin(x), tf.cos(x)])

    def two_terms(x):  # a sum of two: either order gives the same bits
        return tf.add_n([tf.exp(x), tf.sin(x)])

    with repeatability.fixed_sum_order():
        assert repeatability.order_dependent_sums(_fresh(own_sum)) == ["AddN"]
        assert repeatability.order_dependent_sums(_fresh(in_order)) == []
        assert repeatability.order_dependent_sums(_fresh(two_terms)) == []


def test_loop_bodies_are_checked():
    def loop(x):
        def body(i, acc):
            e = tf.exp(x + acc)
            return i + 1, tf.add_n([tf.sin(e), tf.cos(e), e]) + e

        return tf.while_loop(lambda i, _: i < 3, body, [0, tf.zeros_like(x)])

    found = repeatability.order_dependent_sums(_fresh(loop))
    assert len(found) == 1 and found[0].startswith("while/body")


def test_functions_called_before_are_checked_and_a_run_without_tensorflow_is_refused():
    step = tf.function(lambda x: tf.add_n([tf.exp(x), tf.sin(x), tf.cos(x)]))
    x = tf.constant([1.0])
    step(x)
    assert repeatability.order_dependent_sums(lambda: step(x)) == ["AddN"]
    assert repeatability.order_dependent_sums(lambda: step(x)) == ["AddN"]
    with pytest.raises(ValueError, match="executed no TensorFlow operation.*computed nothing"):
        repeatability.order_dependent_sums(lambda: None)


def test_graphs_collected_before_the_check_are_not_reported():
    """As under tf.summary.trace_on. Found when an earlier check had left graph collection on
    (test_the_check_leaves_graph_collection_off): the graphs of later fits were reported with
    the checked function's."""
    from tensorflow.python.eager import context

    def shared(x):
        e = tf.exp(x)
        return tf.add_n([tf.sin(x), e, tf.cos(x)]), e

    ctx = context.context()
    ctx.enable_graph_collection()
    try:
        tf.function(shared)(tf.constant([1.0]))  # collected, not exported
        assert repeatability.order_dependent_sums(_fresh(lambda x: 2.0 * x)) == []
    finally:
        ctx.disable_graph_collection()


def test_the_check_leaves_graph_collection_off():
    """It once turned collection on with enable_run_metadata and off with
    disable_run_metadata, which left graph collection on: every later call's graphs piled up
    in memory and were reported by the next check."""
    from tensorflow.python.eager import context

    repeatability.order_dependent_sums(_fresh(lambda x: 3.0 * x))
    tf.function(lambda x: 2.0 * x)(tf.constant([1.0]))
    metadata = context.context().export_run_metadata()
    assert metadata is None or not metadata.function_graphs


def test_fixed_sum_order_restores_the_setting_it_found():
    tf.config.optimizer.set_experimental_options({OPTION: False})
    try:
        with repeatability.fixed_sum_order():
            with repeatability.fixed_sum_order():
                pass
            assert _arithmetic_optimization() is False
        assert _arithmetic_optimization() is False
    finally:
        tf.config.optimizer.set_experimental_options({OPTION: True})
    with pytest.raises(RuntimeError), repeatability.fixed_sum_order():
        raise RuntimeError("inside")
    assert _arithmetic_optimization() is True
    with repeatability.fixed_sum_order():
        with repeatability.fixed_sum_order():
            pass
        # the inner block's end leaves the outer block's tape order in force
        assert repeatability.order_dependent_sums(_fresh(_gradient)) == []
    assert len(repeatability.order_dependent_sums(_fresh(_gradient))) == 1

    @repeatability.fixed_sum_order()
    def decorated() -> bool | None:
        return _arithmetic_optimization()

    assert decorated() is False and _arithmetic_optimization() is True


def _lab_run(name: str):
    """Two steps of the lab's smoke MoG GAN through ``train_with_snapshots``."""
    config = dataclasses.replace(mog.PRESETS["smoke"], steps=2)
    return lambda: train_with_snapshots(
        registry.make_optimizer(name, config.learning_rate), config, seed=2, verbose=0)


def test_the_lab_extragradient_step_sums_in_a_fixed_order():
    assert repeatability.order_dependent_sums(_lab_run("extragradient")) == []


def test_the_lab_trains_every_optimizer_under_the_setting():
    """First- and second-order alike: the smoke GAN's double-backward SGA step ended in 2
    distinct states in 12 repeats with TensorFlow's defaults, 1 under the setting
    (benchmarks/sga_repeatability.py, docs/scaling.md)."""
    seen = []

    def record(shot, model):
        seen.append((_arithmetic_optimization(), repeatability._sum_order_fixed()))

    config = dataclasses.replace(mog.PRESETS["smoke"], steps=2)
    for name in ("extragradient", "sga"):
        train_with_snapshots(registry.make_optimizer(name, config.learning_rate), config,
                             seed=2, verbose=0, on_snapshot=record)
    assert seen and all(entry == (False, True) for entry in seen)
    assert not repeatability._sum_order_fixed()


@pytest.mark.slow
@pytest.mark.parametrize("name", registry.available_optimizers())
def test_every_lab_optimizer_sums_in_a_fixed_order(name):
    assert repeatability.order_dependent_sums(_lab_run(name)) == []


# The README's GAN: what docs/scaling.md and docs/migration.md ("Repeatability") say of its
# steps (with TensorFlow's defaults: the lab's in test_benchmarks.py's order_dependent_sums).
README_KINDS = ["sga", "per_player_adam_5_1", "extragradient"]


@pytest.mark.parametrize("kind", README_KINDS)
def test_readme_gan_steps_sum_in_a_fixed_order_under_the_setting(kind):
    """Fit once with TensorFlow's defaults (sums of three listed), then in the block: the model
    traces its train function again, and no sum of three is left; then after the block."""
    from test_keras_integration import FIT, X, compiled

    model = compiled(kind)
    fit = lambda: model.fit(X, epochs=1, **FIT)  # noqa: E731
    assert repeatability.order_dependent_sums(fit)
    with repeatability.fixed_sum_order():
        assert repeatability.order_dependent_sums(fit) == []
    assert repeatability.order_dependent_sums(fit)


def test_a_tensorflow_without_the_tapes_aggregation_is_refused_before_any_change(monkeypatch):
    from tensorflow.python.eager import backprop

    monkeypatch.delattr(backprop, "_default_vspace")
    before = _arithmetic_optimization()
    refused = "cannot set the order.*Nothing was changed.*jit_compile"
    with pytest.raises(RuntimeError, match=refused), repeatability.fixed_sum_order():
        pass
    assert _arithmetic_optimization() == before and not repeatability._sum_order_fixed()
