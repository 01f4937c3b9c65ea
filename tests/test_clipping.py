"""course_utils.clipping against torch.nn.utils (random shapes and seeds, bad gradients,
parameters without gradients) and against closed forms where torch has no twin."""

import math

import numpy as np
import pytest
import torch

from course_utils import clipping

NORM_TYPES = [2.0, 1.0, 3.0, 0.5, math.inf, -math.inf, 0.0, -1.0, "inf", 2]
DTYPES = [torch.float32, torch.float64]


def _params(seed, dtype=torch.float64, scale=None, with_none=True):
    """Random parameters of random shapes (0-d to 3-d) with random gradients; with_none
    adds parameters whose .grad is None between them. Returns (ours, twins for torch)."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    scale = float(rng.choice([0.01, 1.0, 30.0])) if scale is None else scale
    ours = []
    for _ in range(int(rng.integers(1, 6))):
        shape = tuple(int(n) for n in rng.integers(1, 5, size=int(rng.integers(0, 4))))
        p = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_()
        p.grad = scale * torch.randn(shape, generator=gen, dtype=dtype)
        ours.append(p)
        if with_none and rng.random() < 0.4:
            ours.append(torch.zeros(2, dtype=dtype, requires_grad=True))  # no .grad
    return ours, _twins(ours)


def _twins(params):
    twins = []
    for p in params:
        q = p.detach().clone().requires_grad_()
        q.grad = None if p.grad is None else p.grad.clone()
        twins.append(q)
    return twins


def _assert_same_grads(ours, theirs, **tol):
    for p, q in zip(ours, theirs, strict=True):
        if q.grad is None:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, q.grad, equal_nan=True, **tol)


# --- clip_grad_value_ ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_value_equals_torch(seed, dtype):
    ours, theirs = _params(seed, dtype)
    clip_value = float(np.random.default_rng(seed).choice([0.0, 0.01, 0.5, 2.0, math.inf]))
    assert clipping.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _assert_same_grads(ours, theirs, rtol=0, atol=0)


def test_clip_grad_value_on_nan_and_inf_and_a_single_tensor():
    p = torch.zeros(4, requires_grad=True)
    p.grad = torch.tensor([math.nan, math.inf, -math.inf, -0.25])
    q = _twins([p])[0]
    clipping.clip_grad_value_(p, 0.5)
    torch.nn.utils.clip_grad_value_(q, 0.5)
    torch.testing.assert_close(p.grad, q.grad, equal_nan=True, rtol=0, atol=0)
    assert p.grad[1:].tolist() == [0.5, -0.5, -0.25]  # inf becomes +-c, NaN stays


def test_clip_grad_value_keeps_the_gradient_tensor_and_changes_its_direction():
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([10.0, 1.0], dtype=torch.float64)
    grad = p.grad
    clipping.clip_grad_value_([p], 1.0)
    assert p.grad is grad  # in place
    assert p.grad.tolist() == [1.0, 1.0]  # 45 degrees instead of atan(1/10)


# --- get_total_norm and clip_grad_norm_ -------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_get_total_norm_equals_torch(seed, norm_type, dtype):
    ours, _ = _params(seed, dtype, with_none=False)
    grads = [p.grad for p in ours]
    want = torch.nn.utils.get_total_norm(grads, norm_type)
    got = clipping.get_total_norm(grads, norm_type)
    assert got.dtype == want.dtype and got.shape == want.shape == ()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_equals_torch(seed, norm_type, dtype):
    ours, theirs = _params(seed, dtype)
    # thresholds below, near and above the total norm, 0 and inf
    total = torch.nn.utils.get_total_norm([p.grad for p in theirs if p.grad is not None], norm_type)
    total = total.item()
    max_norm = float(np.random.default_rng(seed).choice([0.0, 0.3, 1.0, 3.0, math.inf])) * total
    max_norm = 0.0 if math.isnan(max_norm) else max_norm
    got = clipping.clip_grad_norm_(ours, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert got.dtype == want.dtype and got.shape == want.shape == ()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    tol = {"rtol": 1e-6, "atol": 0} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-7}
    _assert_same_grads(ours, theirs, **tol)


@pytest.mark.parametrize("seed", range(6))
def test_clip_grad_norm_leaves_a_norm_of_max_norm_and_keeps_the_direction(seed):
    ours, _ = _params(seed, scale=10.0, with_none=False)
    before = torch.cat([p.grad.flatten() for p in ours])
    total = clipping.clip_grad_norm_(ours, 0.5)
    after = torch.cat([p.grad.flatten() for p in ours])
    assert total.item() == pytest.approx(before.norm().item(), rel=1e-12)
    assert after.norm().item() == pytest.approx(0.5 * total.item() / (total.item() + 1e-6))
    cosine = (before @ after) / (before.norm() * after.norm())
    assert cosine.item() == pytest.approx(1.0, abs=1e-12)
    # below the threshold nothing changes
    again = clipping.clip_grad_norm_(ours, 1.0)
    assert again.item() == pytest.approx(0.5, rel=1e-5)
    assert torch.equal(torch.cat([p.grad.flatten() for p in ours]), after)


@pytest.mark.parametrize(
    "bad",
    [
        [math.nan, 1.0],  # NaN: every gradient becomes NaN
        [math.inf, 1.0],  # inf: finite entries become 0, infinite ones NaN
        [-math.inf, math.nan],
        [3e38, 3e38],  # finite float32 entries whose square sum overflows to inf
    ],
)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_handles_nonfinite_gradients_as_torch(bad, norm_type):
    a = torch.zeros(2, requires_grad=True)
    a.grad = torch.tensor(bad)
    b = torch.zeros(3, requires_grad=True)
    b.grad = torch.tensor([0.5, -2.0, 1.0])
    ours, theirs = [a, b], _twins([a, b])
    got = clipping.clip_grad_norm_(ours, 1.0, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type)
    torch.testing.assert_close(got, want, equal_nan=True, rtol=0, atol=0)
    _assert_same_grads(ours, theirs, rtol=0, atol=0)

    # error_if_nonfinite: both raise a RuntimeError when the norm is NaN or inf, and then
    # leave the gradients alone
    ours, theirs = [a, b], _twins([a, b])
    for p, t in zip(ours, theirs, strict=True):
        p.grad = t.grad.clone()
    a.grad = torch.tensor(bad)
    theirs[0].grad = torch.tensor(bad)
    before = [p.grad.clone() for p in ours]
    nonfinite = not math.isfinite(torch.nn.utils.get_total_norm([a.grad, b.grad], norm_type))
    if nonfinite:
        with pytest.raises(RuntimeError):
            torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type, error_if_nonfinite=True)
        with pytest.raises(RuntimeError, match="cannot be clipped"):
            clipping.clip_grad_norm_(ours, 1.0, norm_type, error_if_nonfinite=True)
        for p, g in zip(ours, before, strict=True):
            torch.testing.assert_close(p.grad, g, equal_nan=True, rtol=0, atol=0)
    else:  # the inf-norm of [3e38, 3e38] is finite
        clipping.clip_grad_norm_(ours, 1.0, norm_type, error_if_nonfinite=True)


def test_the_nonfinite_error_says_whether_a_gradient_is_bad_or_the_norm_overflowed():
    with pytest.raises(RuntimeError, match=r"tensors \[1\] hold NaN or inf"):
        clipping.get_total_norm([torch.ones(2), torch.tensor([math.nan])], error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="overflowed"):
        clipping.get_total_norm([torch.full((2,), 3e38)], error_if_nonfinite=True)


def test_clip_grad_norm_without_gradients_a_single_tensor_a_generator_and_mixed_dtypes():
    # no parameter has a gradient: torch returns tensor(0.)
    p = torch.zeros(3, requires_grad=True)
    for params in ([], [p], (q for q in [p])):
        got = clipping.clip_grad_norm_(params, 1.0)
        want = torch.nn.utils.clip_grad_norm_([p], 1.0)
        assert torch.equal(got, want) and got.dtype == torch.float32 and p.grad is None
    # a single tensor, not in a list, and a generator of parameters
    ours, theirs = _params(3, with_none=False)
    got = clipping.clip_grad_norm_(ours[0], 0.1)
    want = torch.nn.utils.clip_grad_norm_(theirs[0], 0.1)
    torch.testing.assert_close(got, want)
    got = clipping.clip_grad_norm_((q for q in ours), 0.1)
    want = torch.nn.utils.clip_grad_norm_((q for q in theirs), 0.1)
    torch.testing.assert_close(got, want)
    _assert_same_grads(ours, theirs)
    # float32 and float64 gradients together: the norm is promoted to float64
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, dtype=torch.float64)
    a.grad, b.requires_grad_().grad = torch.tensor([3.0, 4.0]), torch.tensor([12.0, 0.0]).double()
    ours, theirs = [a, b], _twins([a, b])
    got = clipping.clip_grad_norm_(ours, 1.0)
    want = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert got.dtype == want.dtype == torch.float64 and got.item() == pytest.approx(13.0)
    _assert_same_grads(ours, theirs)


# --- per tensor -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
@pytest.mark.parametrize("dtype", DTYPES)
def test_per_tensor_clipping_is_torch_clip_grad_norm_on_each_parameter_alone(
    seed, norm_type, dtype
):
    ours, theirs = _params(seed, dtype)
    max_norm = float(np.random.default_rng(seed).choice([0.0, 0.1, 1.0, 10.0]))
    norms = clipping.clip_grad_norm_per_tensor_(ours, max_norm, norm_type)
    want = [
        torch.nn.utils.clip_grad_norm_([q], max_norm, norm_type)
        for q in theirs
        if q.grad is not None
    ]
    torch.testing.assert_close(norms, torch.stack(want), rtol=1e-6, atol=0)
    _assert_same_grads(ours, theirs, rtol=1e-6, atol=1e-7)


def test_per_tensor_clipping_keeps_a_nan_in_its_tensor_and_handles_no_gradients():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    a.grad, b.grad = torch.tensor([math.nan, 1.0]), torch.tensor([3.0, 4.0])
    norms = clipping.clip_grad_norm_per_tensor_([a, b], 1.0)
    assert torch.isnan(a.grad).all() and torch.isfinite(b.grad).all()
    assert norms[1].item() == 5.0 and b.grad.norm().item() == pytest.approx(1.0, rel=1e-5)
    empty = clipping.clip_grad_norm_per_tensor_([torch.zeros(1, requires_grad=True)], 1.0)
    assert empty.shape == (0,)


# --- the functional forms ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_functional_forms_equal_the_in_place_ones_and_leave_their_input_alone(seed, norm_type):
    ours, _ = _params(seed, with_none=False)
    grads = tuple(p.grad.clone() for p in ours)
    copies = tuple(g.clone() for g in grads)
    c = float(np.random.default_rng(seed).choice([0.05, 0.5, 5.0]))

    by_value = clipping.clip_by_value(grads, c)
    *by_norm, total = clipping.clip_by_global_norm(grads, c, norm_type)
    by_tensor = clipping.clip_by_tensor_norm(grads, c, norm_type)
    for g, copy in zip(grads, copies, strict=True):
        assert torch.equal(g, copy)

    for clip_, result, extra in (
        (clipping.clip_grad_value_, by_value, ()),
        (clipping.clip_grad_norm_, by_norm, (norm_type,)),
        (clipping.clip_grad_norm_per_tensor_, by_tensor, (norm_type,)),
    ):
        params = _twins(ours)
        out = clip_(params, c, *extra)
        for p, r in zip(params, result, strict=True):
            assert torch.equal(p.grad, r)
        if clip_ is clipping.clip_grad_norm_:
            assert torch.equal(out, total)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, 0.5, math.inf, -math.inf, -2.0])
def test_total_norm_from_tensor_norms_is_the_norm_of_everything_concatenated(seed, norm_type):
    ours, _ = _params(seed, with_none=False)
    grads = [p.grad for p in ours]
    norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])
    everything = torch.cat([g.flatten() for g in grads])
    want = torch.linalg.vector_norm(everything, norm_type)
    got = clipping.total_norm_from_tensor_norms(norms, norm_type)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=0)
    if norm_type == 2.0:  # Pythagoras
        assert got.item() == pytest.approx(math.sqrt(sum(n.item() ** 2 for n in norms)))


def test_for_norm_type_0_torch_counts_tensors_not_entries():
    # the "0-norm" counts non-zero entries; torch's norm of per-tensor counts counts the
    # tensors that have any, and ours follows torch
    grads = [torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.0]), torch.tensor([5.0])]
    assert torch.nn.utils.get_total_norm(grads, 0.0).item() == 2.0
    assert clipping.get_total_norm(grads, 0.0).item() == 2.0
    assert torch.linalg.vector_norm(torch.cat(grads), 0.0).item() == 3.0


def test_nonfinite_grads_flags_nan_and_inf_entry_by_entry():
    grads = (
        torch.tensor([1.0, math.nan]),
        torch.tensor([[-math.inf]]),
        torch.full((3,), 3e38),  # finite, although its norm and sum overflow
        torch.tensor(2.0),
        torch.zeros(0),
        torch.tensor([math.inf, 1.0], dtype=torch.float64),
    )
    got = clipping.nonfinite_grads(grads)
    assert got.dtype == torch.bool
    assert got.tolist() == [True, True, False, False, False, True]
    assert not torch.isfinite(torch.linalg.vector_norm(grads[2]))  # what a norm test would miss
    assert clipping.nonfinite_grads(()).shape == (0,)


# --- loss scaling: the closed form against torch.amp.GradScaler --------------------------


@pytest.mark.parametrize("unscale_first", [True, False])
@pytest.mark.parametrize(("max_norm", "init_scale"), [(1.0, 2.0**16), (0.05, 1024.0), (100.0, 8.0)])
def test_clipped_norm_with_scaler_predicts_what_gradscaler_applies(
    unscale_first, max_norm, init_scale
):
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    x, y = torch.randn(16, 5), torch.randn(16, 3)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    before = [p.detach().clone() for p in model.parameters()]

    loss = torch.nn.functional.mse_loss(model(x), y)
    true_norm = torch.nn.utils.get_total_norm(
        torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
    ).item()
    scaler.scale(loss).backward()
    if unscale_first:
        scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(opt)  # divides by the scale if unscale_ was not called
    applied = math.sqrt(
        sum(
            ((b - p.detach()) ** 2).sum().item()
            for b, p in zip(before, model.parameters(), strict=True)
        )
    )  # lr = 1: the step is the applied gradient

    want = clipping.clipped_norm_with_scaler(true_norm, max_norm, init_scale, unscale_first)
    assert applied == pytest.approx(want, rel=1e-4)


def test_clipped_norm_with_scaler_closed_form():
    assert clipping.clipped_norm_with_scaler(3.0, 1.0, 1.0, True) == pytest.approx(1.0, rel=1e-6)
    assert clipping.clipped_norm_with_scaler(0.5, 1.0, 1.0, True) == 0.5
    assert clipping.clipped_norm_with_scaler(3.0, 1.0, 2.0**16, False) == pytest.approx(2.0**-16)
    assert clipping.clipped_norm_with_scaler(3.0, math.inf, 2.0**16, False) == 3.0


# --- bad input --------------------------------------------------------------------------


def test_bad_input_is_refused_with_a_message_naming_the_argument():
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.ones(2)
    cases = [
        (lambda: clipping.clip_grad_norm_([p], -1.0), ValueError, "max_norm"),
        (lambda: clipping.clip_grad_norm_([p], math.nan), ValueError, "max_norm"),
        (lambda: clipping.clip_grad_norm_([p], "1"), TypeError, "max_norm"),
        (lambda: clipping.clip_grad_norm_([p], 1.0, math.nan), ValueError, "norm_type"),
        (lambda: clipping.clip_grad_norm_([p], 1.0, "two"), TypeError, "norm_type"),
        (lambda: clipping.clip_grad_norm_([p], 1.0, True), TypeError, "norm_type"),
        (lambda: clipping.clip_grad_norm_([p, 3.0], 1.0), TypeError, r"params\[1\]"),
        (lambda: clipping.clip_grad_norm_(5, 1.0), TypeError, "params"),
        (lambda: clipping.clip_grad_norm_([p], 1.0, 2.0, "yes"), TypeError, "error_if_nonfinite"),
        (lambda: clipping.clip_grad_value_([p], -0.1), ValueError, "clip_value"),
        (lambda: clipping.clip_grad_value_([p], None), TypeError, "clip_value"),
        (lambda: clipping.clip_grad_norm_per_tensor_([p], -2), ValueError, "max_norm"),
        (lambda: clipping.clip_by_value([torch.arange(3)], 1.0), TypeError, "floating"),
        (lambda: clipping.clip_by_global_norm("ab", 1.0), TypeError, "grads"),
        (lambda: clipping.nonfinite_grads([[1.0]]), TypeError, r"grads\[0\]"),
        (
            lambda: clipping.total_norm_from_tensor_norms(torch.tensor([-1.0]), 2.0),
            ValueError,
            "norms",
        ),
        (
            lambda: clipping.total_norm_from_tensor_norms(torch.ones(2, 2), 2.0),
            ValueError,
            "norms",
        ),
        (lambda: clipping.clipped_norm_with_scaler(1.0, 1.0, 0.0, True), ValueError, "scale"),
        (lambda: clipping.clipped_norm_with_scaler(-1.0, 1.0, 1.0, True), ValueError, "grad_norm"),
        (lambda: clipping.clipped_norm_with_scaler(1.0, 1.0, 1.0, 1), TypeError, "unscale_first"),
    ]
    for call, error, name in cases:
        with pytest.raises(error, match=name):
            call()
    # inf thresholds turn clipping off; 'inf' is a norm type, as in torch
    clipping.clip_grad_value_([p], math.inf)
    assert clipping.clip_grad_norm_([p], math.inf, "inf").item() == 1.0
    assert p.grad.tolist() == [1.0, 1.0]
