r"""Small, seeded data sets and 2-D test functions used across the course.

Everything here is generated on the spot or ships with a package (scikit-learn's
8x8 digits): nothing is downloaded. Every random draw comes from a
``torch.Generator`` seeded with the ``seed`` argument, so the same seed gives
the same tensors on every machine, whatever else the notebook drew before.

* ``linear_regression``: X ~ N(mean, Sigma), Y = <w0, X> + noise.
* ``gaussian_mixture``: two Gaussian classes in 2-D, with their Bayes classifier
  (``gaussian_mixture_log_odds``, ``gaussian_mixture_bayes``).
* ``quadratic``, ``rosenbrock``, ``saddle``: differentiable functions of a point
  xy = (x, y), for drawing optimizer trajectories, each next to its gradient written out
  (``quadratic_grad``, ...), which costs a few tensor operations instead of a backward pass.
* ``digits``: scikit-learn's 8x8 digits, split and standardized.
* ``cliff`` (with ``cliff_grad``): a bowl below a steep cliff, for gradient clipping.
"""

import math
from typing import NamedTuple

import torch

from course_utils import _validate

__all__ = [
    "CLIFF_ANGLE",
    "MIXTURE_COVS",
    "MIXTURE_MEANS",
    "Digits",
    "Split",
    "cliff",
    "cliff_grad",
    "digits",
    "gaussian_mixture",
    "gaussian_mixture_bayes",
    "gaussian_mixture_log_odds",
    "linear_regression",
    "quadratic",
    "quadratic_grad",
    "rosenbrock",
    "rosenbrock_grad",
    "saddle",
    "saddle_grad",
]


