"""Argument checks shared by the course_utils modules.

Each raises TypeError/ValueError with a message that names the argument and what
was expected, so a student sees "logits must be a floating-point tensor" instead of
a stack trace from deep inside torch.
"""

import math

import torch


def tensor(x, name: str, *, floating: bool = False, min_dim: int = 0) -> torch.Tensor:
    """Check that ``x`` is a tensor (floating point if asked, at least ``min_dim`` dims)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s), got shape {tuple(x.shape)}"
        )
    return x


def same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Check that two tensors have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def number(x, name: str, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """Check that ``x`` is a finite real number in [low, high] (open ends if asked)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {x}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {x}")
    return x


def integer(x, name: str, *, low=None) -> int:
    """Check that ``x`` is an int (not a bool), at least ``low`` if given."""
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    if low is not None and x < low:
        raise ValueError(f"{name} must be >= {low}, got {x}")
    return x


def reduction(value: str) -> str:
    """Check a loss reduction: 'none', 'mean' or 'sum'."""
    if value not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {value!r}")
    return value


def dim(d, x: torch.Tensor, name: str = "dim") -> int:
    """Check that ``d`` is a valid dimension index of ``x``; return it non-negative."""
    if isinstance(d, bool) or not isinstance(d, int):
        raise TypeError(f"{name} must be an int, got {type(d).__name__}")
    if not -x.dim() <= d < max(x.dim(), 1):
        raise ValueError(
            f"{name} must be in [{-x.dim()}, {x.dim() - 1}] for a {x.dim()}-D tensor, got {d}"
        )
    return d % max(x.dim(), 1)
