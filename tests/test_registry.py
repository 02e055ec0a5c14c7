"""One suite for every optimizer in ``registry.ENTRIES``: oracle steps, config round trip,
``.keras`` save/load with exact resume, loss evaluations per step, no retracing, the bilinear
game and bad inputs."""

from __future__ import annotations

import keras
import numpy as np
import oracles
import pytest
from registry import ENTRIES, QUADRATIC, W0, quadratic_model

import tfgames

ORACLE_STEPS = 4
BY_ID = [pytest.param(e, id=e.name) for e in ENTRIES]


def _flat(model) -> np.ndarray:
    return np.concatenate([np.ravel(v.numpy()) for v in model.trainable_variables])


def _trajectory(model, steps: int) -> np.ndarray:
    seen = []
    model.fit(tfgames.datasets.step_dataset(steps), epochs=1, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(
                  on_train_batch_end=lambda batch, logs: seen.append(_flat(model)))])
    return np.array(seen)


@keras.saving.register_keras_serializable(package="tfgames_tests")
class CountingQuadratic(tfgames.games.QuadraticZeroSum):
    """The registry's quadratic game, counting loss evaluations (exact when run eagerly)."""

    calls = 0

    def compute_losses(self, data, training=False):
        CountingQuadratic.calls += 1
        return super().compute_losses(data, training)


@pytest.mark.parametrize("entry", BY_ID)
def test_first_steps_equal_the_numpy_oracle(entry):
    model = quadratic_model()
    model.compile(optimizer=entry.make())
    got = _trajectory(model, ORACLE_STEPS)
    want = oracles.trajectory(entry.oracle(QUADRATIC), W0, ORACLE_STEPS)
    np.testing.assert_allclose(got, want, rtol=entry.rtol, atol=1e-6)


@pytest.mark.parametrize("entry", BY_ID)
def test_config_round_trip(entry):
    optimizer = entry.make()
    config = optimizer.get_config()
    clone = type(optimizer).from_config(config)
    assert clone.get_config() == config
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is type(optimizer) and again.get_config() == config


@pytest.mark.parametrize("entry", BY_ID)
def test_save_load_resumes_exactly(tmp_path, entry, fixed_sum_order):
    straight = quadratic_model()
    straight.compile(optimizer=entry.make())
    straight.fit(tfgames.datasets.step_dataset(6), epochs=1, verbose=0)

    first = quadratic_model()
    first.compile(optimizer=entry.make())
    first.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    assert type(resumed.optimizer) is type(first.optimizer)
    for a, b in zip(resumed.optimizer.variables, first.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    resumed.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)
    np.testing.assert_array_equal(_flat(resumed), _flat(straight))


@pytest.mark.parametrize("entry", BY_ID)
def test_loss_evaluations_per_step(entry):
    model = CountingQuadratic(a=QUADRATIC.a, c=QUADRATIC.c, coupling=QUADRATIC.B.tolist())
    model.compile(optimizer=entry.make(), run_eagerly=True)
    CountingQuadratic.calls = 0
    model.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)
    assert CountingQuadratic.calls == 3 * entry.evaluations


@pytest.mark.parametrize("entry", BY_ID)
def test_no_retracing(entry):
    model = quadratic_model()
    model.compile(optimizer=entry.make())
    model.fit(tfgames.datasets.step_dataset(3), epochs=3, verbose=0)
    assert model.train_step_traces == 1


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.name) for e in ENTRIES if e.bilinear])
def test_bilinear_game(entry):
    """x*y from (1, 1): methods that converge end within 0.05 of (0, 0); the others end
    farther than they started (sqrt 2)."""
    make, steps, converges = entry.bilinear
    model = tfgames.games.Bilinear()
    model.compile(optimizer=make())
    model.fit(tfgames.datasets.step_dataset(steps), epochs=1, verbose=0)
    distance = model.distance_to_equilibrium()
    if converges:
        assert distance < 0.05
    else:
        assert distance > np.sqrt(2.0)


@pytest.mark.parametrize("call, error, match", [
    pytest.param(*case, id=f"{e.name}-{i}") for e in ENTRIES for i, case in enumerate(e.bad_inputs)
])
def test_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_every_public_optimizer_is_registered():
    """A public optimizer class without an entry fails here: add it to registry.ENTRIES."""
    registered = {type(e.make()).__name__ for e in ENTRIES}
    public = {name for name in tfgames.__all__
              if isinstance(getattr(tfgames, name), type)
              and issubclass(getattr(tfgames, name), keras.optimizers.Optimizer)}
    abstract = {"GameOptimizer", "WrapperOptimizer"}
    assert public - abstract <= registered, f"not in the registry: {public - abstract - registered}"
