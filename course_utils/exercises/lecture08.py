"""Lecture 08 exercises: clipping by value, by global norm and per tensor, the global norm
from per-tensor norms (derived), non-finite gradients, and clipping under loss scaling
(a prediction the notebook then checks with torch.amp.GradScaler).

The gradients of a model are a tuple of tensors; every case holds three, of random shapes
(a matrix, a vector, and a matrix, a vector or a 0-d tensor), so a clipping answer returns
a tuple of three tensors (plus the total norm for the global one). The references are
course_utils.clipping's functional forms, which tests/test_clipping.py compares with
torch.nn.utils.
"""

import math

import numpy as np
import torch

from course_utils import clipping
from course_utils.exercises import Case, Exercise, Mistake, register

TORCH_CLIPPING = (
    "clip_grad_value_",
    "clip_grad_norm_",
    "clip_grad_norm",
    "clip_grads_with_norm_",
    "get_total_norm",
    "clip_by_value",
    "clip_by_global_norm",
    "clip_by_tensor_norm",
)

# --- case generators ------------------------------------------------------------------


def _shapes(rng):
    rows, cols = (int(n) for n in rng.integers(2, 7, size=2))
    third = [(int(rng.integers(2, 7)), rows), (int(rng.integers(2, 7)),), ()][rng.integers(3)]
    return [(rows, cols), (rows,), third]


def _grads(rng, dtype=np.float64, scale=1.0):
    """Three gradients of random shapes; each tensor's scale differs (a factor up to 10)."""
    return tuple(
        np.asarray(scale * 10 ** rng.uniform(-1, 0) * rng.standard_normal(shape), dtype=dtype)
        for shape in _shapes(rng)
    )


def _global_norm(grads, p=2.0):
    return float(np.linalg.norm(np.concatenate([np.ravel(g) for g in grads]), ord=p))


def _value_cases(rng):
    cases = []
    for group, dtype in (("random gradients", np.float64), ("single precision", np.float32)):
        for _ in range(2):
            grads = _grads(rng, dtype, scale=3.0)
            cases.append(Case(group, {"grads": grads, "clip_value": float(rng.uniform(0.5, 2))}))
    grads = _grads(rng, scale=0.1)
    cases.append(Case("nothing to clip", {"grads": grads, "clip_value": 10.0}))
    cases.append(Case("clip_value 0", {"grads": _grads(rng), "clip_value": 0.0}))
    return cases


def _global_norm_cases(rng):
    cases = []
    for group, dtype, p in (
        ("norm above max_norm: clipped", np.float64, 2.0),
        ("norm above max_norm: clipped", np.float64, 2.0),
        ("single precision", np.float32, 2.0),
        ("norm_type 1", np.float64, 1.0),
        ("norm_type inf (the largest entry)", np.float64, math.inf),
    ):
        grads = _grads(rng, dtype, scale=2.0)
        max_norm = float(rng.uniform(0.1, 0.9)) * _global_norm(grads, p)
        cases.append(Case(group, {"grads": grads, "max_norm": max_norm, "norm_type": p}))
    grads = _grads(rng)
    max_norm = float(rng.uniform(1.5, 3.0)) * _global_norm(grads)
    cases.append(
        Case(
            "norm below max_norm: unchanged",
            {"grads": grads, "max_norm": max_norm, "norm_type": 2.0},
        )
    )
    zeros = tuple(np.zeros_like(g) for g in _grads(rng))
    cases.append(Case("all gradients zero", {"grads": zeros, "max_norm": 1.0, "norm_type": 2.0}))
    return cases


def _tensor_norm_cases(rng):
    cases = []
    for group, dtype in (("random gradients", np.float64), ("single precision", np.float32)):
        for _ in range(2):
            grads = _grads(rng, dtype, scale=2.0)
            # a threshold between the smallest and the largest tensor norm
            norms = sorted(float(np.linalg.norm(np.ravel(g))) for g in grads)
            max_norm = float(rng.uniform(norms[0], norms[-1]))
            cases.append(Case(group, {"grads": grads, "max_norm": max_norm, "norm_type": 2.0}))
    grads = _grads(rng, scale=2.0)
    max_norm = float(rng.uniform(0.5, 1.0)) * max(np.abs(g).max() for g in grads)
    cases.append(
        Case("norm_type inf", {"grads": grads, "max_norm": max_norm, "norm_type": math.inf})
    )
    grads = _grads(rng)
    grads = (grads[0], np.zeros_like(grads[1]), grads[2])
    cases.append(
        Case("a zero gradient among them", {"grads": grads, "max_norm": 0.5, "norm_type": 2.0})
    )
    return cases


def _norms_cases(rng):
    cases = []
    for group, p in (
        ("norm_type 2", 2.0),
        ("norm_type 2", 2.0),
        ("norm_type 1", 1.0),
        ("norm_type 3", 3.0),
        ("norm_type inf", math.inf),
    ):
        k = int(rng.integers(2, 7))
        cases.append(Case(group, {"norms": rng.uniform(0.1, 5.0, size=k), "norm_type": p}))
    cases.append(Case("one tensor", {"norms": rng.uniform(0.1, 5.0, size=1), "norm_type": 2.0}))
    norms = rng.uniform(0.1, 5.0, size=4)
    norms[1] = 0.0
    cases.append(Case("a zero norm among them", {"norms": norms, "norm_type": 3.0}))
    return cases


