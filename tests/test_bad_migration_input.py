"""TF1 habits fail early with an error that names the TF2 / tfgames replacement."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
import tfgames.lab.tf1_seed
from tfgames.compat import v1
from tfgames.lab import tf1_seed

tf1 = tf.compat.v1


@pytest.mark.parametrize("game_optimizer", [tfgames.SGA, tfgames.Consensus])
@pytest.mark.parametrize("tf1_optimizer, replacement", [
    (lambda: tf1.train.RMSPropOptimizer(1e-4),
     r"RMSPropOptimizer is a TF1 optimizer .* use tfgames\.compat\.v1\.RMSPropOptimizer"
     r"\(learning_rate\) \(TF1-exact: mean square starting at ones, epsilon 1e-10\) or "
     r"keras\.optimizers\.RMSprop\(learning_rate\)"),
    (lambda: tf1.train.AdamOptimizer(1e-3),
     r"use keras\.optimizers\.Adam\(learning_rate, beta_1=beta1, beta_2=beta2, "
     r"epsilon=1e-8\)"),
    (lambda: tf1.train.GradientDescentOptimizer(0.1), r"use keras\.optimizers\.SGD"),
    (lambda: tf1.train.MomentumOptimizer(0.1, 0.9),
     r"use keras\.optimizers\.SGD\(learning_rate, momentum=momentum\)"),
    (lambda: tf1_seed.SymplecticOptimizer(1e-4),
     r"use tfgames\.compat\.v1\.SymplecticOptimizer\(learning_rate\), passed as the "
     r"GameModel's optimizer"),
])
def test_tf1_optimizer_as_inner_optimizer_names_the_replacement(
        game_optimizer, tf1_optimizer, replacement):
    with pytest.raises(TypeError) as info:
        game_optimizer(tf1_optimizer())
    message = str(info.value)
    assert message.startswith("Argument `inner_optimizer` must be a Keras 3 optimizer instance")
    assert "Received: an object of type tensorflow.python.training." in message or (
        "tfgames.lab.tf1_seed.SymplecticOptimizer" in message)
    assert re.search(replacement, message), message
    assert "tfgames.compat.v1 holds TF1-exact equivalents" in message


def test_keras2_optimizer_is_rejected_with_the_keras3_name():
    tf_keras = pytest.importorskip("tf_keras")
    with pytest.raises(TypeError, match=r"Keras 2 \(tf_keras\) optimizer; tfgames needs Keras 3: "
                                        r"use keras\.optimizers\.Adam from `import keras`"):
        tfgames.SGA(tf_keras.optimizers.Adam(1e-3))


def test_optimizer_class_instead_of_instance():
    expected = (r"Received: an object of type builtins\.type\. Pass an instance, "
                r"e\.g\. RMSprop\(learning_rate\), not the class")
    with pytest.raises(TypeError, match=expected):
        tfgames.SGA(keras.optimizers.RMSprop)


def _variables_and_grads():
    x = keras.Variable(np.array([1.0, 2.0], "float32"), name="x")
    y = keras.Variable(np.array(3.0, "float32"), name="y")
    return [x, y], [tf.ones(2), tf.ones(())]


@pytest.mark.parametrize("make_optimizer", [
    lambda: tfgames.SGA(keras.optimizers.RMSprop(1e-3)),
    lambda: v1.SymplecticOptimizer(1e-4),  # the seed's drop-in, used the TF1 way
])
def test_apply_gradients_with_pairs_explains_the_game_model(make_optimizer):
    optimizer = make_optimizer()
    variables, grads = _variables_and_grads()
    with pytest.raises(TypeError) as info:
        optimizer.apply_gradients(list(zip(grads, variables)))
    message = str(info.value)
    assert "apply_gradients(grads_and_vars) is not supported" in message
    assert "`optimizer.apply_gradients(zip(Xi, xs))` becomes a tfgames.GameModel" in message
    assert "`players()` returns {name: layer or variables}" in message
    assert "`compute_losses(data)` returns {name: loss}" in message
    assert message.endswith("Received: a list of 2 (gradient, variable) pairs.")
    with pytest.raises(TypeError, match=r"Received: zip\.$"):
        optimizer.apply_gradients(zip(grads, variables))
    assert not optimizer.built and int(optimizer.iterations.numpy()) == 0
    np.testing.assert_array_equal(variables[0].numpy(), [1.0, 2.0])


def test_apply_and_minimize_say_a_game_is_needed():
    optimizer = tfgames.SGA(keras.optimizers.SGD(0.1))
    variables, grads = _variables_and_grads()
    with pytest.raises(TypeError, match=r"SGA needs the game, not only gradients.*"
                                        r"tfgames\.GameModel"):
        optimizer.apply(grads, variables)
    with pytest.raises(TypeError, match=r"SGA has no minimize\(loss, var_list\): Keras 3 "
                                        r"optimizers do not minimize a loss tensor"):
        optimizer.minimize(lambda: tf.reduce_sum(variables[0]), var_list=variables)
    np.testing.assert_array_equal(variables[0].numpy(), [1.0, 2.0])


@pytest.mark.parametrize("make, error, match", [
    (lambda: v1.RMSPropOptimizer(1e-3, use_locking=True), ValueError,
     r"RMSPropOptimizer does not support `use_locking=True`.*Received: use_locking=True"),
    (lambda: v1.SymplecticOptimizer(1e-3, use_locking=True), ValueError,
     r"SymplecticOptimizer does not support `use_locking=True`"),
    (lambda: v1.RMSPropOptimizer(1e-3, decay=1.5), ValueError,
     r"`decay` \(rho\) must be in \[0, 1\]\. Received: decay=1\.5"),
    (lambda: v1.RMSPropOptimizer(1e-3, momentum=-0.1), ValueError,
     r"`momentum` must be >= 0\. Received: momentum=-0\.1"),
    (lambda: v1.RMSPropOptimizer(1e-3, epsilon=-1.0), ValueError,
     r"`epsilon` must be >= 0\. Received: epsilon=-1\.0"),
    (lambda: v1.SymplecticOptimizer(1e-3, reg_params=-1.0), ValueError,
     r"`reg_params` \(lambda_0\) must be a number >= 0.*Received: reg_params=-1\.0"),
    (lambda: v1.RMSPropOptimizer(tf.Variable(1e-3)), TypeError,
     r"a TF1 learning-rate tensor .* becomes keras\.optimizers\.schedules\.ExponentialDecay"),
    (lambda: v1.SymplecticOptimizer(True), TypeError,
     r"`learning_rate` must be a float.*Received: learning_rate=True"),
])
def test_compat_constructor_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("make, match", [
    (lambda: v1.AdamirrorOptimizer(1e-3, beta1=1.0), r"`beta1` must be in \[0, 1\)\. "
                                                     r"Received: beta1=1\.0"),
    (lambda: v1.AdamirrorOptimizer(1e-3, beta2=-0.5), r"`beta2` must be in \[0, 1\)"),
    (lambda: v1.AdamirrorOptimizer(1e-3, use_locking=True),
     r"AdamirrorOptimizer does not support `use_locking=True`"),
])
def test_compat_adamirror_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_seed_adamirror_class_as_inner_optimizer_names_the_compat_one():
    class AdamirrorOptimizer(tf1.train.Optimizer):  # the seed's TF1 class, name only
        def __init__(self):
            super().__init__(use_locking=False, name="Adamirror")

    with pytest.raises(TypeError, match=r"use tfgames\.compat\.v1\.AdamirrorOptimizer"):
        tfgames.SGA(AdamirrorOptimizer())


def test_tf1_optimizer_passed_to_game_model_compile_names_the_replacement():
    from conftest import TinyGAN

    model = TinyGAN()
    with pytest.raises(TypeError) as info:
        model.compile(optimizer=tf1.train.RMSPropOptimizer(1e-4))
    message = str(info.value)
    assert message.startswith("Argument `optimizer` must be a Keras 3 optimizer instance")
    assert re.search(r"use tfgames\.compat\.v1\.RMSPropOptimizer\(learning_rate\)", message)
    assert getattr(model, "optimizer", None) is None
