"""The docs' and README's code runs, and every public name is documented."""

import inspect
import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("page", ["docs/index.md", "docs/games.md", "docs/scaling.md"])
def test_doc_snippets_run(page):
    blocks = _python_blocks(ROOT / page)
    assert blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)


def test_index_claim_on_bilinear():
    namespace = {}
    exec(_python_blocks(ROOT / "docs/index.md")[0], namespace)
    assert namespace["model"].distance_to_equilibrium() < 1e-6
    gd = tfgames.games.Bilinear()
    gd.compile(optimizer=keras.optimizers.SGD(0.1))
    gd.fit(tfgames.datasets.step_dataset(300), epochs=1, verbose=0)
    assert round(gd.distance_to_equilibrium(), 1) == 6.3


def test_readme_example_runs():
    block = _python_blocks(ROOT / "README.md")[0]
    generator = keras.Sequential([keras.Input((64,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(2)])
    discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="relu"),
                                      keras.layers.Dense(1)])
    dataset = tf.data.Dataset.from_tensor_slices(
        np.random.default_rng(0).normal(size=(64, 2)).astype("float32")).batch(32)
    namespace = {"generator": generator, "discriminator": discriminator, "dataset": dataset}
    block = block.replace('keras.callbacks.TensorBoard("logs")', "keras.callbacks.History()")
    block = block.replace("epochs=10", "epochs=1, verbose=0")
    exec(compile(block, "README.md", "exec"), namespace)
    assert np.isfinite(namespace["model"].evaluate(dataset, verbose=0)).all()


def test_every_public_name_has_a_docstring():
    assert list(tfgames.__all__) == sorted(tfgames.__all__)
    missing = [name for name in tfgames.__all__
               if not inspect.getdoc(getattr(tfgames, name))]
    assert not missing, f"public names without a docstring: {missing}"
