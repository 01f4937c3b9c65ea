r"""Regularization for lecture 05 (and the noise tricks lectures 07 and 08 reuse).

* ``add_gradient_noise_``: annealed Gaussian gradient noise (Neelakantan et al., 2015).
* ``disturb_labels``: DisturbLabel label noise (Xie et al., 2016).
"""

import torch

from course_utils import _validate

__all__ = ["add_gradient_noise_", "disturb_labels"]


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")


def add_gradient_noise_(params, step: int, eta: float, gamma: float = 0.55, *, generator=None):
    r"""Add annealed Gaussian noise to every gradient, in place (Neelakantan et al., 2015).

        g_t <- g_t + N(0, sigma_t^2 I),    sigma_t^2 = eta / (1 + t)^gamma

    t = ``step`` counts from 0, so the first step has variance eta; the noise shrinks
    slowly as training goes on (the paper uses eta in {0.01, 0.3, 1.0} and gamma = 0.55).
    The variance is given in closed form: sigma_t^2 is a function of t alone, not of the
    previous step's variance. Parameters without a gradient are skipped.
    Returns sigma_t, the standard deviation used.
    """
    _validate.integer(step, "step", low=0)
    eta = _validate.number(eta, "eta", low=0.0)
    gamma = _validate.number(gamma, "gamma", low=0.0)
    _check_generator(generator)
    params = [params] if isinstance(params, torch.Tensor) else list(params)
    std = (eta / (1 + step) ** gamma) ** 0.5
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                noise = torch.randn(p.grad.shape, generator=generator, dtype=p.grad.dtype)
                p.grad.add_(noise.to(p.grad.device), alpha=std)
    return std


def disturb_labels(y: torch.Tensor, num_classes: int, alpha: float, *, generator=None):
    r"""DisturbLabel (Xie et al., 2016): with probability alpha, replace a label by one drawn
    uniformly from all ``num_classes`` classes.

        y'_i = u_i ~ Uniform{0, ..., C - 1}   with probability alpha
             = y_i                             otherwise

    The drawn label can be the true one, so a label changes with probability
    alpha (C - 1) / C and stays with probability 1 - alpha + alpha / C.
    y: int64 labels of shape (N,). Returns a new tensor; y is not changed.
    """
    _validate.tensor(y, "y")
    if y.dtype != torch.int64:
        raise TypeError(f"y must hold int64 class labels, got dtype {y.dtype}")
    _validate.integer(num_classes, "num_classes", low=1)
    alpha = _validate.number(alpha, "alpha", low=0.0, high=1.0)
    _check_generator(generator)
    if y.numel() and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"y must hold labels in [0, {num_classes}), got {y.min()}..{y.max()}")
    disturb = torch.rand(y.shape, generator=generator) < alpha
    random_labels = torch.randint(0, num_classes, y.shape, generator=generator)
    return torch.where(disturb.to(y.device), random_labels.to(y.device), y)
