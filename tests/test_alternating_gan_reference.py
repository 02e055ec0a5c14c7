"""An alternating GAN through fit equals the seed's hand-written loop, noise stream included.

Seed 001's T2.1 loop alternates ``sess.run(discriminator_update_op)`` and
``sess.run(generator_update_op)``, each on its own batch and its own draw of z, with one Adam
per player. ``compile(optimizer={...}, schedule="alternating")`` must take exactly those steps:
one player per train step, each step drawing the next z of the model's noise stream (a replayed
z would train the generator on one fixed noise batch). The reference below is a plain
GradientTape loop drawing z from its own ``SeedGenerator`` with the same seed.
"""

import keras
import numpy as np
import tensorflow as tf
from conftest import TinyGAN

STEPS = 8
BATCH = 16


def _adams():
    return (keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9),
            keras.optimizers.Adam(3e-4, beta_1=0.9, beta_2=0.9))


def test_alternating_gan_equals_hand_written_loop_with_fresh_noise():
    keras.utils.set_random_seed(3)
    model = TinyGAN(seed=7, z_dim=3, width=16)
    g_ref = keras.models.clone_model(model.generator)
    d_ref = keras.models.clone_model(model.discriminator)
    g_ref.set_weights(model.generator.get_weights())
    d_ref.set_weights(model.discriminator.get_weights())
    x = np.random.default_rng(0).normal(size=(STEPS, BATCH, 2)).astype("float32")

    d_opt, g_opt = _adams()
    model.compile(optimizer={"discriminator": d_opt, "generator": g_opt}, schedule="alternating")
    model.fit(tf.data.Dataset.from_tensor_slices(x), epochs=1, verbose=0)

    d_ref_opt, g_ref_opt = _adams()
    noise = keras.random.SeedGenerator(7)
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    draws = []
    for t in range(STEPS):
        z = keras.random.normal((BATCH, 3), seed=noise)
        draws.append(z.numpy())
        with tf.GradientTape(persistent=True) as tape:
            real, fake = d_ref(x[t]), d_ref(g_ref(z))
            d_loss = (tf.reduce_mean(bce(tf.ones_like(real), real))
                      + tf.reduce_mean(bce(tf.zeros_like(fake), fake)))
            g_loss = tf.reduce_mean(bce(tf.ones_like(fake), fake))
        if t % 2 == 0:
            d_ref_opt.apply(tape.gradient(d_loss, d_ref.trainable_variables),
                            d_ref.trainable_variables)
        else:
            g_ref_opt.apply(tape.gradient(g_loss, g_ref.trainable_variables),
                            g_ref.trainable_variables)

    assert not np.allclose(draws[0], draws[1])  # the reference does draw fresh noise
    for got, want in ((model.discriminator, d_ref), (model.generator, g_ref)):
        for a, b in zip(got.get_weights(), want.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(model.seed_generator.state.numpy(), noise.state.numpy())
    assert {p: int(o.iterations.numpy()) for p, o in model.optimizer.optimizers.items()} == {
        "discriminator": STEPS // 2, "generator": STEPS // 2}
