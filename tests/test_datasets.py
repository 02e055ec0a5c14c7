"""Tests for tfgames.datasets: shapes, dtypes, centres and noise statistics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgames.datasets import step_dataset
from tfgames.lab.samplers import (
    GRID_CENTRES,
    RING_CENTRES,
    gaussian_batch,
    grid_batch,
    ring_batch,
)


def test_grid_centres_are_the_seed_grid():
    assert GRID_CENTRES.shape == (16, 2)
    assert {tuple(c) for c in GRID_CENTRES} == {
        (x, y) for x in (-1.5, -0.5, 0.5, 1.5) for y in (-1.5, -0.5, 0.5, 1.5)
    }
    np.testing.assert_array_equal(
        GRID_CENTRES[:4], [[1.5, 1.5], [1.5, 0.5], [1.5, -0.5], [1.5, -1.5]]
    )
    assert not GRID_CENTRES.flags.writeable


@pytest.mark.parametrize("batch_size", [1, 16, 37, 256])
def test_grid_batch_shape_dtype_and_tiled_centres(batch_size):
    batch = grid_batch(batch_size, keras.random.SeedGenerator(0))
    assert batch.shape == (batch_size, 2)
    assert batch.dtype == tf.float32
    tiled = np.tile(GRID_CENTRES, (batch_size // 16 + 1, 1))[:batch_size]
    assert np.max(np.abs(batch.numpy() - tiled)) < 6 * 0.02


def test_grid_batch_noise_std():
    batch = grid_batch(4096, 7, std=0.05).numpy()
    noise = batch - np.tile(GRID_CENTRES, (4096 // 16 + 1, 1))[:4096]
    assert abs(noise.std() - 0.05) < 0.003
    assert np.all(np.abs(noise.mean(axis=0)) < 0.005)


def test_grid_batch_inside_tf_function_gives_fresh_noise():
    seed = keras.random.SeedGenerator(3)

    @tf.function
    def draw():
        return grid_batch(64, seed)

    first, second = draw().numpy(), draw().numpy()
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(grid_batch(8, 11).numpy(), grid_batch(8, 11).numpy())


def test_ring_centres_endpoint_false_distinct():
    centres = RING_CENTRES()
    assert centres.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, rtol=1e-6)
    gaps = np.linalg.norm(centres - np.roll(centres, 1, axis=0), axis=1)
    np.testing.assert_allclose(gaps, 2 * np.sin(np.pi / 8), rtol=1e-5)
    np.testing.assert_allclose(centres[0], [0.0, 1.0], atol=1e-7)
    assert len({tuple(np.round(c, 6)) for c in RING_CENTRES(5, 2.0)}) == 5


def test_ring_batch_draws_every_component_near_a_centre():
    batch = ring_batch(2000, seed=keras.random.SeedGenerator(1)).numpy()
    assert batch.shape == (2000, 2)
    centres = RING_CENTRES()
    dist = np.linalg.norm(batch[:, None] - centres[None], axis=-1)
    assert np.all(dist.min(axis=1) < 6 * 0.01)
    counts = np.bincount(dist.argmin(axis=1), minlength=8)
    assert np.all(counts > 180)  # 250 expected per component


def test_gaussian_batch_shape_and_moments():
    batch = gaussian_batch(4096, seed=0)
    assert batch.shape == (4096, 75) and batch.dtype == tf.float32
    assert abs(float(tf.math.reduce_std(batch)) - 1.0) < 0.02


def test_step_dataset_length():
    dataset = step_dataset(7, batch_size=3)
    assert int(dataset.cardinality()) == 7
    elements = list(dataset)
    assert len(elements) == 7 and elements[0].shape == (3, 1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: grid_batch(0), "`batch_size` must be a positive integer.*Received: batch_size=0"),
        (lambda: grid_batch(8, std=-1.0), "`std` must be a finite number >= 0"),
        (lambda: ring_batch(8, radius=0.0), "`radius` must be a finite number > 0"),
        (lambda: gaussian_batch(8, dim=0), "`dim` must be a positive integer"),
        (lambda: step_dataset(0), "`steps` must be a positive integer"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_seed_type_raises():
    with pytest.raises(TypeError, match="`seed` must be a `keras.random.SeedGenerator`"):
        grid_batch(8, seed="abc")
