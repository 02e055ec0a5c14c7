"""Summation order of TensorFlow's ``AddN``: the check that finds sums whose order depends on
thread scheduling, the setting that fixes it, and the lab's steps under that setting.

CI failed once (2026-11-30, exact-resume test, extragradient): the resumed run's last weights
differed from the uninterrupted run's in one bit. The lab's extragradient step had six
``AddN`` nodes whose inputs Grappler's arithmetic optimizer had merged across the players'
losses (found by :func:`tfgames.repeatability.order_dependent_sums`); the lab now trains with
:func:`tfgames.repeatability.fixed_sum_order`.
"""

from __future__ import annotations

import dataclasses

import pytest
import tensorflow as tf

from tfgames import repeatability
from tfgames.lab.experiments import mog, registry, runner
from tfgames.lab.experiments.runner import train_with_snapshots

OPTION = "arithmetic_optimization"


def _arithmetic_optimization() -> bool | None:
    return tf.config.optimizer.get_experimental_options().get(OPTION)


def _fresh(build):
    """A run() that traces and executes a new tf.function built by ``build``."""
    x = tf.constant([1.0, 2.0, 3.0])
    return lambda: tf.function(build)(x)


def test_a_term_grappler_merges_is_listed_and_fixed_sum_order_removes_it():
    def step(x):  # exp(x) twice: merged into one tensor consumed by the sum and the output
        return tf.add_n([tf.exp(x), tf.sin(x), tf.cos(x)]), tf.exp(x)

    assert repeatability.order_dependent_sums(_fresh(step)) == ["AddN"]
    before = _arithmetic_optimization()
    with repeatability.fixed_sum_order():
        assert _arithmetic_optimization() is False
        assert repeatability.order_dependent_sums(_fresh(step)) == []
    assert (_arithmetic_optimization() is False) == (before is False)  # None: on by default


def test_inputs_shared_by_the_user_or_through_an_alias_are_listed():
    def shared(x):  # e = exp(x) is a sum's input and an output: listed even with the fix
        e = tf.exp(x)
        return tf.add_n([tf.sin(x), e, tf.cos(x)]), e

    def aliased(x):  # the sum's input is a reshape of e, whose buffer it shares
        e = tf.exp(x)
        return tf.add_n([tf.sin(x), tf.reshape(e, [3]), tf.cos(x)]), e

    def exclusive(x):  # 2 * e has one consumer, the sum
        e = tf.exp(x)
        return tf.add_n([tf.sin(x), 2.0 * e, tf.cos(x)]), e

    def two_terms(x):  # a sum of two: either order gives the same bits
        e = tf.exp(x)
        return tf.add_n([e, tf.sin(x)]), e

    with repeatability.fixed_sum_order():
        assert repeatability.order_dependent_sums(_fresh(shared)) == ["AddN"]
        assert repeatability.order_dependent_sums(_fresh(aliased)) == ["AddN"]
        assert repeatability.order_dependent_sums(_fresh(exclusive)) == []
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
    step = tf.function(lambda x: (tf.add_n([tf.exp(x), tf.sin(x), tf.cos(x)]), tf.exp(x)))
    x = tf.constant([1.0])
    step(x)
    assert repeatability.order_dependent_sums(lambda: step(x)) == ["AddN"]
    assert repeatability.order_dependent_sums(lambda: step(x)) == ["AddN"]
    assert repeatability.order_dependent_sums(lambda: tf.add_n([x, 2.0 * x, 3.0 * x])) == []
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


def test_the_setting_in_force_at_each_call_decides():
    step = tf.function(lambda x: (tf.add_n([tf.exp(x), tf.sin(x), tf.cos(x)]), tf.exp(x)))
    x = tf.constant([1.0])
    with repeatability.fixed_sum_order():
        assert repeatability.order_dependent_sums(lambda: step(x)) == []
    assert repeatability.order_dependent_sums(lambda: step(x)) == ["AddN"]


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

    @repeatability.fixed_sum_order()
    def decorated() -> bool | None:
        return _arithmetic_optimization()

    assert decorated() is False and _arithmetic_optimization() is True


