"""Case arguments in, plain arrays out: the conversions `check` and the grader's sandbox share.

An exercise's cases are plain data (NumPy arrays, Python numbers, strings, booleans,
tuples and ``GeneratorSeed``s). ``to_torch`` turns them into call arguments, and
``to_arrays`` turns what the function returned back into plain arrays, so that the
student's kernel (``course_utils.checks``) and the sandbox judge the same thing.

This module imports only numpy and torch, never course_utils: the sandbox server loads
it from its file (course_utils, which holds the reference solutions, is not importable
there).
"""

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "RESULT_KINDS",
    "GeneratorSeed",
    "OutputError",
    "describe",
    "result_kinds",
    "to_arrays",
    "to_torch",
]

RESULT_KINDS = ("tensor", "float")  # what an exercise's function may return, per output


@dataclass(frozen=True)
class GeneratorSeed:
    """A case argument that the answer receives as ``torch.Generator().manual_seed(seed)``.

    Stochastic exercises take a ``generator``; every call of the answer gets a fresh
    generator in the same state, so a correct answer gives the same output twice.
    """

    seed: int


def to_torch(value):
    """Plain data -> call arguments: arrays become tensors (same dtype), a GeneratorSeed a
    fresh seeded torch.Generator, tuples recurse. Every call makes new objects."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, GeneratorSeed):
        return torch.Generator().manual_seed(value.seed)
    if isinstance(value, tuple):
        return tuple(to_torch(v) for v in value)
    return value


class OutputError(Exception):
    """The function returned something else than the exercise expects."""


def result_kinds(result, n_outputs: int) -> tuple[str, ...]:
    """What a (reference) function returned, per output: "tensor" or "float".

    The grader takes an exercise's rule from its reference: where the reference returns
    a tensor the answer must return a tensor, where it returns a float, a float.
    """
    values = result if n_outputs > 1 and isinstance(result, tuple) else (result,)
    return tuple("float" if type(value) is float else "tensor" for value in values)


def to_arrays(result, n_outputs: int, kinds: tuple[str, ...] | None = None) -> list[np.ndarray]:
    """The function's result -> a list of ``n_outputs`` plain arrays.

    ``kinds`` (from ``result_kinds`` of the reference) says what each output must be:
    exactly ``torch.Tensor`` (no subclass, whose methods could lie) or exactly ``float``.
    Without ``kinds`` either is accepted. Each output becomes a fresh ``numpy.ndarray``.
    """
    if n_outputs > 1 and not (isinstance(result, tuple) and len(result) == n_outputs):
        raise OutputError(f"returned {describe(result)}, expected a tuple of {n_outputs} tensors")
    arrays = []
    for i, value in enumerate(result if n_outputs > 1 else (result,)):
        allowed = RESULT_KINDS if kinds is None else (kinds[i],)
        if type(value) is float and "float" in allowed:  # schedules return a Python float
            arrays.append(np.array(value, dtype=np.float64))
        elif type(value) is torch.Tensor and "tensor" in allowed:
            arrays.append(np.array(value.detach().cpu().numpy(), copy=True))
        else:
            wanted = "a float" if allowed == ("float",) else "a torch.Tensor"
            where = f"output {i}: " if n_outputs > 1 else ""
            raise OutputError(f"{where}returned {describe(value)}, expected {wanted}")
    return arrays


def describe(value) -> str:
    """A short description of a returned value, for error messages."""
    if isinstance(value, torch.Tensor):
        return f"a {type(value).__name__} of shape {tuple(value.shape)}"
    if isinstance(value, tuple):
        return f"a tuple of length {len(value)}"
    return f"a {type(value).__name__}"
