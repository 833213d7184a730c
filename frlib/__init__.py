"""frlib: read a face's emotion, age band, ethnicity and gender with a multi-task TensorFlow model."""

from frlib.config import DATATURKS_URL, Config
from frlib.labels import TASKS

__version__ = "0.1.0"
__all__ = ["DATATURKS_URL", "TASKS", "Config", "__version__"]