def _lab_run(name: str, *, setting_chosen_by_the_lab: bool = True):
    """Two steps of the lab's smoke MoG GAN: through ``train_with_snapshots`` (which chooses
    the summation-order setting), or through its body alone (the setting in force)."""
    config = dataclasses.replace(mog.PRESETS["smoke"], steps=2)
    if setting_chosen_by_the_lab:
        return lambda: train_with_snapshots(
            registry.make_optimizer(name, config.learning_rate), config, seed=2, verbose=0)
    return lambda: runner._train(registry.make_optimizer(name, config.learning_rate), config,
                                 seed=2, verbose=0)


def test_without_the_setting_the_lab_extragradient_step_has_order_dependent_sums():
    """What made the exact-resume test fail in CI (2026-11-30)."""
    found = repeatability.order_dependent_sums(
        _lab_run("extragradient", setting_chosen_by_the_lab=False))
    assert len(found) >= 2 and all("AddN" in name for name in found)


def test_the_lab_extragradient_step_sums_in_a_fixed_order():
    assert repeatability.order_dependent_sums(_lab_run("extragradient")) == []


def test_the_lab_trains_first_order_optimizers_under_the_setting():
    curvature = {name for name in ("sga", "consensus", "lola", "cgd", "lss", "lead", "hgd",
                                   "extragradient", "adam", "negative-momentum", "rk4")
                 if runner.uses_curvature(registry.make_optimizer(name, 1e-3))}
    assert curvature == {"sga", "consensus", "lola", "cgd", "lss", "lead", "hgd"}
    seen = []

    def record(shot, model):
        seen.append(_arithmetic_optimization())

    config = dataclasses.replace(mog.PRESETS["smoke"], steps=2)
    for name in ("extragradient", "sga"):
        train_with_snapshots(registry.make_optimizer(name, config.learning_rate), config,
                             seed=2, verbose=0, on_snapshot=record)
    assert seen[0] is False and seen[-1] is not False  # extragradient's, then sga's


@pytest.mark.slow
@pytest.mark.parametrize("name", registry.available_optimizers())
def test_every_first_order_lab_optimizer_sums_in_a_fixed_order(name):
    if runner.uses_curvature(registry.make_optimizer(name, 1e-3)):
        pytest.skip("second-order: the lab trains it with the arithmetic optimizer on")
    assert repeatability.order_dependent_sums(_lab_run(name)) == []


# The README's GAN and the fault-tolerance tests' GAN: what docs/scaling.md and
# docs/migration.md ("Repeatability") say of their steps.
README_LISTED = {"sga": True, "per_player_adam_5_1": False, "extragradient": True}


@pytest.mark.parametrize("kind", README_LISTED)
def test_readme_gan_steps_sum_in_a_fixed_order_under_the_setting(kind):
    from test_keras_integration import FIT, X, compiled

    model = compiled(kind)
    found = repeatability.order_dependent_sums(lambda: model.fit(X, epochs=1, **FIT))
    assert bool(found) == README_LISTED[kind]
    with repeatability.fixed_sum_order():
        assert repeatability.order_dependent_sums(lambda: model.fit(X, epochs=1, **FIT)) == []


def test_fault_tolerance_gan_with_sga_sums_in_a_fixed_order_under_the_setting():
    from conftest import TinyGAN, real_batches
    from fault_worker import OPTIMIZERS

    model = TinyGAN(seed=3)
    model.compile(optimizer=OPTIMIZERS["sga"]())
    fit = lambda: model.fit(real_batches(4, 16), epochs=1, verbose=0)  # noqa: E731
    assert repeatability.order_dependent_sums(fit)
    with repeatability.fixed_sum_order():
        assert repeatability.order_dependent_sums(fit) == []
