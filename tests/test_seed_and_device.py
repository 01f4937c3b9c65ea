"""course_utils.set_seed and default_device."""

import os
import random

import numpy as np
import pytest
import torch

import course_utils


def _draws():
    return random.random(), np.random.random(), torch.rand(1).item()  # noqa: NPY002


def test_set_seed_makes_every_global_generator_repeat():
    generator = course_utils.set_seed(123)
    first, from_generator = _draws(), torch.rand(3, generator=generator)
    again = course_utils.set_seed(123)
    assert _draws() == first
    assert torch.equal(torch.rand(3, generator=again), from_generator)
    course_utils.set_seed(124)
    assert _draws() != first


def test_set_seed_leaves_the_environment_alone():
    # PYTHONHASHSEED is read once, when the interpreter starts: setting it later is a no-op.
    before = dict(os.environ)
    course_utils.set_seed(5)
    assert dict(os.environ) == before


@pytest.mark.parametrize(
    ("seed", "error"), [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_set_seed_rejects_bad_seeds(seed, error):
    with pytest.raises(error, match="seed"):
        course_utils.set_seed(seed)


def test_default_device_follows_course_device(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert course_utils.default_device() == torch.device("cpu")
    monkeypatch.delenv("COURSE_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert course_utils.default_device().type == expected