def linear_regression(
    n: int, w0, cov, mean=None, noise_std: float = 0.1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw n points of a linear model with Gaussian inputs.

        X_i ~ N(mean, Sigma),   Y_i = <w0, X_i> + noise_std * eps_i,   eps_i ~ N(0, 1)

    w0: (d,) true weights; cov: (d, d) covariance Sigma, symmetric positive
    definite; mean: (d,), zero by default. Lists are accepted for all three.
    X is drawn as mean + Z L^T with Z standard normal and Sigma = L L^T (Cholesky).
    Returns X of shape (n, d) and Y of shape (n,), float32.
    """
    _validate.integer(n, "n", low=1)
    _validate.number(noise_std, "noise_std", low=0.0)
    w0 = torch.as_tensor(w0, dtype=torch.float32)
    cov = torch.as_tensor(cov, dtype=torch.float32)
    d = w0.numel()
    if w0.shape != (d,) or cov.shape != (d, d):
        raise ValueError(
            f"w0 must have shape (d,) and cov shape (d, d), got {tuple(w0.shape)} and "
            f"{tuple(cov.shape)}"
        )
    mean = torch.zeros(d) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
    if mean.shape != (d,):
        raise ValueError(f"mean must have shape ({d},), got {tuple(mean.shape)}")
    L, info = torch.linalg.cholesky_ex(cov)
    if info != 0 or not torch.allclose(cov, cov.T):
        raise ValueError("cov must be symmetric positive definite")

    gen = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, d, generator=gen)
    X = mean + Z @ L.T
    Y = X @ w0 + noise_std * torch.randn(n, generator=gen)
    return X, Y


# Two classes with different covariances, so the Bayes boundary is a curve (a conic).
MIXTURE_MEANS = torch.tensor([[-1.0, -0.5], [1.0, 0.5]])
MIXTURE_COVS = torch.tensor([[[1.0, 0.4], [0.4, 0.6]], [[0.5, -0.2], [-0.2, 1.2]]])


def gaussian_mixture(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Two-class 2-D Gaussian mixture: n points, half of each class.

        x | y = k  ~  N(MIXTURE_MEANS[k], MIXTURE_COVS[k]),   k in {0, 1}

    Classes have equal prior 1/2; the first n // 2 draws are class 0, the rest
    class 1, then the points are shuffled. Returns X of shape (n, 2) float32
    and y of shape (n,) int64. The best possible classifier for this data is
    ``gaussian_mixture_bayes``.
    """
    _validate.integer(n, "n", low=2)
    gen = torch.Generator().manual_seed(seed)
    L = torch.linalg.cholesky(MIXTURE_COVS)  # MIXTURE_COVS[k] = L[k] @ L[k].T
    n0, n1 = n // 2, n - n // 2
    x0 = MIXTURE_MEANS[0] + torch.randn(n0, 2, generator=gen) @ L[0].T  # mu_0 + L_0 z
    x1 = MIXTURE_MEANS[1] + torch.randn(n1, 2, generator=gen) @ L[1].T  # mu_1 + L_1 z
    X = torch.cat([x0, x1])
    y = torch.cat([torch.zeros(n0, dtype=torch.int64), torch.ones(n1, dtype=torch.int64)])
    order = torch.randperm(n, generator=gen)
    return X[order], y[order]


def gaussian_mixture_log_odds(x: torch.Tensor) -> torch.Tensor:
    r"""Bayes log-odds log p(y=1 | x) - log p(y=0 | x) of ``gaussian_mixture``.

    With equal priors this is log N(x; mu_1, Sigma_1) - log N(x; mu_0, Sigma_0), where

        log N(x; mu, Sigma) = -1/2 (x - mu)^T Sigma^{-1} (x - mu) - 1/2 log det Sigma - log(2 pi)

    x: (..., 2). Returns shape (...). The Bayes decision boundary is the curve
    where the log-odds are 0 (e.g. ``plt.contour(X, Y, log_odds, levels=[0])``).
    """
    _validate.tensor(x, "x", floating=True, min_dim=1)
    if x.shape[-1] != 2:
        raise ValueError(f"x must have shape (..., 2), got {tuple(x.shape)}")
    log_density = []
    for mu, Sigma in zip(MIXTURE_MEANS, MIXTURE_COVS, strict=True):
        diff = x - mu.to(x.dtype)
        Sigma = Sigma.to(x.dtype)
        mahalanobis = (diff @ torch.linalg.inv(Sigma) * diff).sum(-1)  # (x-mu)^T Sigma^-1 (x-mu)
        log_density.append(-0.5 * mahalanobis - 0.5 * torch.logdet(Sigma))  # log(2 pi) cancels
    return log_density[1] - log_density[0]


def gaussian_mixture_bayes(x: torch.Tensor) -> torch.Tensor:
    """Bayes classifier of ``gaussian_mixture``: 1 where the log-odds are > 0, else 0.

    x: (..., 2). Returns int64 labels of shape (...). No classifier has a lower
    expected error on this distribution.
    """
    return (gaussian_mixture_log_odds(x) > 0).long()


def quadratic(xy: torch.Tensor, condition_number: float = 10.0, angle: float = 0.0) -> torch.Tensor:
    r"""Ill-conditioned quadratic bowl.

        f(x, y) = 1/2 (u^2 + condition_number * v^2),   (u, v) = xy rotated by -angle

    Minimum f = 0 at (0, 0). The Hessian has eigenvalues 1 and condition_number
    (their ratio is the condition number), with eigenvectors along the axes
    rotated by ``angle`` radians. At angle 0 the valley is axis-aligned, the
    easy case for per-coordinate methods (Adagrad, RMSprop, Adam).
    xy: (..., 2). Returns shape (...); differentiable.
    """
    x, y = xy[..., 0], xy[..., 1]
    u = math.cos(angle) * x + math.sin(angle) * y
    v = -math.sin(angle) * x + math.cos(angle) * y
    return 0.5 * (u**2 + condition_number * v**2)


def quadratic_grad(
    xy: torch.Tensor, condition_number: float = 10.0, angle: float = 0.0
) -> torch.Tensor:
    r"""Gradient of ``quadratic``, written out (no autograd).

        grad f = u (cos a, sin a) + condition_number * v (-sin a, cos a)

    xy: (..., 2). Returns shape (..., 2).
    """
    c, s = math.cos(angle), math.sin(angle)
    x, y = xy[..., 0], xy[..., 1]
    u = c * x + s * y
    v = -s * x + c * y
    return torch.stack([c * u - condition_number * s * v, s * u + condition_number * c * v], -1)


def rosenbrock(xy: torch.Tensor, a: float = 1.0, b: float = 100.0) -> torch.Tensor:
    r"""Rosenbrock's banana-shaped valley.

        f(x, y) = (a - x)^2 + b (y - x^2)^2

    Global minimum f = 0 at (a, a^2) = (1, 1) by default, at the end of a long,
    curved, flat-bottomed valley. The classic start is (-1.2, 1).
    xy: (..., 2). Returns shape (...); differentiable.
    """
    x, y = xy[..., 0], xy[..., 1]
    return (a - x) ** 2 + b * (y - x**2) ** 2


def rosenbrock_grad(xy: torch.Tensor, a: float = 1.0, b: float = 100.0) -> torch.Tensor:
    r"""Gradient of ``rosenbrock``: (-2 (a - x) - 4 b x (y - x^2), 2 b (y - x^2)).

    xy: (..., 2). Returns shape (..., 2).
    """
    x, y = xy[..., 0], xy[..., 1]
    return torch.stack([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)], -1)


