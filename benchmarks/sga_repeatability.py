"""Is one compiled train step bitwise repeatable? Repeats of a 2-step fit from one saved state.

For each of ``--models`` fresh models (``keras.backend.clear_session``, the same seed): fit 2
steps (this traces and instantiates ``fit``'s train function), save every state variable, then
``--repeats`` times restore that state and fit 2 more steps with the SAME train function,
hashing the weights. One hash per model means the step is repeatable; two or more mean its
result depends on run-time scheduling (docs/migration.md, "Repeatability": TensorFlow's CPU
``AddN`` picks its summation order at run time; ``benchmarks/addn_order.py`` shows the kernel
alone). The game is the smoke 4x4-grid GAN of ``tfgames run mog --preset smoke``, or with
``--gan tutorial`` the GAN of ``docs/tutorial.md`` (its first code block: tanh MLPs of width 16,
512 ring points) trained one epoch (8 steps of batch 64) per repeat, with the tutorial's
``tfgames.SGA(keras.optimizers.RMSprop(1e-3))`` in the SGA modes.

Usage: ``python benchmarks/sga_repeatability.py [--mode sga-double-backward|sga-forward|
extragradient] [--gan smoke|tutorial] [--arithmetic-off] [--jit] [--inter-op N]
[--intra-op N] [--models 3] [--repeats 8] [--load K] [--plain-data]`` (``--load`` adds K niced
busy loops, as a loaded machine; ``--plain-data`` feeds the tutorial GAN a plain ``tf.data``
pipeline instead of the NumPy array that Keras wraps in a parallel map with autotuned prefetch).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout

MODES = ("sga-double-backward", "sga-forward", "extragradient")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="sga-double-backward")
    parser.add_argument("--gan", choices=("smoke", "tutorial"), default="smoke")
    parser.add_argument("--arithmetic-off", action="store_true",
                        help="Grappler's arithmetic optimizer off (process-wide)")
    parser.add_argument("--fixed-sum-order", action="store_true",
                        help="run everything inside tfgames.repeatability.fixed_sum_order() "
                             "(the tape's sums in order and the arithmetic optimizer off)")
    parser.add_argument("--jit", action="store_true", help="compile(jit_compile=True)")
    parser.add_argument("--inter-op", type=int, default=0, help="inter-op threads (0: TF's)")
    parser.add_argument("--intra-op", type=int, default=0, help="intra-op threads (0: TF's)")
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--load", type=int, default=0)
    parser.add_argument("--plain-data", action="store_true",
                        help="tutorial GAN: fit on tf.data.Dataset.from_tensor_slices(x).batch(64) "
                             "instead of the NumPy array (Keras' adapter: parallel map, "
                             "autotuned prefetch)")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    if args.intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    arithmetic_before = tf.config.optimizer.get_experimental_options().get(
        "arithmetic_optimization")
    if args.arithmetic_off:
        tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})

    import tfgames
    from tfgames import _divergence, datasets
    from tfgames.compat import v1
    from tfgames.lab.experiments import mog
    from tfgames.lab.experiments.runner import MLPGAN

    config = dataclasses.replace(mog.PRESETS["smoke"], steps=4)

    def optimizer():
        if args.mode == "extragradient":
            return tfgames.Extragradient(keras.optimizers.SGD(0.1))
        mode = "forward" if args.mode == "sga-forward" else "double_backward"
        if args.gan == "tutorial":
            return tfgames.SGA(keras.optimizers.RMSprop(1e-3), hvp_mode=mode)
        return tfgames.SGA(v1.RMSPropOptimizer(config.learning_rate), normalizer="tensors",
                           hvp_mode=mode)

    if args.gan == "tutorial":
        page = (Path(__file__).resolve().parents[1] / "docs" / "tutorial.md").read_text()
        tutorial: dict = {"__name__": "tutorial"}
        exec(re.findall(r"```python\n(.*?)```", page, flags=re.S)[0], tutorial)

        def make_model():
            return tutorial["make_gan"]()

        def fit(model) -> None:
            if args.plain_data:
                data = tf.data.Dataset.from_tensor_slices(tutorial["x"]).batch(64)
                model.fit(data, epochs=1, shuffle=False, verbose=0)
            else:
                model.fit(tutorial["x"], batch_size=64, epochs=1, shuffle=False, verbose=0)
    else:
        def make_model():
            model = MLPGAN(config, seed=2)
            model.check_finite = False
            return model

        def fit(model) -> None:
            model.fit(datasets.step_dataset(2), epochs=1, verbose=0, shuffle=False)

    def digest(model) -> str:
        return hashlib.md5(b"".join(v.numpy().tobytes() for v in model.weights)).hexdigest()[:6]

    setting = ("fixed_sum_order()" if args.fixed_sum_order else
               f"arithmetic optimizer {'off' if args.arithmetic_off else 'on'}")
    print(f"gan {args.gan}, mode {args.mode}, {setting}, "
          f"jit {args.jit}, inter-op {args.inter_op or 'default'}, intra-op "
          f"{args.intra_op or 'default'}, {args.load} busy loops"
          f"{', plain tf.data input' if args.plain_data else ''}; TF {tf.__version__}")
    block = (tfgames.repeatability.fixed_sum_order() if args.fixed_sum_order
             else contextlib.nullcontext())
    load = [subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", "while True: pass"])
            for _ in range(args.load)]
    try:
        with block:
            for index in range(args.models):
                keras.backend.clear_session()
                keras.utils.set_random_seed(2)
                model = make_model()
                model.compile(optimizer=optimizer(), jit_compile=args.jit)
                fit(model)
                start = digest(model)
                variables = _divergence.state_variables(model)
                saved = [v.numpy() for v in variables]
                repeats = []
                for _ in range(args.repeats):
                    for variable, value in zip(variables, saved):
                        variable.assign(value)
                    fit(model)
                    repeats.append(digest(model))
                print(f"model {index}: after one fit {start}; {args.repeats} repeats of one more "
                      f"fit from that state: {sorted(set(repeats))} "
                      f"({len(set(repeats))} distinct)", flush=True)
    finally:
        for process in load:
            process.kill()
        tf.config.optimizer.set_experimental_options(  # as found (None: on, TF's default)
            {"arithmetic_optimization": arithmetic_before is not False})


if __name__ == "__main__":
    main()
