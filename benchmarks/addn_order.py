"""TensorFlow's CPU AddN sums its inputs in an order that depends on runtime scheduling.

AddNOp::Compute (tensorflow/core/kernels/aggregate_ops.h) first tries to reuse ("forward") an
input buffer as the output: it takes the FIRST input whose buffer nobody else holds any more
(refcount 1) and, if that is input k > 0, swaps inputs 0 and k before computing
`in0 + in1 + in2 + ...` left to right. Whether input 0 is still held depends on whether its
other consumers have already run, i.e. on thread scheduling. With 3+ inputs the swap changes
the association: (a + b) + c versus (c + b) + a, so the result can change in the last bit.

Part 1 forces both orders with control dependencies (deterministic, shows the two results).
Part 2 leaves the order to the executor and counts distinct results over many calls.

Usage: ``python benchmarks/addn_order.py [CALLS]`` (``LOAD=k`` adds k niced busy loops).
This is why tfgames' default double-backward SGA step is not bitwise repeatable on CPU
(docs/migration.md, "Repeatability").
"""
import collections
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

# Grappler off so that each AddN runs with its inputs in the order written here (Grappler's
# arithmetic optimizer may reorder or merge AddN inputs; that is a separate, deterministic
# effect). The kernel behaviour shown below does not depend on it.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

rng = np.random.default_rng(0)
x = rng.normal(size=4096) * 3
X, Y, Z = (tf.constant(v.astype("float32"))
           for v in (x, rng.normal(size=4096), -x + 1e-3 * rng.normal(size=4096)))


def parts(x, y, z):
    # Three fresh buffers from unary ops (nothing Grappler folds into the AddN); a + c nearly
    # cancels, so the order of the sum shows in the last bits.
    return tf.sinh(x), tf.sin(y), tf.sinh(z)


@tf.function
def other_consumer_first(x, y, z):
    a, b, c = parts(x, y, z)
    other = tf.reduce_sum(tf.tanh(a) * tf.tanh(b))           # the other consumer of a and b
    with tf.control_dependencies([other]):
        s = tf.math.add_n([a, b, c])                          # a's buffer is free: no swap
    return s, other


@tf.function
def addn_first(x, y, z):
    a, b, c = parts(x, y, z)
    s = tf.math.add_n([a, b, c])                              # a, b still held: c is forwarded
    with tf.control_dependencies([s]):
        other = tf.reduce_sum(tf.tanh(a) * tf.tanh(b))
    return s, other


@tf.function
def unordered(x, y, z):
    a, b, c = parts(x, y, z)
    other = tf.reduce_sum(a * b)   # ready at the same moment as the AddN: a race
    return tf.math.add_n([a, b, c]), other


s1, _ = other_consumer_first(X, Y, Z)
s2, _ = addn_first(X, Y, Z)
a, b, c = (t.numpy() for t in parts(X, Y, Z))
ab_c = (a + b) + c          # NumPy float32, left to right: the no-swap order
cb_a = (c + b) + a          # inputs 0 and 2 swapped
print("forced: other consumer first == (a+b)+c:", np.array_equal(s1.numpy(), ab_c),
      "| AddN first == (c+b)+a:", np.array_equal(s2.numpy(), cb_a),
      "| the two differ in", int(np.sum(s1.numpy() != s2.numpy())), "of", a.size, "elements")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
load = [subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", "while True: pass"])
        for _ in range(int(os.environ.get("LOAD", 0)))]
seen = collections.Counter()
for _ in range(n):
    s, _ = unordered(X, Y, Z)
    s = s.numpy()
    seen["(a+b)+c" if np.array_equal(s, ab_c) else "(c+b)+a" if np.array_equal(s, cb_a)
         else "(b+a)+c" if np.array_equal(s, (b + a) + c) else "other"] += 1
for p in load:
    p.kill()
print(f"LOAD={len(load)} unordered, {n} calls of one traced function:", dict(seen))