def saddle(xy: torch.Tensor) -> torch.Tensor:
    r"""A saddle point between two minima.

        f(x, y) = x^2 + y^4 / 4 - y^2 / 2

    Stationary points: a saddle at (0, 0) (f = 0, Hessian diag(2, -1)) and two
    minima at (0, -1) and (0, 1) (f = -1/4). Gradient descent started on the
    line y = 0 converges to the saddle; any perturbation in y escapes it.
    xy: (..., 2). Returns shape (...); differentiable.
    """
    x, y = xy[..., 0], xy[..., 1]
    return x**2 + y**4 / 4 - y**2 / 2


def saddle_grad(xy: torch.Tensor) -> torch.Tensor:
    r"""Gradient of ``saddle``: (2 x, y^3 - y).

    xy: (..., 2). Returns shape (..., 2).
    """
    x, y = xy[..., 0], xy[..., 1]
    return torch.stack([2 * x, y**3 - y], -1)


class Split(NamedTuple):
    """One part of a data set: inputs x (n, features) and integer labels y (n,)."""

    x: torch.Tensor
    y: torch.Tensor


class Digits(NamedTuple):
    """``digits()`` result: three splits plus the train statistics used to standardize.

    ``train.x * std + mean`` recovers the raw pixel values (0..16).
    """

    train: Split
    val: Split
    test: Split
    mean: torch.Tensor  # (64,) per-pixel mean over the training split
    std: torch.Tensor  # (64,) per-pixel std over the training split (1 where constant)


def digits(seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Digits:
    r"""scikit-learn's 1797 8x8 handwritten digits, split at random and standardized.

        x = (pixels - mean_train) / std_train

    Each split's x is float32 of shape (n, 64) (flattened 8x8 images) and y is
    int64 of shape (n,) with values 0-9. The split is a random permutation drawn
    with ``seed``: round(test_fraction * 1797) test images, round(val_fraction *
    1797) validation images, the rest for training. mean and std are computed
    per pixel on the training split only (population std; pixels that are
    constant in the training split get std 1), so no information leaks from
    validation or test data. The data ship with scikit-learn (no download).
    """
    from sklearn.datasets import load_digits  # imported here: sklearn takes ~1.5 s to import

    _validate.number(val_fraction, "val_fraction", low=0.0, high=1.0)
    _validate.number(test_fraction, "test_fraction", low=0.0, high=1.0)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}"
        )
    bunch = load_digits()
    pixels = torch.tensor(bunch.data, dtype=torch.float32)  # (1797, 64), values 0..16
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    n = len(labels)
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)

    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test_idx = order[:n_test]
    val_idx = order[n_test : n_test + n_val]
    train_idx = order[n_test + n_val :]
    mean = pixels[train_idx].mean(dim=0)
    std = pixels[train_idx].std(dim=0, correction=0)
    std[std == 0] = 1.0

    def split(idx):
        return Split((pixels[idx] - mean) / std, labels[idx])

    return Digits(split(train_idx), split(val_idx), split(test_idx), mean, std)