def _nonfinite_cases(rng):
    cases = []
    for bad_value in (math.nan, math.inf, -math.inf):
        grads = list(_grads(rng))
        i = int(rng.integers(3))
        if grads[i].ndim == 0:
            grads[i] = np.array(bad_value, dtype=np.float64)
        else:
            flat = grads[i].reshape(-1)
            flat[int(rng.integers(flat.size))] = bad_value
        cases.append(Case("one NaN, +inf or -inf entry", {"grads": tuple(grads)}))
    cases.append(Case("all finite", {"grads": _grads(rng)}))
    grads = _grads(rng, np.float32)
    huge = np.full(grads[0].shape, 3e38, dtype=np.float32) * rng.choice([-1, 1], grads[0].shape)
    cases.append(
        Case(
            "huge but finite single-precision values (their norm overflows)",
            {"grads": (huge.astype(np.float32), grads[1], grads[2])},
        )
    )
    grads = list(_grads(rng))
    grads[0][0, 0], grads[2] = math.nan, np.full(grads[2].shape, math.inf)
    cases.append(Case("several bad tensors", {"grads": tuple(grads)}))
    return cases


def _scaler_cases(rng):
    cases = []
    for unscale_first in (True, False):
        for scale in (2.0**16, 1024.0):
            max_norm = float(rng.choice([0.5, 1.0, 5.0]))
            grad_norm = float(max_norm * rng.uniform(1.5, 20))
            args = {"grad_norm": grad_norm, "max_norm": max_norm, "scale": scale}
            group = "unscale_ first" if unscale_first else "clip before unscaling"
            cases.append(Case(group, args | {"unscale_first": unscale_first}))
    # a gradient below the threshold: clipped only when the scaled gradient is
    max_norm = float(rng.choice([1.0, 5.0]))
    small = float(max_norm * rng.uniform(0.1, 0.9))
    for unscale_first in (True, False):
        args = {"grad_norm": small, "max_norm": max_norm, "scale": 2.0**16}
        cases.append(Case("a gradient below max_norm", args | {"unscale_first": unscale_first}))
    args = {"grad_norm": float(rng.uniform(2, 10)), "max_norm": 1.0, "scale": 1.0}
    cases.append(Case("scale 1 (no loss scaling)", args | {"unscale_first": False}))
    return cases


# --- known mistakes -------------------------------------------------------------------


def _value_one_sided(grads, clip_value):
    return tuple(g.clamp(max=clip_value) for g in grads)


def _value_by_norm(grads, clip_value):
    return clipping.clip_by_tensor_norm(grads, clip_value)


def _global_per_tensor(grads, max_norm, norm_type=2.0):
    return (*clipping.clip_by_tensor_norm(grads, max_norm, norm_type), _total(grads, norm_type))


def _total(grads, norm_type):
    return torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]), norm_type)


def _global_always_scales(grads, max_norm, norm_type=2.0):
    total = _total(grads, norm_type)
    return (*(g * max_norm / (total + 1e-6) for g in grads), total)


def _global_sum_of_norms(grads, max_norm, norm_type=2.0):
    total = sum(torch.linalg.vector_norm(g, norm_type) for g in grads)
    factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return (*(g * factor for g in grads), total)


def _global_always_l2(grads, max_norm, norm_type=2.0):
    return clipping.clip_by_global_norm(grads, max_norm, 2.0)


def _global_norm_after(grads, max_norm, norm_type=2.0):
    *clipped, _ = clipping.clip_by_global_norm(grads, max_norm, norm_type)
    return (*clipped, _total(tuple(clipped), norm_type))


def _tensor_is_global(grads, max_norm, norm_type=2.0):
    return clipping.clip_by_global_norm(grads, max_norm, norm_type)[:-1]


def _tensor_always_scales(grads, max_norm, norm_type=2.0):
    return tuple(g * max_norm / (torch.linalg.vector_norm(g, norm_type) + 1e-6) for g in grads)


def _norms_sum(norms, norm_type=2.0):
    return norms.sum()


def _norms_always_l2(norms, norm_type=2.0):
    return (norms**2).sum().sqrt()


def _nonfinite_isnan(grads):
    return torch.stack([torch.isnan(g).any() for g in grads])


def _nonfinite_by_norm(grads):
    return torch.stack([~torch.isfinite(torch.linalg.vector_norm(g)) for g in grads])


def _nonfinite_isinf(grads):
    return torch.stack([torch.isinf(g).any() for g in grads])


def _scaler_ignores_scale(grad_norm, max_norm, scale, unscale_first):
    return grad_norm * min(1.0, max_norm / (grad_norm + 1e-6))


def _scaler_always_divides(grad_norm, max_norm, scale, unscale_first):
    return grad_norm * min(1.0, max_norm / (scale * grad_norm + 1e-6))


