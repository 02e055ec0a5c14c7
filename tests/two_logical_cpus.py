"""Import first in a worker script: TensorFlow with the CPU split into 2 logical devices (the
set-up of the distributed tests' subprocesses; it must run before TensorFlow initialises)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