CLIFF_ANGLE = math.radians(20.0)  # the direction of the cliff's normal n, from the x axis


def _cliff_coordinates(xy: torch.Tensor):
    """(u, v): xy along the cliff's normal n = (cos a, sin a) and along the cliff."""
    c, s = math.cos(CLIFF_ANGLE), math.sin(CLIFF_ANGLE)
    x, y = xy[..., 0], xy[..., 1]
    return c * x + s * y, -s * x + c * y


def cliff(xy: torch.Tensor, height: float = 20.0, width: float = 0.5) -> torch.Tensor:
    r"""A bowl below a cliff: a high terrace, a steep step down, the minimum below it, and
    flat ground far away.

        f(x, y) = 4 (1 - exp(-q / 4)) + height * S(tau),   q = (u - 1)^2 / 4 + v^2 / 10,
        tau = clamp(1/2 - u / width, 0, 1),   S(tau) = 10 tau^3 - 15 tau^4 + 6 tau^5

    where u = x cos a + y sin a and v = -x sin a + y cos a measure xy along the cliff's
    normal n = (cos a, sin a) and along the cliff (a = CLIFF_ANGLE, 20 degrees).

    * Near the minimum f is the bowl q (curvatures 1/2 across the cliff, 1/5 along it);
      far from it f levels off at 4, where the gradient vanishes (at a distance of 10
      across the cliff it is below 2e-2, at 20 below 1e-8).
    * S rises smoothly from 0 to 1 with S'(0) = S'(1) = 0: in the band |u| < width / 2
      f drops by ``height``; on the terrace (u <= -width / 2) it is the bowl plus
      ``height``. The step's own slope reaches 1.875 height / width (75 by default) at
      u = 0, where the bowl's is 0.47; outside the band the slope of f is below 0.9.

    Minimum f = 0 at u = 1, v = 0, the point (cos a, sin a), for width <= 2.
    xy: (..., 2). Returns shape (...); differentiable.
    """
    u, v = _cliff_coordinates(xy)
    q = 0.25 * (u - 1) ** 2 + 0.1 * v**2
    tau = (0.5 - u / width).clamp(0.0, 1.0)
    return -4 * torch.expm1(-q / 4) + height * tau**3 * (10 - 15 * tau + 6 * tau**2)


def cliff_grad(xy: torch.Tensor, height: float = 20.0, width: float = 0.5) -> torch.Tensor:
    r"""Gradient of ``cliff``, written out (no autograd).

        df/du = exp(-q / 4) (u - 1) / 2 - (height / width) 30 tau^2 (1 - tau)^2,
        df/dv = exp(-q / 4) v / 5,
        grad f = df/du (cos a, sin a) + df/dv (-sin a, cos a)

    (S'(tau) = 30 tau^2 (1 - tau)^2 and dtau/du = -1/width inside the band; S' = 0 at both
    ends, so the clamp needs no special case.) xy: (..., 2). Returns shape (..., 2).
    """
    c, s = math.cos(CLIFF_ANGLE), math.sin(CLIFF_ANGLE)
    u, v = _cliff_coordinates(xy)
    damping = torch.exp(-(0.25 * (u - 1) ** 2 + 0.1 * v**2) / 4)
    tau = (0.5 - u / width).clamp(0.0, 1.0)
    df_du = damping * 0.5 * (u - 1) - height / width * 30 * tau**2 * (1 - tau) ** 2
    df_dv = damping * 0.2 * v
    return torch.stack([c * df_du - s * df_dv, s * df_du + c * df_dv], -1)
