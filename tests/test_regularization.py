"""course_utils.regularization: the noise tricks, statistically and on their edges."""

import math

import pytest
import torch
from scipy import stats

from course_utils import regularization as reg


@pytest.mark.parametrize(
    ("step", "eta", "gamma"), [(0, 0.3, 0.55), (99, 1.0, 0.55), (10, 0.01, 1.0)]
)
def test_gradient_noise_has_the_annealed_variance(step, eta, gamma):
    p = torch.zeros(200, 100, dtype=torch.float64, requires_grad=True)
    p.grad = torch.full_like(p, 2.0)
    std = reg.add_gradient_noise_(
        [p], step, eta, gamma, generator=torch.Generator().manual_seed(step)
    )
    assert std == pytest.approx(math.sqrt(eta / (1 + step) ** gamma))
    noise = (p.grad - 2.0).flatten()
    n = noise.numel()
    # chi-square test of the variance and a z-test of the mean, each at 1e-7
    chi2 = (noise**2).sum().item() / std**2
    assert stats.chi2.ppf(5e-8, n) < chi2 < stats.chi2.isf(5e-8, n)
    assert abs(noise.mean().item()) < 5.33 * std / math.sqrt(n)


def test_gradient_noise_is_reproducible_and_skips_missing_gradients():
    a, b = torch.zeros(5, requires_grad=True), torch.zeros(3, requires_grad=True)
    a.grad = torch.zeros(5)
    reg.add_gradient_noise_([a, b], 0, 1.0, generator=torch.Generator().manual_seed(1))
    first = a.grad.clone()
    a.grad.zero_()
    reg.add_gradient_noise_([a, b], 0, 1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.grad, first) and b.grad is None and first.abs().sum() > 0


@pytest.mark.parametrize(("alpha", "num_classes"), [(0.2, 10), (0.5, 2), (1.0, 4)])
def test_disturb_labels_changes_a_label_with_probability_alpha_times_c_minus_1_over_c(
    alpha, num_classes
):
    y = torch.arange(40_000) % num_classes
    out = reg.disturb_labels(y, num_classes, alpha, generator=torch.Generator().manual_seed(0))
    changed = int((out != y).sum())
    p = alpha * (num_classes - 1) / num_classes
    assert (
        stats.binom.cdf(changed, y.numel(), p) > 5e-8
        and stats.binom.sf(changed - 1, y.numel(), p) > 5e-8
    )
    # the new labels are uniform over the other classes
    counts = torch.bincount(out[out != y], minlength=num_classes)
    if num_classes > 2:
        assert stats.chisquare(counts.numpy()).pvalue > 1e-7
    assert torch.equal(y, torch.arange(40_000) % num_classes)  # input unchanged


def test_disturb_labels_edges_and_bad_input():
    y = torch.tensor([0, 1, 2])
    assert torch.equal(reg.disturb_labels(y, 3, 0.0), y)
    with pytest.raises(ValueError, match="alpha"):
        reg.disturb_labels(y, 3, 1.5)
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)"):
        reg.disturb_labels(y, 2, 0.1)
    with pytest.raises(TypeError, match="int64"):
        reg.disturb_labels(y.float(), 3, 0.1)
    with pytest.raises(ValueError, match="eta"):
        reg.add_gradient_noise_([], 0, -1.0)
    with pytest.raises(TypeError, match="generator"):
        reg.disturb_labels(y, 3, 0.1, generator=0)
