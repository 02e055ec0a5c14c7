"""Step time and memory on a GPU: the table of ``benchmarks/step_time.py``, XLA off and on.

Run from the repository root on a machine with a GPU (about 3-5 minutes on one GPU)::

    python benchmarks/gpu_step_time.py

For each architecture (depth 6; widths 128, 384, 1024 at batch 256, then batches 64 and 1024
at width 384; width 384 first) it measures the rows of ``benchmarks/step_time.py`` (the
default ``tfgames.SGA`` through ``GameModel``'s compiled train step with the noise drawn inside
``compute_losses``, SGA in each ``hvp_mode``, the hand-written ``tf.function`` steps, the
seed's TF1 code as written and with every gradient call colocated alike, the plain steps) side
by side in one process, interleaved, medians, with the executed matrix products per step;
once with ``jit_compile=False`` and once with ``jit_compile=True`` (the XLA tables compile the
tfgames and hand-written rows; the TF1 rows are the same TF1 sessions, as the reference).
Then the peak GPU memory of a warm step (``tf.config.experimental.get_memory_info``, peak
minus the memory in use before the step) of the plain step and of SGA in each mode.

The run stops starting new architectures after ``--budget-s`` seconds (default 270) and says
which it skipped. It prints what ``hvp_mode="auto"`` resolves to on the GPU
(``tfgames.optimizers.sga.AUTO_HVP_MODE``): compare it with the faster explicit mode of the
tables. ``--allow-cpu`` runs it without a GPU (a smoke test of the script).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf


def _step_time():
    path = Path(__file__).resolve().parent / "step_time.py"
    spec = importlib.util.spec_from_file_location("step_time", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gpu_step_memory(st, kind: str, depth: int, width: int, batch: int, jit: bool,
                    steps: int = 3) -> tuple[float, float]:
    """(MiB in use before the steps, MiB of the steps' peak above it) on the first GPU."""
    run = st.runners(kind, st.init_weights(depth, width), depth, width, st.real_batch(batch),
                     jit)
    run(2)
    tf.config.experimental.reset_memory_stats("GPU:0")
    before = tf.config.experimental.get_memory_info("GPU:0")["current"]
    run(steps)
    peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
    getattr(run, "close", lambda: None)()
    return before / 2**20, (peak - before) / 2**20


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="384,128,1024")
    parser.add_argument("--batches", default="64,1024", help="at width 384")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=270.0)
    parser.add_argument("--allow-cpu", action="store_true", help="smoke run without a GPU")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        sys.exit("No GPU is visible to TensorFlow (tf.config.list_physical_devices('GPU') is "
                 "empty). Run this on a GPU machine, or pass --allow-cpu for a smoke run.")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    st = _step_time()
    start = time.monotonic()
    parse = lambda s: [int(v) for v in s.split(",") if v]  # noqa: E731
    archs = [(w, 256) for w in parse(args.widths)]
    archs += [(384, b) for b in parse(args.batches) if (384, b) not in archs]
    device = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
              if gpus else "CPU (--allow-cpu smoke run)")
    print(f"{device}; TensorFlow {tf.__version__}; hvp_mode='auto' resolves to "
          f"{st.default_hvp_mode()!r} here; {args.reps} interleaved repetitions of "
          f"{args.steps} steps, medians")
    skipped = []
    for width, batch in archs:
        for jit in (False, True):
            if time.monotonic() - start > args.budget_s:
                skipped.append(f"width {width} batch {batch} XLA {'on' if jit else 'off'}")
                continue
            result = st.measure(args.depth, width, batch, args.reps, args.steps, jit)
            st.print_table(f"depth {args.depth}, width {width}, batch {batch}, XLA "
                           f"{'on' if jit else 'off'} (TF1 rows: no XLA)", result)
    if gpus and not args.no_memory:
        print("\nPeak GPU memory of a warm step (MiB): in use before, step peak above it")
        for width, batch in archs:
            for jit in (False, True):
                if time.monotonic() - start > args.budget_s + 20:
                    skipped.append(f"memory width {width} batch {batch}")
                    continue
                for kind in ("tfgames-plain", "tfgames-sga-forward",
                             "tfgames-sga-double_backward"):
                    before, step = gpu_step_memory(st, kind, args.depth, width, batch, jit)
                    print(f"{kind:28s} width {width:5d} batch {batch:5d} XLA "
                          f"{'on ' if jit else 'off'} {before:9.1f} {step:9.1f}")
    print(f"\ntotal {time.monotonic() - start:.0f} s; skipped (time budget): "
          f"{', '.join(skipped) or 'nothing'}")


if __name__ == "__main__":
    main()
