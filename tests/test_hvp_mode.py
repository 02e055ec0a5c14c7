"""SGA's default hvp_mode="auto": how it resolves, that it serializes, and that it steps as
the mode it resolves to (forward mode stays first-class: tests/test_sga.py checks both
explicit modes against the NumPy closed form)."""


import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TinyGAN, real_batches
from tensorflow.python.framework import config as tf_config

import tfgames
from tfgames.optimizers import sga


def test_default_hvp_mode_is_auto_and_survives_serialization():
    opt = tfgames.SGA(keras.optimizers.RMSprop(1e-3))
    assert opt.hvp_mode == "auto"
    assert opt.get_config()["hvp_mode"] == "auto"
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(opt))
    assert isinstance(again, tfgames.SGA) and again.hvp_mode == "auto"
    explicit = tfgames.SGA.from_config(tfgames.SGA(keras.optimizers.SGD(0.1),
                                                   hvp_mode="forward").get_config())
    assert explicit.hvp_mode == "forward"


class _On:
    def __init__(self, device):
        self.device = device


def test_auto_resolves_by_device_type():
    cpu = [tf.Variable(1.0)]
    assert sga.resolve_hvp_mode("auto", cpu) == "double_backward"
    assert tfgames.SGA(keras.optimizers.SGD(0.1)).resolved_hvp_mode(cpu) == "double_backward"
    # GPUs are not measured yet: auto keeps double backward there (fewer products, one
    # evaluation of the losses); an explicit mode is never changed.
    assert sga.resolve_hvp_mode("auto", [_On("/job:localhost/replica:0/task:0/device:GPU:0")]) \
        == "double_backward"
    for mode in ("forward", "double_backward"):
        assert sga.resolve_hvp_mode(mode, cpu) == mode


def test_auto_resolves_to_forward_mode_under_op_determinism():
    cpu = [tf.Variable(1.0)]
    tf.config.experimental.enable_op_determinism()
    try:
        assert sga.resolve_hvp_mode("auto", cpu) == "forward"
        assert sga.resolve_hvp_mode("double_backward", cpu) == "double_backward"  # explicit
    finally:
        tf_config.disable_op_determinism()  # only enable_ is exported under tf.config
    assert sga.resolve_hvp_mode("auto", cpu) == "double_backward"


def test_bad_hvp_mode_names_the_choices():
    with pytest.raises(ValueError, match=r"`hvp_mode` must be one of \('auto', 'forward', "
                                         r"'double_backward'\)\. Received: hvp_mode='fwd'"):
        tfgames.SGA(keras.optimizers.SGD(0.1), hvp_mode="fwd")


def _train(hvp_mode):
    keras.utils.set_random_seed(4)
    model = TinyGAN(seed=3)
    kwargs = {} if hvp_mode is None else {"hvp_mode": hvp_mode}
    model.compile(optimizer=tfgames.SGA(keras.optimizers.RMSprop(1e-2), **kwargs))
    model.fit(real_batches(3), epochs=1, verbose=0)
    return [w.numpy() for w in model.trainable_weights]


def test_auto_steps_as_double_backward_and_forward_mode_agrees():
    auto, double_backward, forward = _train(None), _train("double_backward"), _train("forward")
    for a, d, f in zip(auto, double_backward, forward):
        np.testing.assert_array_equal(a, d)  # resolved when fit's step is traced
        np.testing.assert_allclose(f, d, rtol=1e-5, atol=1e-6)
