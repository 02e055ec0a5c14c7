"""The library and its lab: what ``import tfgames`` loads, docstring examples that run, and the
pieces split out of the oversized modules."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
from tfgames import losses, unrolling

LAB_ONLY = ("matplotlib", "scipy", "mlxtend")


def test_import_tfgames_needs_no_lab_dependency():
    """``import tfgames`` succeeds with matplotlib, SciPy and mlxtend made unimportable, and
    loads no ``tfgames.lab`` module. (TensorFlow and Keras themselves import matplotlib and
    SciPy when they are installed, so the check blocks them rather than reading sys.modules.)"""
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in {LAB_ONLY!r}:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import tfgames
        lab = sorted(m for m in sys.modules if m.startswith("tfgames.lab"))
        assert not lab, lab
        print("ok", tfgames.__version__)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok ")


def _modules(package: str) -> list[str]:
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.",
                                      onerror=lambda name: None):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module", _modules("tfgames"))
def test_docstring_examples_run_and_print_a_result(module):
    """Every ``>>>`` example in the package's docstrings runs, and prints what it shows."""
    if module.startswith("tfgames.lab"):
        pytest.importorskip("matplotlib", reason="the lab extra is not installed")
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, module) if t.examples]
    report: list[str] = []
    for test in tests:
        assert any(example.want.strip() for example in test.examples), (
            f"{test.name}: a docstring example must print a result")
        runner.run(test, out=report.append)
    assert runner.failures == 0, (
        f"{runner.failures} failing docstring examples in {module}:\n" + "".join(report))


def test_one_gan_loss_helper():
    real, fake = tf.constant([2.0, -1.0]), tf.constant([0.5, -3.0])
    sigma = lambda t: 1 / (1 + np.exp(-t.numpy()))  # noqa: E731
    want_d = -np.mean(np.log(sigma(real))) - np.mean(np.log(1 - sigma(fake)))
    got = losses.gan_losses(real, fake)
    np.testing.assert_allclose(float(got["discriminator"]), want_d, rtol=1e-6)
    np.testing.assert_allclose(float(got["generator"]), -np.mean(np.log(sigma(fake))), rtol=1e-6)
    minimax = losses.gan_losses(real, fake, generator="minimax")
    np.testing.assert_allclose(float(minimax["generator"]), -want_d, rtol=1e-6)
    with pytest.raises(ValueError, match=r"`generator` must be one of.*generator='wasserstein'"):
        losses.gan_losses(real, fake, generator="wasserstein")


def test_missing_private_keras_state_fails_loudly(monkeypatch):
    """unroll_variables reads Adam's moments from Keras' private attributes: a Keras without
    them is an error naming the attribute, never a silent zero state."""
    layer = keras.layers.Dense(1)
    layer(tf.ones((1, 2)))
    adam = keras.optimizers.Adam(0.1)
    adam.build(layer.trainable_variables)
    monkeypatch.delattr(type(adam), "_momentums", raising=False)
    monkeypatch.delattr(adam, "_momentums")
    with pytest.raises(RuntimeError, match="attribute `_momentums`.*Keras 3.10 to 3.15"):
        unrolling.unroll_variables(layer, lambda d: tf.reduce_sum(d(tf.ones((1, 2)))), 1, adam)


def test_unrolled_gan_with_an_unroll_optimizer_saves_and_loads(tmp_path, fixed_sum_order):
    def mlp(n_in, n_out, name):
        return keras.Sequential([keras.Input((n_in,)), keras.layers.Dense(4, activation="tanh"),
                                 keras.layers.Dense(n_out)], name=name)

    model = tfgames.UnrolledGAN(mlp(3, 2, "generator"), mlp(2, 1, "discriminator"),
                                latent_dim=3, unroll_steps=2,
                                unroll_optimizer=keras.optimizers.Adam(0.01, beta_1=0.5), seed=1)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    data = tf.data.Dataset.from_tensors(tf.random.stateless_normal((8, 2), (1, 2))).repeat(2)
    model.fit(data, epochs=1, verbose=0)
    path = str(tmp_path / "unrolled.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.unroll_optimizer, keras.optimizers.Adam)
    assert loaded.unroll_optimizer.get_config()["beta_1"] == 0.5
    assert loaded.unroll_steps == 2
    for a, b in zip(loaded.trainable_variables, model.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded.fit(data, epochs=1, verbose=0)
    model.fit(data, epochs=1, verbose=0)
    for a, b in zip(loaded.trainable_variables, model.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
