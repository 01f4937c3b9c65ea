"""course_utils: shared code for the "Training Neural Networks" notebooks.

One module per lecture topic (losses, optim, schedules, initialization, batchnorm,
regularization, dropout, label_smoothing, clipping) plus support modules (data,
training, plotting, widgets, checks, exercises).
"""

import os
import random
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import torch

try:
    __version__ = version("course-utils")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__", "default_device", "set_seed"]


def set_seed(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's global random number generators; return a
    ``torch.Generator`` seeded with ``seed``.

    Pass the returned generator explicitly wherever randomness matters, so a result
    does not depend on how many random numbers earlier cells happened to draw.

    String hashing (the iteration order of sets of strings) is not seeded here: Python
    fixes it when the interpreter starts, from the PYTHONHASHSEED environment variable,
    and nothing a running program does can change it. No result in the course depends
    on it.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds the legacy global RNG on purpose)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_device() -> torch.device:
    """CUDA when a GPU is present (and COURSE_DEVICE does not say otherwise), else the CPU."""
    wanted = os.environ.get("COURSE_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
