"""Tests for course_utils.label_smoothing, against torch (F.cross_entropy with
label_smoothing, autograd), course_utils.losses, closed forms and an independent
bin-by-bin loop for the calibration error."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import label_smoothing as ls
from course_utils import losses

SEEDS = [0, 1, 2, 3]
ALPHAS = [0.0, 0.05, 0.1, 0.5, 1.0]
REDUCTIONS = ["none", "mean", "sum"]


def random_problem(seed, dtype=torch.float64, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 9, (), generator=gen))
    k = int(torch.randint(2, 12, (), generator=gen))
    logits = scale * torch.randn(n, k, generator=gen, dtype=dtype)
    target = torch.randint(0, k, (n,), generator=gen)
    return logits, target


def assert_close(actual, expected):
    if expected.dtype == torch.float64:
        torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-12)
    else:
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


# --- smooth_labels -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_smooth_labels_is_the_mixture_with_the_uniform_distribution(seed, alpha):
    _, target = random_problem(seed)
    k = int(target.max()) + 2
    g = ls.smooth_labels(target, k, alpha)
    assert g.shape == (len(target), k) and g.dtype == torch.float32
    for i, y in enumerate(target.tolist()):  # entry by entry, from the definition
        for c in range(k):
            expected = (1 - alpha) * (c == y) + alpha / k
            assert g[i, c].item() == pytest.approx(expected, rel=1e-6, abs=1e-7)
    torch.testing.assert_close(g.sum(dim=1), torch.ones(len(target)))


def test_smooth_labels_extremes_dtype_and_shape():
    target = torch.tensor([[0, 2], [1, 1]])
    g = ls.smooth_labels(target, 3, 0.3, dtype=torch.float64)
    assert g.shape == (2, 2, 3) and g.dtype == torch.float64
    assert g[0, 1].tolist() == pytest.approx([0.1, 0.1, 0.8])
    onehot = F.one_hot(target, 3).double()
    assert torch.equal(ls.smooth_labels(target, 3, 0.0, dtype=torch.float64), onehot)
    assert torch.equal(ls.smooth_labels(target, 3, 1.0), torch.full((2, 2, 3), 1 / 3))
    assert ls.smooth_labels(torch.tensor(4), 5, 0.5).tolist() == pytest.approx([0.1] * 4 + [0.6])


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((torch.tensor([0, 3]), 3, 0.1), ValueError, r"target class indices must be in \[0, 3\)"),
        ((torch.tensor([-1]), 3, 0.1), ValueError, "target"),
        ((torch.tensor([0.0, 1.0]), 3, 0.1), TypeError, "int64"),
        (([0, 1], 3, 0.1), TypeError, "target must be a torch.Tensor"),
        ((torch.tensor([0]), 3, 1.5), ValueError, "alpha must be <= 1"),
        ((torch.tensor([0]), 3, -0.1), ValueError, "alpha must be >= 0"),
        ((torch.tensor([0]), 0, 0.1), ValueError, "num_classes must be >= 1"),
        ((torch.tensor([0]), 3.0, 0.1), TypeError, "num_classes must be an int"),
    ],
)
def test_smooth_labels_rejects_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        ls.smooth_labels(*args)


def test_smooth_labels_rejects_an_integer_dtype():
    with pytest.raises(TypeError, match="dtype"):
        ls.smooth_labels(torch.tensor([0]), 3, 0.1, dtype=torch.int64)


# --- the smoothed cross-entropy and its gradient -------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_smoothed_cross_entropy_equals_torch_label_smoothing(seed, alpha, reduction, dtype):
    logits, target = random_problem(seed, dtype)
    ours = ls.smoothed_cross_entropy(logits, target, alpha, reduction=reduction)
    expected = F.cross_entropy(logits, target, label_smoothing=alpha, reduction=reduction)
    assert_close(ours, expected)
    # cross-entropy against the smoothed targets, by torch and by course_utils.losses
    g = ls.smooth_labels(target, logits.shape[1], alpha, dtype=dtype)
    assert_close(F.cross_entropy(logits, g, reduction=reduction), expected)
    assert_close(losses.cross_entropy(logits, g, reduction=reduction), expected)
    via_losses = losses.cross_entropy(logits, target, label_smoothing=alpha, reduction=reduction)
    assert_close(via_losses, expected)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 1.0])
def test_smoothed_cross_entropy_single_example_and_extreme_logits(alpha):
    z = torch.tensor([1000.0, -1000.0, 0.0], dtype=torch.float64)
    y = torch.tensor(1)
    expected = F.cross_entropy(z, y, label_smoothing=alpha)
    assert_close(ls.smoothed_cross_entropy(z, y, alpha), expected)
    assert torch.isfinite(ls.smoothed_cross_entropy(z, y, alpha))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_smoothed_cross_entropy_grad_equals_autograd(seed, alpha):
    logits, target = random_problem(seed)
    z = logits.clone().requires_grad_(True)
    F.cross_entropy(z, target, label_smoothing=alpha).backward()
    assert_close(ls.smoothed_cross_entropy_grad(logits, target, alpha), z.grad)
    assert_close(
        ls.smoothed_cross_entropy_grad(logits, target, alpha),
        losses.cross_entropy_grad(logits, target, label_smoothing=alpha),
    )


def test_smoothed_cross_entropy_grad_of_one_example_matches_numerical_gradient():
    z = torch.tensor([0.3, -1.2, 2.0, 0.0], dtype=torch.float64)
    y = torch.tensor(2)
    numerical = losses.numerical_gradient(lambda v: ls.smoothed_cross_entropy(v, y, 0.2), z)
    assert_close(ls.smoothed_cross_entropy_grad(z, y, 0.2), numerical)


@pytest.mark.parametrize(
    ("logits", "target", "message"),
    [
        (torch.zeros(2, 3), torch.tensor([0]), r"target must have shape \(2,\)"),
        (torch.zeros(2, 3, 4), torch.tensor([0, 1]), "logits must have shape"),
        (torch.tensor([[0.0, float("nan")]]), torch.tensor([0]), "finite"),
        (torch.zeros(2, 3, dtype=torch.int64), torch.tensor([0, 1]), "floating-point"),
        (torch.zeros(2, 3), torch.tensor([0, 3]), r"\[0, 3\)"),
    ],
)
@pytest.mark.parametrize(
    "fn", [ls.smoothed_cross_entropy, ls.smoothed_cross_entropy_grad], ids=["loss", "grad"]
)
def test_smoothed_cross_entropy_rejects_bad_input(fn, logits, target, message):
    with pytest.raises((TypeError, ValueError), match=message):
        fn(logits, target, 0.1)


def test_smoothed_cross_entropy_rejects_bad_alpha_and_reduction():
    logits, target = random_problem(0)
    with pytest.raises(ValueError, match="alpha"):
        ls.smoothed_cross_entropy(logits, target, 1.1)
    with pytest.raises(ValueError, match="reduction"):
        ls.smoothed_cross_entropy(logits, target, 0.1, reduction="avg")


# --- the logit gap -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_logit_gap_is_the_true_logit_minus_the_mean_of_the_others(seed):
    logits, target = random_problem(seed)
    gaps = ls.logit_gap(logits, target)
    for i, y in enumerate(target.tolist()):
        others = torch.cat([logits[i, :y], logits[i, y + 1 :]])
        assert gaps[i].item() == pytest.approx((logits[i, y] - others.mean()).item(), rel=1e-12)
    assert ls.logit_gap(torch.tensor([3.0, 1.0, -1.0]), torch.tensor(0)).item() == 3.0


def test_logit_gap_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        ls.logit_gap(torch.zeros(3, 1), torch.zeros(3, dtype=torch.int64))


@pytest.mark.parametrize("num_classes", [2, 3, 10, 1000])
@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.1, 0.5, 1.0])
def test_smoothed_loss_at_gap_is_the_cross_entropy_of_logits_d_0_0(num_classes, alpha):
    gaps = torch.linspace(-30, 60, 91, dtype=torch.float64)
    logits = torch.zeros(len(gaps), num_classes, dtype=torch.float64)
    logits[:, 0] = gaps
    target = torch.zeros(len(gaps), dtype=torch.int64)
    expected = F.cross_entropy(logits, target, label_smoothing=alpha, reduction="none")
    assert_close(ls.smoothed_loss_at_gap(gaps, num_classes, alpha), expected)


def test_smoothed_loss_at_gap_does_not_overflow():
    gaps = torch.tensor([-1e4, 0.0, 1e4], dtype=torch.float64)
    values = ls.smoothed_loss_at_gap(gaps, 10, 0.1)
    assert torch.isfinite(values).all()
    # far out the loss is linear: (1 - g_y) d for d -> inf, log(K - 1) - g_y d for d -> -inf
    g_y = 1 - 0.1 + 0.01
    assert values[2].item() == pytest.approx((1 - g_y) * 1e4, rel=1e-12)
    assert values[0].item() == pytest.approx(math.log(9) + g_y * 1e4, rel=1e-12)


# --- the optimal gap and the loss floor ----------------------------------------------------


@pytest.mark.parametrize("num_classes", [2, 3, 10, 100])
@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.3, 0.9, 1.0])
def test_optimal_gap_minimises_the_loss_and_the_floor_is_its_value(num_classes, alpha):
    d_star = ls.optimal_logit_gap(num_classes, alpha)
    # torch's own loss on logits (d, 0, ..., 0), minimised over d by autograd + LBFGS
    d = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [d], max_iter=200, tolerance_grad=1e-14, tolerance_change=0, line_search_fn="strong_wolfe"
    )
    target = torch.tensor(0)

    def closure():
        opt.zero_grad()
        z = torch.cat([d, torch.zeros(num_classes - 1, dtype=torch.float64)])
        loss = F.cross_entropy(z, target, label_smoothing=alpha)
        loss.backward()
        return loss

    opt.step(closure)
    assert d.item() == pytest.approx(d_star, abs=1e-6)
    floor = ls.smoothed_loss_floor(num_classes, alpha)
    assert closure().item() == pytest.approx(floor, rel=1e-10, abs=1e-12)
    # at the minimum softmax(z) equals the smoothed target
    z = torch.tensor([d_star] + [0.0] * (num_classes - 1), dtype=torch.float64)
    g = ls.smooth_labels(target, num_classes, alpha, dtype=torch.float64)
    assert_close(torch.softmax(z, dim=0), g)


def test_optimal_gap_and_floor_closed_forms_at_the_ends():
    assert ls.optimal_logit_gap(10, 0.0) == math.inf
    assert ls.optimal_logit_gap(10, 1.0) == 0.0
    assert ls.optimal_logit_gap(10, 0.1) == pytest.approx(math.log(0.91 / 0.01))
    assert ls.smoothed_loss_floor(10, 0.0) == 0.0
    assert math.copysign(1, ls.smoothed_loss_floor(10, 0.0)) == 1  # +0.0, not -0.0
    assert ls.smoothed_loss_floor(10, 1.0) == pytest.approx(math.log(10))
    # the entropy of g, by torch
    g = torch.tensor([0.91] + [0.01] * 9, dtype=torch.float64)
    entropy = torch.distributions.Categorical(probs=g).entropy().item()
    assert ls.smoothed_loss_floor(10, 0.1) == pytest.approx(entropy, rel=1e-12)


@pytest.mark.parametrize("fn", [ls.optimal_logit_gap, ls.smoothed_loss_floor])
def test_gap_and_floor_reject_bad_input(fn):
    with pytest.raises(ValueError, match="alpha"):
        fn(10, 1.5)
    with pytest.raises(TypeError, match="num_classes"):
        fn(10.0, 0.1)
    with pytest.raises(ValueError, match="num_classes"):
        fn(0, 0.1)


# --- calibration -----------------------------------------------------------------------------


def ece_by_loop(probs, target, n_bins):
    """ECE from its definition, one example and one bin at a time, in Python floats."""
    n = len(target)
    members = [[] for _ in range(n_bins)]
    for p, y in zip(probs.tolist(), target.tolist(), strict=True):
        confidence = max(p)
        prediction = p.index(confidence)  # the first maximum, like torch.argmax
        m = next(m for m in range(n_bins) if confidence <= (m + 1) / n_bins)  # ((m)/M, (m+1)/M]
        members[m].append((confidence, prediction == y))
    total = 0.0
    for bin_ in members:
        if bin_:
            confidence = sum(c for c, _ in bin_) / len(bin_)
            accuracy = sum(right for _, right in bin_) / len(bin_)
            total += len(bin_) / n * abs(accuracy - confidence)
    return total


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_expected_calibration_error_matches_the_definition(seed, n_bins):
    gen = torch.Generator().manual_seed(seed)
    n, k = 300, int(torch.randint(2, 11, (), generator=gen))
    probs = torch.softmax(3 * torch.randn(n, k, generator=gen, dtype=torch.float64), dim=1)
    target = torch.randint(0, k, (n,), generator=gen)
    ece = ls.expected_calibration_error(probs, target, n_bins)
    assert isinstance(ece, float)
    assert ece == pytest.approx(ece_by_loop(probs, target, n_bins), rel=1e-12, abs=1e-15)


def test_calibration_bins_by_hand():
    # confidences 0.5 (right), 0.75 (right), 0.25 (four-way tie: predicts 0, wrong), 0.55
    # (wrong), 1.0 (right), with 4 bins (0, .25], (.25, .5], (.5, .75], (.75, 1]
    probs = torch.tensor(
        [
            [0.5, 0.25, 0.125, 0.125],
            [0.125, 0.75, 0.0625, 0.0625],
            [0.25, 0.25, 0.25, 0.25],
            [0.1, 0.3, 0.55, 0.05],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )
    target = torch.tensor([0, 1, 3, 3, 2])
    bins = ls.calibration_bins(probs, target, n_bins=4)
    assert bins.edges.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert bins.count.tolist() == [1, 1, 2, 1]
    assert bins.confidence.tolist() == pytest.approx([0.25, 0.5, (0.75 + 0.55) / 2, 1.0])
    assert bins.accuracy.tolist() == pytest.approx([0.0, 1.0, 0.5, 1.0])
    expected = (1 * 0.25 + 1 * 0.5 + 2 * abs(0.5 - 0.65) + 1 * 0.0) / 5
    assert ls.expected_calibration_error(probs, target, n_bins=4) == pytest.approx(expected)


def test_empty_bins_are_nan_and_add_nothing():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2]], dtype=torch.float64)
    bins = ls.calibration_bins(probs, torch.tensor([0, 1]), n_bins=10)
    assert bins.count.sum() == 2 and bins.count[7] == 1 and bins.count[8] == 1
    assert torch.isnan(bins.confidence[:7]).all() and torch.isnan(bins.accuracy[9])
    assert ls.expected_calibration_error(probs, torch.tensor([0, 1]), 10) == pytest.approx(
        (0.1 + 0.8) / 2
    )


def test_a_calibrated_predictor_has_a_small_ece_and_an_overconfident_one_does_not():
    # Labels drawn from the predicted distribution itself: calibrated by construction, so
    # ECE is only sampling noise, of order sqrt(n_bins / n).
    gen = torch.Generator().manual_seed(0)
    n, k = 20_000, 5
    probs = torch.softmax(2 * torch.randn(n, k, generator=gen, dtype=torch.float64), dim=1)
    target = torch.multinomial(probs, 1, generator=gen).squeeze(1)
    assert ls.expected_calibration_error(probs, target) < 0.02
    sharpened = torch.softmax(3 * torch.log(probs), dim=1)  # more confident, same labels
    assert ls.expected_calibration_error(sharpened, target) > 0.1


@pytest.mark.parametrize(
    ("probs", "target", "message"),
    [
        (torch.tensor([[2.0, -1.0]]), torch.tensor([0]), "probs must be >= 0"),
        (torch.tensor([[0.5, 0.6]]), torch.tensor([0]), "sum to 1"),
        (torch.tensor([0.5, 0.5]), torch.tensor(0), r"probs must have shape \(N, K\)"),
        (torch.tensor([[0.5, 0.5]]), torch.tensor([2]), r"\[0, 2\)"),
        (torch.tensor([[0.5, 0.5]]), torch.tensor([0, 1]), r"target must have shape \(1,\)"),
        (torch.tensor([[0.5, float("nan")]]), torch.tensor([0]), "finite"),
        (torch.tensor([[1, 0]]), torch.tensor([0]), "floating-point"),
    ],
)
def test_calibration_rejects_bad_input(probs, target, message):
    with pytest.raises((TypeError, ValueError), match=message):
        ls.expected_calibration_error(probs, target)


def test_calibration_rejects_bad_n_bins():
    probs, target = torch.tensor([[0.5, 0.5]]), torch.tensor([0])
    with pytest.raises(ValueError, match="n_bins"):
        ls.calibration_bins(probs, target, n_bins=0)
    with pytest.raises(TypeError, match="n_bins"):
        ls.calibration_bins(probs, target, n_bins=2.5)


def test_float32_probabilities_are_binned_in_float64():
    probs = torch.softmax(torch.randn(50, 3, generator=torch.Generator().manual_seed(1)), dim=1)
    target = torch.zeros(50, dtype=torch.int64)
    bins = ls.calibration_bins(probs, target)
    assert bins.confidence.dtype == torch.float64
    assert ls.expected_calibration_error(probs, target) == pytest.approx(
        ece_by_loop(probs.double(), target, 15), rel=1e-12
    )
    np.testing.assert_array_equal(bins.count.numpy().sum(), 50)