def _scaler_forgets_unscaling(grad_norm, max_norm, scale, unscale_first):
    if unscale_first:
        return grad_norm * min(1.0, max_norm / (grad_norm + 1e-6))
    return scale * grad_norm * min(1.0, max_norm / (scale * grad_norm + 1e-6))


register(
    Exercise(
        id="08.clip_by_value",
        name="clip_by_value",
        title="Clipping by value",
        points=1,
        reference=clipping.clip_by_value,
        cases=_value_cases,
        n_outputs=3,
        forbidden=TORCH_CLIPPING,
        mistakes=(
            Mistake(
                "clip both sides: entries below -clip_value become -clip_value",
                _value_one_sided,
            ),
            Mistake(
                "that scales each tensor to a norm of clip_value (clipping by norm); clipping "
                "by value clamps each entry on its own",
                _value_by_norm,
            ),
        ),
    ),
    Exercise(
        id="08.total_norm_from_tensor_norms",
        name="total_norm_from_tensor_norms",
        title="The global norm from the norms of the tensors",
        points=2,
        reference=clipping.total_norm_from_tensor_norms,
        cases=_norms_cases,
        rtol=1e-9,
        atol=1e-12,
        forbidden=TORCH_CLIPPING,
        mistakes=(
            Mistake(
                "norms do not add up: their p-th powers do, ||g||_p^p = sum_i ||g_i||_p^p; "
                "for norm_type inf the global norm is the largest of the norms",
                _norms_sum,
            ),
            Mistake(
                "that is the 2-norm whatever norm_type is: use the p-th powers and the p-th root",
                _norms_always_l2,
            ),
        ),
    ),
    Exercise(
        id="08.clip_by_global_norm",
        name="clip_by_global_norm",
        title="Clipping by global norm, returning the norm",
        points=3,
        reference=clipping.clip_by_global_norm,
        cases=_global_norm_cases,
        n_outputs=4,
        forbidden=TORCH_CLIPPING,
        mistakes=(
            Mistake(
                "that clips each tensor to its own norm; the global norm is the norm of all "
                "entries of all tensors together, and one factor scales them all",
                _global_per_tensor,
            ),
            Mistake(
                "gradients with a norm below max_norm must stay as they are: the factor is "
                "min(1, max_norm / (total + 1e-6))",
                _global_always_scales,
            ),
            Mistake(
                "the total norm is not the sum of the tensors' norms: for p = 2 it is the "
                "square root of the sum of their squares",
                _global_sum_of_norms,
            ),
            Mistake("use norm_type: the norm is not always the 2-norm", _global_always_l2),
            Mistake(
                "return the total norm from before clipping (what torch returns and what is "
                "worth logging)",
                _global_norm_after,
            ),
        ),
    ),
    Exercise(
        id="08.clip_by_tensor_norm",
        name="clip_by_tensor_norm",
        title="Clipping each tensor by its own norm",
        points=2,
        reference=clipping.clip_by_tensor_norm,
        cases=_tensor_norm_cases,
        n_outputs=3,
        forbidden=TORCH_CLIPPING,
        mistakes=(
            Mistake(
                "that is clipping by the global norm: here each tensor gets its own factor "
                "from its own norm",
                _tensor_is_global,
            ),
            Mistake(
                "a tensor whose norm is below max_norm must stay as it is: the factor is "
                "min(1, max_norm / (norm + 1e-6))",
                _tensor_always_scales,
            ),
        ),
    ),
    Exercise(
        id="08.nonfinite_grads",
        name="nonfinite_grads",
        title="Detecting non-finite gradients",
        points=2,
        reference=clipping.nonfinite_grads,
        cases=_nonfinite_cases,
        forbidden=("get_total_norm", "clip_grad_norm_"),
        mistakes=(
            Mistake(
                "an infinite entry is not finite either: NaN, +inf and -inf all count",
                _nonfinite_isnan,
            ),
            Mistake(
                "a NaN entry is not finite either: NaN, +inf and -inf all count", _nonfinite_isinf
            ),
            Mistake(
                "a norm of finite float32 entries can overflow to inf (3e38 squared): test the "
                "entries themselves, with torch.isfinite",
                _nonfinite_by_norm,
            ),
        ),
    ),
    Exercise(
        id="08.clipped_norm_with_scaler",
        name="clipped_norm_with_scaler",
        title="Predict: clipping with a gradient scaler",
        points=2,
        reference=clipping.clipped_norm_with_scaler,
        cases=_scaler_cases,
        rtol=1e-5,  # the 1e-6 in torch's factor may be left out
        atol=1e-12,
        forbidden=("GradScaler", "amp"),
        mistakes=(
            Mistake(
                "without unscale_, clip_grad_norm_ sees the scaled gradient, whose norm is "
                "scale * grad_norm",
                _scaler_ignores_scale,
            ),
            Mistake(
                "after scaler.unscale_ the gradients are true-sized: clipping then works as "
                "without a scaler",
                _scaler_always_divides,
            ),
            Mistake(
                "scaler.step divides the gradients by the scale before the optimizer uses them",
                _scaler_forgets_unscaling,
            ),
        ),
    ),
)
