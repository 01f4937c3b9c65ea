"""Tests for course_utils.losses.

Every function is checked against an independent answer: its torch.nn.functional twin,
torch autograd, or a value worked out by hand from the formula.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import losses

SEEDS = [0, 1, 2]
DTYPES = [torch.float32, torch.float64]
REDUCTIONS = ["none", "mean", "sum"]
SMOOTHING = [0.0, 0.1, 0.5, 1.0]


def assert_close(actual, expected):
    """Compare with a tolerance set by the dtype: 1e-6 relative in float64, looser in float32.

    assert_close also checks that shape and dtype agree.
    """
    if expected.dtype == torch.float64:
        torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-12)
    else:
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


def random_classification(seed, dtype, scale=3.0):
    """Logits (N, C) of a random shape, with class-index and class-probability targets."""
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 9, (), generator=gen))
    c = int(torch.randint(2, 11, (), generator=gen))
    logits = scale * torch.randn(n, c, generator=gen, dtype=dtype)
    indices = torch.randint(0, c, (n,), generator=gen)
    probs = torch.softmax(torch.randn(n, c, generator=gen, dtype=dtype), dim=-1)
    return logits, indices, probs


def random_pair(seed, dtype):
    """Two tensors of the same random shape (1 to 3 dims), for the elementwise losses."""
    gen = torch.Generator().manual_seed(seed)
    ndim = int(torch.randint(1, 4, (), generator=gen))
    shape = tuple(int(s) for s in torch.randint(1, 6, (ndim,), generator=gen))
    a = 2 * torch.randn(shape, generator=gen, dtype=dtype)
    b = 2 * torch.randn(shape, generator=gen, dtype=dtype)
    return a, b


# --- softmax and log_softmax ---------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_match_torch(seed, dtype, dim):
    gen = torch.Generator().manual_seed(seed)
    z = 5 * torch.randn(3, 4, 5, generator=gen, dtype=dtype)
    assert_close(losses.softmax(z, dim=dim), torch.softmax(z, dim=dim))
    assert_close(losses.log_softmax(z, dim=dim), torch.log_softmax(z, dim=dim))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows_sum_to_one_and_ignore_a_shift(dtype):
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=dtype)
    p = losses.softmax(z)
    assert_close(p.sum(dim=-1), torch.ones(6, dtype=dtype))
    assert_close(losses.softmax(z + 100.0), p)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1000.0, 1e4, 1e30])
def test_softmax_extreme_logits_are_exact(dtype, scale):
    # Worked by hand: exp(-2 * scale) underflows to exactly 0 for these scales, and a tie
    # between the two largest logits gives each probability 1/2.
    z = scale * torch.tensor([[1.0, -1.0, 0.0], [1.0, -1.0, 1.0]], dtype=dtype)
    expected_p = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5]], dtype=dtype)
    expected_log_p = torch.stack(
        [
            scale * torch.tensor([0.0, -2.0, -1.0]),
            torch.tensor([-math.log(2), -2 * scale - math.log(2), -math.log(2)]),
        ]
    ).to(dtype)
    assert torch.equal(losses.softmax(z), expected_p)
    assert_close(losses.log_softmax(z), expected_log_p)
    assert torch.isfinite(losses.log_softmax(z)).all()
    assert_close(losses.log_softmax(z), torch.log_softmax(z, dim=-1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_ties_are_uniform(dtype):
    z = torch.full((2, 4), 7.0, dtype=dtype)
    assert_close(losses.softmax(z), torch.full((2, 4), 0.25, dtype=dtype))
    assert_close(losses.log_softmax(z), torch.full((2, 4), -math.log(4), dtype=dtype))


def test_softmax_of_one_element_is_one():
    assert_close(losses.softmax(torch.tensor([3.0])), torch.tensor([1.0]))
    assert_close(losses.log_softmax(torch.tensor([3.0])), torch.tensor([0.0]))


# --- cross_entropy -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["indices", "probs"])
@pytest.mark.parametrize("label_smoothing", SMOOTHING)
def test_cross_entropy_matches_torch(seed, dtype, kind, label_smoothing):
    logits, indices, probs = random_classification(seed, dtype)
    target = indices if kind == "indices" else probs
    for reduction in REDUCTIONS:
        kwargs = {"label_smoothing": label_smoothing, "reduction": reduction}
        expected = F.cross_entropy(logits, target, **kwargs)
        assert_close(losses.cross_entropy(logits, target, **kwargs), expected)


@pytest.mark.parametrize("kind", ["indices", "probs"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_single_example_and_batch_of_one(kind, reduction, label_smoothing):
    logits = torch.tensor([2.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    target = torch.tensor(2) if kind == "indices" else torch.softmax(-logits, dim=-1)
    kwargs = {"label_smoothing": label_smoothing, "reduction": reduction}
    # (C,) logits with a () or (C,) target
    assert_close(
        losses.cross_entropy(logits, target, **kwargs), F.cross_entropy(logits, target, **kwargs)
    )
    # (1, C) logits with a (1,) or (1, C) target
    batch, batch_target = logits[None], target[None]
    assert_close(
        losses.cross_entropy(batch, batch_target, **kwargs),
        F.cross_entropy(batch, batch_target, **kwargs),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1000.0, 1e4])
def test_cross_entropy_extreme_logits(dtype, scale):
    logits = scale * torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]], dtype=dtype)
    target = torch.tensor([0, 2])
    # Row 0 puts all mass on its target: loss 0. Row 1's target is 2 * scale below the max.
    expected = torch.tensor([0.0, 2 * scale], dtype=dtype)
    loss = losses.cross_entropy(logits, target, reduction="none")
    assert_close(loss, expected)
    assert_close(loss, F.cross_entropy(logits, target, reduction="none"))
    smoothed = losses.cross_entropy(logits, target, label_smoothing=0.1, reduction="none")
    assert torch.isfinite(smoothed).all()
    assert_close(smoothed, F.cross_entropy(logits, target, label_smoothing=0.1, reduction="none"))


def test_cross_entropy_beyond_float32_range_gives_no_nan():
    # z_1 - max overflows to -inf in float32, so log_softmax is [0, -inf]. With all target
    # mass on class 0 the loss is 0; 0 * (-inf) must not turn it into NaN.
    logits = torch.tensor([[3e38, -3e38]])
    assert losses.cross_entropy(logits, torch.tensor([0])).item() == 0.0
    assert losses.cross_entropy(logits, torch.tensor([[1.0, 0.0]])).item() == 0.0
    assert F.cross_entropy(logits, torch.tensor([0])).item() == 0.0


@pytest.mark.parametrize("label_smoothing", SMOOTHING)
def test_cross_entropy_equal_logits_give_log_num_classes(label_smoothing):
    # softmax is uniform, so -sum_c g_c * log(1/C) = log(C) for any target distribution g.
    logits = torch.zeros(3, 5, dtype=torch.float64)
    loss = losses.cross_entropy(logits, torch.tensor([0, 3, 4]), label_smoothing=label_smoothing)
    assert loss.item() == pytest.approx(math.log(5), rel=1e-12)


@pytest.mark.parametrize("label_smoothing", SMOOTHING)
def test_cross_entropy_one_hot_probabilities_equal_indices(label_smoothing):
    logits, indices, _ = random_classification(3, torch.float64)
    one_hot = F.one_hot(indices, logits.shape[1]).to(torch.float64)
    assert_close(
        losses.cross_entropy(logits, one_hot, label_smoothing=label_smoothing, reduction="none"),
        losses.cross_entropy(logits, indices, label_smoothing=label_smoothing, reduction="none"),
    )


# --- cross_entropy_grad --------------------------------------------------------------------


def autograd_cross_entropy_grad(logits, target, label_smoothing):
    z = logits.clone().requires_grad_(True)
    F.cross_entropy(z, target, label_smoothing=label_smoothing).backward()
    return z.grad


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["indices", "probs"])
@pytest.mark.parametrize("label_smoothing", SMOOTHING)
def test_cross_entropy_grad_matches_autograd(seed, dtype, kind, label_smoothing):
    logits, indices, probs = random_classification(seed, dtype)
    target = indices if kind == "indices" else probs
    grad = losses.cross_entropy_grad(logits, target, label_smoothing=label_smoothing)
    assert_close(grad, autograd_cross_entropy_grad(logits, target, label_smoothing))
    # The target distribution sums to 1, so each row of the gradient sums to 0.
    assert_close(grad.sum(dim=-1), torch.zeros(logits.shape[0], dtype=dtype))


def test_cross_entropy_grad_single_example():
    logits = torch.tensor([0.5, -2.0, 1.0], dtype=torch.float64)
    target = torch.tensor(1)
    assert_close(
        losses.cross_entropy_grad(logits, target, label_smoothing=0.3),
        autograd_cross_entropy_grad(logits, target, 0.3),
    )


def test_cross_entropy_grad_unnormalized_probabilities_match_autograd():
    # torch accepts targets whose rows do not sum to 1; the gradient must stay exact.
    logits, _, _ = random_classification(4, torch.float64)
    target = torch.rand(
        logits.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    assert_close(
        losses.cross_entropy_grad(logits, target, label_smoothing=0.1),
        autograd_cross_entropy_grad(logits, target, 0.1),
    )


def test_cross_entropy_grad_closed_form():
    # Equal logits: p = 1/3 each; one-hot target at class 1; N = 2.
    logits = torch.zeros(2, 3, dtype=torch.float64)
    grad = losses.cross_entropy_grad(logits, torch.tensor([1, 1]))
    row = torch.tensor([1 / 3, 1 / 3 - 1, 1 / 3], dtype=torch.float64) / 2
    assert_close(grad, torch.stack([row, row]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1000.0, 1e4])
def test_cross_entropy_grad_extreme_logits(dtype, scale):
    logits = scale * torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]], dtype=dtype)
    target = torch.tensor([0, 2])
    grad = losses.cross_entropy_grad(logits, target)
    # Row 0: p equals the one-hot target, gradient 0. Row 1: p = e_1, g = e_2, so (p - g) / 2.
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.5, -0.5]], dtype=dtype)
    assert_close(grad, expected)
    assert_close(grad, autograd_cross_entropy_grad(logits, target, 0.0))


def test_cross_entropy_grad_matches_numerical_gradient():
    logits, indices, _ = random_classification(5, torch.float64)
    numerical = losses.numerical_gradient(
        lambda z: losses.cross_entropy(z, indices, label_smoothing=0.2), logits
    )
    torch.testing.assert_close(
        losses.cross_entropy_grad(logits, indices, label_smoothing=0.2),
        numerical,
        rtol=1e-6,
        atol=1e-8,
    )


# --- binary_cross_entropy_with_logits ------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits_matches_torch(seed, dtype, reduction):
    logits, other = random_pair(seed, dtype)
    target = torch.sigmoid(other)
    target.view(-1)[::3] = 1.0  # some hard labels too
    target.view(-1)[1::3] = 0.0
    assert_close(
        losses.binary_cross_entropy_with_logits(logits, target, reduction=reduction),
        F.binary_cross_entropy_with_logits(logits, target, reduction=reduction),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1000.0, 1e4])
def test_binary_cross_entropy_with_logits_extreme_logits(dtype, scale):
    logits = torch.tensor([scale, scale, -scale, -scale], dtype=dtype)
    target = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=dtype)
    # A confident right answer costs 0, a confident wrong one costs |z|.
    expected = torch.tensor([0.0, scale, scale, 0.0], dtype=dtype)
    loss = losses.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert_close(loss, expected)
    assert_close(loss, F.binary_cross_entropy_with_logits(logits, target, reduction="none"))


def test_binary_cross_entropy_with_logits_is_accurate_for_tiny_losses():
    # loss(z=30, y=1) = loss(z=-30, y=0) = log(1 + exp(-30)) ~ 9.36e-14, to full precision.
    logits = torch.tensor([30.0, -30.0], dtype=torch.float64)
    target = torch.tensor([1.0, 0.0], dtype=torch.float64)
    loss = losses.binary_cross_entropy_with_logits(logits, target, reduction="none")
    expected = math.log1p(math.exp(-30.0))
    assert loss.tolist() == pytest.approx([expected, expected], rel=1e-12, abs=0)


# --- mse_loss and huber_loss ---------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_torch(seed, dtype, reduction):
    pred, target = random_pair(seed, dtype)
    assert_close(
        losses.mse_loss(pred, target, reduction=reduction),
        F.mse_loss(pred, target, reduction=reduction),
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_huber_loss_matches_torch(seed, dtype, reduction):
    pred, target = random_pair(seed, dtype)
    for delta in [0.5, 1.0, 2.0]:
        assert_close(
            losses.huber_loss(pred, target, delta=delta, reduction=reduction),
            F.huber_loss(pred, target, delta=delta, reduction=reduction),
        )


def test_mse_and_huber_closed_form():
    pred = torch.tensor([0.5, 1.0, -3.0, 2.0], dtype=torch.float64)
    target = torch.zeros(4, dtype=torch.float64)
    mse = losses.mse_loss(pred, target, reduction="none")
    assert mse.tolist() == [0.25, 1.0, 9.0, 4.0]
    assert losses.mse_loss(pred, target).item() == pytest.approx(14.25 / 4)
    # delta = 1: 0.5 * 0.5^2, then 1 * (|d| - 0.5) from |d| = 1 on
    huber = losses.huber_loss(pred, target, reduction="none")
    assert huber.tolist() == [0.125, 0.5, 2.5, 1.5]
    # delta = 2: 0.5 * d^2 below 2, then 2 * (|d| - 1)
    huber = losses.huber_loss(pred, target, delta=2.0, reduction="none")
    assert huber.tolist() == [0.125, 0.5, 4.0, 2.0]


def test_huber_loss_large_errors_stay_finite():
    pred = torch.tensor([1e4, -1e30], dtype=torch.float32)
    target = torch.zeros(2, dtype=torch.float32)
    loss = losses.huber_loss(pred, target, reduction="none")
    assert_close(loss, torch.tensor([1e4 - 0.5, 1e30], dtype=torch.float32))


# --- accuracy ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_counts_correct_rows(seed):
    gen = torch.Generator().manual_seed(seed)
    n, c = 20, 5
    predicted = torch.randint(0, c, (n,), generator=gen)
    is_correct = torch.rand(n, generator=gen) < 0.6
    target = torch.where(is_correct, predicted, (predicted + 1) % c)
    logits = 3.0 * F.one_hot(predicted, c).float() + 0.1 * torch.rand(n, c, generator=gen)
    expected = is_correct.sum().item() / n
    assert losses.accuracy(logits, target) == pytest.approx(expected)
    # Probability targets: compared by their argmax.
    probs = torch.softmax(5.0 * F.one_hot(target, c).float(), dim=-1)
    assert losses.accuracy(logits, probs) == pytest.approx(expected)


def test_accuracy_returns_an_exact_python_float():
    logits = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    result = losses.accuracy(logits, torch.tensor([0, 1, 0]))
    assert type(result) is float
    assert result == 1 / 3


def test_accuracy_ties_go_to_the_lowest_index():
    logits = torch.tensor([[1.0, 1.0, 0.0]])
    assert losses.accuracy(logits, torch.tensor([0])) == 1.0
    assert losses.accuracy(logits, torch.tensor([1])) == 0.0


def test_accuracy_single_example():
    logits = torch.tensor([0.1, 2.0, -1.0])
    assert losses.accuracy(logits, torch.tensor(1)) == 1.0
    assert losses.accuracy(logits, torch.tensor(0)) == 0.0
    assert losses.accuracy(logits, torch.tensor([0.2, 0.7, 0.1])) == 1.0


# --- numerical_gradient --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_numerical_gradient_of_sum_of_cubes(dtype):
    x = torch.linspace(-2.0, 2.0, 12, dtype=dtype).reshape(3, 4)
    grad = losses.numerical_gradient(lambda t: (t**3).sum(), x)
    assert grad.dtype == torch.float64
    torch.testing.assert_close(grad, 3 * x.double() ** 2, rtol=1e-6, atol=1e-6)


def autograd_gradient(f, x):
    x = x.detach().double().requires_grad_(True)
    f(x).backward()
    return x.grad


@pytest.mark.parametrize(
    "f",
    [
        pytest.param(lambda t: (torch.sin(t) * t).sum(), id="sin"),
        pytest.param(lambda t: torch.logsumexp(t, dim=-1).sum(), id="logsumexp"),
        pytest.param(lambda t: torch.tanh(t @ t.T).mean(), id="tanh-matmul"),
        pytest.param(lambda t: F.cross_entropy(t, torch.tensor([0, 2, 1])), id="cross-entropy"),
    ],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_numerical_gradient_matches_autograd(f, seed):
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    torch.testing.assert_close(
        losses.numerical_gradient(f, x), autograd_gradient(f, x), rtol=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_numerical_gradient_leaves_x_unchanged(dtype):
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0), dtype=dtype)
    before = x.clone()
    caller_x_unchanged = []

    def f(t):
        caller_x_unchanged.append(torch.equal(x, before))  # also while f is being evaluated
        return (t**2).sum()

    losses.numerical_gradient(f, x)
    assert caller_x_unchanged and all(caller_x_unchanged)
    assert torch.equal(x, before)


def test_numerical_gradient_scalar_float_output_and_zero_dim_input():
    grad = losses.numerical_gradient(lambda t: float(t) ** 2, torch.tensor(3.0))
    assert grad.shape == ()
    assert grad.item() == pytest.approx(6.0, rel=1e-8)


def test_numerical_gradient_non_contiguous_input():
    x = torch.arange(6.0).reshape(2, 3).T  # a transposed view
    grad = losses.numerical_gradient(lambda t: (t**3).sum(), x)
    torch.testing.assert_close(grad, 3 * x.double() ** 2, rtol=1e-6, atol=1e-6)


# --- bad input -----------------------------------------------------------------------------

Z = torch.zeros(2, 3)
Y = torch.tensor([0, 2])
NAN = torch.tensor([[0.0, float("nan"), 1.0], [0.0, 0.0, 0.0]])
INF = torch.tensor([[0.0, float("inf"), 1.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        # softmax / log_softmax
        (lambda: losses.softmax([1.0, 2.0]), TypeError, "z must be a torch.Tensor"),
        (lambda: losses.softmax(torch.tensor([1, 2])), TypeError, "z must be a floating"),
        (lambda: losses.log_softmax(torch.tensor(1.0)), ValueError, "z must have at least 1"),
        (lambda: losses.softmax(Z, dim=2), ValueError, "dim must be in"),
        (lambda: losses.log_softmax(Z, dim=1.0), TypeError, "dim must be an int"),
        (lambda: losses.softmax(NAN), ValueError, "z must be finite"),
        (lambda: losses.log_softmax(torch.zeros(2, 0)), ValueError, "z must not be empty"),
        # cross_entropy: logits
        (lambda: losses.cross_entropy(Z.tolist(), Y), TypeError, "logits must be a torch.Tensor"),
        (lambda: losses.cross_entropy(Z.long(), Y), TypeError, "logits must be a floating"),
        (
            lambda: losses.cross_entropy(torch.zeros(2, 3, 4), Y),
            ValueError,
            r"logits must have shape \(N, C\)",
        ),
        (
            lambda: losses.cross_entropy(torch.tensor(1.0), Y),
            ValueError,
            r"logits must have shape \(N, C\)",
        ),
        (
            lambda: losses.cross_entropy(torch.zeros(0, 3), Y[:0]),
            ValueError,
            "logits must not be empty",
        ),
        (lambda: losses.cross_entropy(NAN, Y), ValueError, "logits must be finite"),
        (lambda: losses.cross_entropy(INF, Y), ValueError, "logits must be finite"),
        # cross_entropy: target
        (lambda: losses.cross_entropy(Z, [0, 2]), TypeError, "target must be a torch.Tensor"),
        (lambda: losses.cross_entropy(Z, Y.int()), TypeError, "target must be int64"),
        (lambda: losses.cross_entropy(Z, Y.bool()), TypeError, "target must be int64"),
        (
            lambda: losses.cross_entropy(Z, Y.float()),
            ValueError,
            "target of class probabilities must have the shape",
        ),
        (
            lambda: losses.cross_entropy(Z, torch.zeros(2, 4)),
            ValueError,
            "target of class probabilities must have the shape",
        ),
        (
            lambda: losses.cross_entropy(Z, torch.tensor([0, 1, 2])),
            ValueError,
            "target of class indices must have shape",
        ),
        (
            lambda: losses.cross_entropy(Z, torch.tensor([0, 3])),
            ValueError,
            r"target class indices must be in \[0, 3\)",
        ),
        (
            lambda: losses.cross_entropy(Z, torch.tensor([-1, 0])),
            ValueError,
            r"target class indices must be in \[0, 3\)",
        ),
        (lambda: losses.cross_entropy(Z, NAN), ValueError, "target must be finite"),
        # cross_entropy: options
        (
            lambda: losses.cross_entropy(Z, Y, label_smoothing=-0.1),
            ValueError,
            "label_smoothing must be >= 0",
        ),
        (
            lambda: losses.cross_entropy(Z, Y, label_smoothing=1.5),
            ValueError,
            "label_smoothing must be <= 1",
        ),
        (
            lambda: losses.cross_entropy(Z, Y, label_smoothing=float("nan")),
            ValueError,
            "label_smoothing must be finite",
        ),
        (
            lambda: losses.cross_entropy(Z, Y, label_smoothing="0.1"),
            TypeError,
            "label_smoothing must be a number",
        ),
        (lambda: losses.cross_entropy(Z, Y, reduction="avg"), ValueError, "reduction must be"),
        # cross_entropy_grad
        (lambda: losses.cross_entropy_grad(Z.long(), Y), TypeError, "logits must be a floating"),
        (
            lambda: losses.cross_entropy_grad(Z, torch.tensor([0, 5])),
            ValueError,
            "target class indices must be in",
        ),
        (
            lambda: losses.cross_entropy_grad(Z, Y, label_smoothing=2.0),
            ValueError,
            "label_smoothing must be <= 1",
        ),
        # binary_cross_entropy_with_logits
        (
            lambda: losses.binary_cross_entropy_with_logits(Z, torch.zeros(3)),
            ValueError,
            "logits and target must have the same shape",
        ),
        (
            lambda: losses.binary_cross_entropy_with_logits(Z, Z.long()),
            TypeError,
            "target must be a floating",
        ),
        (
            lambda: losses.binary_cross_entropy_with_logits(INF, Z),
            ValueError,
            "logits must be finite",
        ),
        (
            lambda: losses.binary_cross_entropy_with_logits(Z, Z, reduction=None),
            ValueError,
            "reduction must be",
        ),
        # mse_loss / huber_loss
        (
            lambda: losses.mse_loss(Z, torch.zeros(3, 2)),
            ValueError,
            "pred and target must have the same shape",
        ),
        (lambda: losses.mse_loss(Z.long(), Z), TypeError, "pred must be a floating"),
        (lambda: losses.mse_loss(Z, NAN), ValueError, "target must be finite"),
        (lambda: losses.mse_loss(Z, Z, reduction="mean "), ValueError, "reduction must be"),
        (lambda: losses.huber_loss(Z, Z, delta=0.0), ValueError, "delta must be > 0"),
        (lambda: losses.huber_loss(Z, Z, delta=-1.0), ValueError, "delta must be > 0"),
        (lambda: losses.huber_loss(Z, Z, delta="1"), TypeError, "delta must be a number"),
        (lambda: losses.huber_loss(Z, Z, "mean"), TypeError, "delta must be a number"),
        # accuracy
        (lambda: losses.accuracy(Z, Y.int()), TypeError, "target must be int64"),
        (
            lambda: losses.accuracy(Z, torch.tensor([0, 7])),
            ValueError,
            "target class indices must be in",
        ),
        # numerical_gradient
        (lambda: losses.numerical_gradient("f", Z), TypeError, "f must be callable"),
        (
            lambda: losses.numerical_gradient(torch.sum, [1.0]),
            TypeError,
            "x must be a torch.Tensor",
        ),
        (lambda: losses.numerical_gradient(torch.sum, Y), TypeError, "x must be a floating"),
        (lambda: losses.numerical_gradient(torch.sum, Z, eps=0.0), ValueError, "eps must be > 0"),
        (
            lambda: losses.numerical_gradient(lambda t: t * 2, Z),
            ValueError,
            "f must return a scalar",
        ),
        (
            lambda: losses.numerical_gradient(lambda t: "1", Z),
            TypeError,
            "f must return a one-element",
        ),
        (
            lambda: losses.numerical_gradient(lambda t: t.sum() / 0, Z),
            ValueError,
            "f must return a finite",
        ),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_bce_autograd_gradient_is_sigmoid_minus_target_even_at_zero():
    z = torch.tensor([0.0, 0.0, -3.0, 2.0, 40.0, -40.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 0.3, 1.0, 0.0, 1.0], dtype=torch.float64)
    losses.binary_cross_entropy_with_logits(z, y, reduction="sum").backward()
    assert torch.allclose(z.grad, torch.sigmoid(z.detach()) - y, rtol=1e-12, atol=1e-15)


# --- softmax_squared_error_grad and best_constant_cross_entropy ---------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("soft", [False, True])
def test_softmax_squared_error_grad_matches_autograd(seed, soft):
    gen = torch.Generator().manual_seed(seed)
    n, c = 5, 7
    z = 3 * torch.randn(n, c, generator=gen, dtype=torch.float64)
    if soft:
        target = torch.softmax(torch.randn(n, c, generator=gen, dtype=torch.float64), dim=1)
        g = target
    else:
        target = torch.randint(0, c, (n,), generator=gen)
        g = F.one_hot(target, c).double()
    z_leaf = z.clone().requires_grad_()
    ((torch.softmax(z_leaf, dim=1) - g) ** 2).sum(dim=1).mean().backward()
    torch.testing.assert_close(losses.softmax_squared_error_grad(z, target), z_leaf.grad)


def test_softmax_squared_error_grad_single_example_and_extreme_logits():
    z = torch.tensor([1000.0, -1000.0, 0.0], dtype=torch.float64)
    grad = losses.softmax_squared_error_grad(z, torch.tensor(1))
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad, torch.zeros(3, dtype=torch.float64))  # saturated: no pull
    z = torch.tensor([0.3, -0.2], dtype=torch.float32, requires_grad=True)
    ((torch.softmax(z, dim=0) - torch.tensor([0.0, 1.0])) ** 2).sum().backward()
    got = losses.softmax_squared_error_grad(z.detach(), torch.tensor(1))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, z.grad)


def _entropy_of_counts(counts):
    f = [k / sum(counts) for k in counts if k > 0]
    return -sum(p * math.log(p) for p in f)


@pytest.mark.parametrize(
    "labels, num_classes",
    [([0, 1, 2, 3], 4), ([0, 0, 0, 1], 2), ([2, 2, 2], 5), ([1, 4, 4, 1, 4], 7), ([0], 1)],
)
def test_best_constant_cross_entropy_is_the_entropy_of_the_label_frequencies(labels, num_classes):
    target = torch.tensor(labels)
    counts = torch.bincount(target, minlength=num_classes).tolist()
    got = losses.best_constant_cross_entropy(target, num_classes)
    assert got == pytest.approx(_entropy_of_counts(counts), abs=1e-12)


def test_best_constant_cross_entropy_is_what_training_constant_logits_reaches():
    gen = torch.Generator().manual_seed(0)
    target = torch.multinomial(torch.tensor([0.6, 0.25, 0.1, 0.05]), 200, True, generator=gen)
    b = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([b], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(b.expand(len(target), 4), target)
        loss.backward()
        return loss

    opt.step(closure)
    assert closure().item() == pytest.approx(
        losses.best_constant_cross_entropy(target, 4), abs=1e-9
    )


def test_best_constant_cross_entropy_refuses_bad_targets():
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        losses.best_constant_cross_entropy(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="1-D int64"):
        losses.best_constant_cross_entropy(torch.tensor([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="1-D int64"):
        losses.best_constant_cross_entropy(torch.tensor([], dtype=torch.int64), 3)
    with pytest.raises(TypeError, match="num_classes"):
        losses.best_constant_cross_entropy(torch.tensor([0]), 2.0)
