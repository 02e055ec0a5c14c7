"""GameModel's train function and divergence screen (issue 21 points 2-3: the per-step
overhead of the step ``fit`` runs).

The direct step (one step per execution, a ``tf.data`` iterator on one device) must train
bitwise as Keras' own train function does, stop at the end of data of unknown length, and
keep every divergence behaviour; the one-reduction-per-weight screen must never report a
finite model as diverged.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TinyGAN, flat, real_batches

import tfgames
from tfgames import _divergence, _train_function
from tfgames.callbacks import TrainingDiverged


def _trained(optimizer, keras_path: bool, monkeypatch, data=None, epochs=2, check=True):
    """(weights, optimizer variables, per-epoch losses, direct calls) after ``fit``."""
    calls = []
    original = _train_function._one_device_iterator

    def spy(iterator):
        direct = original(iterator) and not keras_path
        calls.append(direct)
        return direct

    monkeypatch.setattr(_train_function, "_one_device_iterator", spy)
    keras.utils.set_random_seed(0)
    model = TinyGAN(seed=3)
    model.check_finite = check
    model.compile(optimizer=optimizer)
    history = model.fit(data if data is not None else real_batches(), epochs=epochs, verbose=0)
    return (flat(model.get_weights()), flat([v.numpy() for v in model.optimizer.variables]),
            history.history, calls)


@pytest.mark.parametrize("optimizer", [
    "rmsprop", pytest.param("sga", marks=pytest.mark.slow)])
@pytest.mark.parametrize("check", [True, False])
def test_direct_step_trains_bitwise_as_keras_train_function(optimizer, check, monkeypatch):
    make = {"rmsprop": lambda: keras.optimizers.RMSprop(1e-3),
            "sga": lambda: tfgames.SGA(keras.optimizers.RMSprop(1e-3))}[optimizer]
    w_direct, o_direct, h_direct, calls = _trained(make(), False, monkeypatch, check=check)
    assert calls and all(calls)  # every step of both epochs ran the direct function
    w_keras, o_keras, h_keras, calls = _trained(make(), True, monkeypatch, check=check)
    assert calls and not any(calls)
    np.testing.assert_array_equal(w_direct, w_keras)
    np.testing.assert_array_equal(o_direct, o_keras)
    assert h_direct == h_keras


def test_direct_step_stops_at_the_end_of_data_of_unknown_length(monkeypatch):
    data = real_batches(n_batches=5).filter(lambda x: tf.reduce_all(tf.math.is_finite(x)))
    assert data.cardinality() == tf.data.UNKNOWN_CARDINALITY
    w_direct, _, h_direct, calls = _trained(keras.optimizers.SGD(0.01), False, monkeypatch,
                                            data=data, epochs=3)
    assert len(h_direct["generator_loss"]) == 3 and all(calls)
    w_keras, _, h_keras, _ = _trained(keras.optimizers.SGD(0.01), True, monkeypatch,
                                      data=data, epochs=3)
    np.testing.assert_array_equal(w_direct, w_keras)
    assert h_direct == h_keras


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_train_on_batch_equals_a_fit_step(steps_per_execution):
    """Keras packs ``train_on_batch``'s batch as (x, None, None); compute_losses gets x."""
    x = next(iter(real_batches()))
    models = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model = TinyGAN(seed=1)
        model.compile(optimizer=keras.optimizers.SGD(0.01),
                      steps_per_execution=steps_per_execution)
        models.append(model)
    logs = models[0].train_on_batch(x, return_dict=True)
    history = models[1].fit(tf.data.Dataset.from_tensors(x), epochs=1, verbose=0).history
    assert logs == {k: v[0] for k, v in history.items()}
    np.testing.assert_array_equal(flat(models[0].get_weights()), flat(models[1].get_weights()))
    evaluated = models[0].test_on_batch(x, return_dict=True)
    assert set(evaluated) == set(logs) and all(np.isfinite(list(evaluated.values())))


class _Huge(tfgames.GameModel):
    """Finite weights whose float32 sum overflows to inf; the losses read only a[3]."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = self.add_weight(shape=(4,), name="a", initializer=keras.initializers.Constant(
            [3e38, 3e38, 3e38, 1.0]))
        self.b = self.add_weight(shape=(), initializer="ones", name="b")

    def players(self):
        return {"p": self.a, "q": self.b}

    def compute_losses(self, data, training=False):
        return tfgames.zero_sum(self.a[3] * self.b, min_player="p", max_player="q")


def test_screen_overflow_of_finite_weights_is_not_divergence():
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.float32(3e38) * np.float32(3))  # the screen's sum overflows
    model = _Huge()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(tfgames.datasets.step_dataset(4), epochs=1, verbose=0)  # no TrainingDiverged
    np.testing.assert_array_equal(model.a.numpy()[:3], np.full(3, 3e38, np.float32))
    assert model.a.numpy()[3] != 1.0  # trained
    assert _divergence.divergence_record(model).numpy().tolist() == [4.0, -1.0, -1.0, 0.0]


def test_screen_reports_a_non_finite_weight_by_name():
    model = _Huge()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.a.assign([3e38, 3e38, float("inf"), 1.0])
    with pytest.raises(TrainingDiverged, match=r"at step 1 .*a weight of player 'p'"):
        model.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)


def test_clean_steps_run_no_restore_nodes():
    """The restore and the exact check are a function call; a clean step visits no switch."""
    model = TinyGAN(seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    model.make_train_function()
    iterator = iter(real_batches())
    model.train_function(iterator)
    graph = _train_function_graph(model, iterator)
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    ops = [n.op for n in nodes]
    assert "Switch" not in ops and "Merge" not in ops
    ifs = [n for n in nodes if n.op in ("If", "StatelessIf")]
    assert len(ifs) == 2  # the screen's branch, and the restore inside it
    assert all(not n.attr["_lower_using_switch_merge"].b for n in ifs)


def _train_function_graph(model, iterator):
    """The graph of the direct step's concrete function (what the executor runs, before
    grappler)."""
    for cell in model.train_function.__closure__ or ():
        value = cell.cell_contents
        if isinstance(value, list) and len(value) == 2 and value[0] is not None:
            return value[1].graph.as_graph_def()
    raise AssertionError("no concrete function cached")
