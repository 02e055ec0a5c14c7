"""Every optimizer of the experiments' registry (``tfgames run ... --optimizers``) builds and
takes a training step of the experiments' GAN at the ``smoke`` preset; the new families'
entries have the configuration the registry's table states."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tfgames
from tfgames.compat.v1 import RMSPropOptimizer
from tfgames.lab.experiments import mog, registry
from tfgames.lab.experiments.runner import MLPGAN

#: The entries added for the second-order (issue 18) and first-order (issue 19) families.
NEW_FAMILIES = ("la", "lola", "sos", "cgd", "gacgd", "acgd", "lss", "lead", "hgd", "egplus",
                "eag", "feg", "negative-momentum", "alexgda", "heun", "rk4")

#: Entries stepped in the default run: one per optimizer module of the families (the rest,
#: including the solver loops and forward-mode products of many seconds, under `make test-slow`).
DEFAULT_STEPS = ("sgd", "rmsprop", "la", "lead", "hgd", "egplus", "eag", "negative-momentum",
                 "alexgda", "heun")


def test_the_new_families_are_registered():
    assert set(NEW_FAMILIES) <= set(registry.available_optimizers())
    assert registry.resolve_optimizer_names("lola,sos") == ["lola", "sos"]


@pytest.mark.parametrize("name", [
    name if name in DEFAULT_STEPS else pytest.param(name, marks=pytest.mark.slow)
    for name in registry.OPTIMIZERS])
def test_every_entry_takes_a_step_on_the_smoke_gan(name):
    """One eager training step on the smoke preset's GAN: finite losses, every player's
    weights move, one optimizer step counted (eager: no tracing; the solver-based entries
    take many seconds even so and run under `make test-slow`)."""
    config = mog.PRESETS["smoke"]
    keras.utils.set_random_seed(0)
    model = MLPGAN(config, seed=0)
    model.compile(optimizer=registry.make_optimizer(name, config.learning_rate),
                  run_eagerly=True)
    before = {p: [v.numpy() for v in m.trainable_variables] for p, m in model.players().items()}
    logs = model.fit(tfgames.datasets.step_dataset(1), epochs=1, verbose=0).history
    assert np.isfinite(logs["discriminator_loss"][0]) and np.isfinite(logs["generator_loss"][0])
    after = {p: [v.numpy() for v in m.trainable_variables] for p, m in model.players().items()}
    for player in before:
        moved = max(np.abs(a - b).max() for a, b in zip(after[player], before[player]))
        assert moved > 0, (name, player)
    assert int(model.optimizer.iterations.numpy()) == 1


def test_the_new_entries_have_the_stated_configuration():
    lr = 1e-4
    lola = registry.make_optimizer("lola", lr)
    assert isinstance(lola, tfgames.LOLA) and lola.alpha == lr
    assert isinstance(lola.inner_optimizer, RMSPropOptimizer)
    sos = registry.make_optimizer("sos", lr)
    assert isinstance(sos, tfgames.SOS) and (sos.alpha, sos.a, sos.b) == (lr, 0.5, 0.1)
    cgd = registry.make_optimizer("cgd", lr)
    assert (cgd.alpha, cgd.solver, cgd.max_iterations) == (lr, "gmres", 10)
    assert registry.make_optimizer("lss", lr).max_iterations == 10
    lead = registry.make_optimizer("lead", lr)
    assert lead.alpha == 0.6 and isinstance(lead.inner_optimizer, keras.optimizers.Adam)
    egplus = registry.make_optimizer("egplus", lr)
    assert egplus.beta == 0.5 and egplus.inner_optimizer.epsilon == 1e-8
    momentum = registry.make_optimizer("negative-momentum", lr)
    assert isinstance(momentum, tfgames.PerPlayer)
    assert (momentum.update_order, momentum.batches) == ("alternating", "reuse")
    assert {type(o).__name__ for o in momentum.player_optimizers.values()} == {
        "NegativeMomentum"}
    assert registry.make_optimizer("alexgda", lr).extrapolation == 2.0
    assert registry.make_optimizer("rk4", lr).method == "rk4"
    assert registry.make_optimizer("heun", lr).method == "heun"
