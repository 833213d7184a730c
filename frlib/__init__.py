"""frlib: read a face's emotion, age band, ethnicity and gender with a multi-task TensorFlow model."""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notices) hides our own messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from frlib.config import DATATURKS_URL, Config  # noqa: E402
from frlib.labels import TASKS  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DATATURKS_URL", "TASKS", "Config", "__version__"]
