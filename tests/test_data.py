"""course_utils.data: shapes, determinism, the distributions drawn, standardization."""

import math

import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

from course_utils import data

W0 = [2.0, -1.0, 0.5]
COV = [[1.0, 0.5, 0.0], [0.5, 2.0, -0.3], [0.0, -0.3, 0.5]]


def test_linear_regression_shapes_and_determinism():
    X, Y = data.linear_regression(50, W0, COV, seed=3)
    assert X.shape == (50, 3) and Y.shape == (50,)
    assert X.dtype == Y.dtype == torch.float32
    X2, Y2 = data.linear_regression(50, W0, COV, seed=3)
    assert torch.equal(X, X2) and torch.equal(Y, Y2)
    X3, _ = data.linear_regression(50, W0, COV, seed=4)
    assert not torch.equal(X, X3)


def test_linear_regression_distribution():
    mean = [1.0, -2.0, 0.0]
    X, Y = data.linear_regression(100_000, W0, COV, mean=mean, noise_std=0.3, seed=0)
    X, Y = X.double(), Y.double()
    torch.testing.assert_close(X.mean(0), torch.tensor(mean).double(), atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(X.T), torch.tensor(COV).double(), atol=0.03, rtol=0)
    design = torch.cat([X, torch.ones(len(X), 1).double()], dim=1)
    w_hat = torch.linalg.lstsq(design, Y.unsqueeze(1)).solution.squeeze(1)
    torch.testing.assert_close(w_hat[:3], torch.tensor(W0).double(), atol=0.01, rtol=0)
    assert abs(w_hat[3].item()) < 0.01  # no intercept
    assert (Y - design @ w_hat).std().item() == pytest.approx(0.3, rel=0.02)


def test_linear_regression_rejects_bad_covariance():
    with pytest.raises(ValueError, match="cov"):
        data.linear_regression(10, [1.0, 2.0], [[1.0, 2.0], [2.0, 1.0]])  # indefinite
    with pytest.raises(ValueError, match="cov"):
        data.linear_regression(10, [1.0, 2.0], [[1.0]])
    with pytest.raises(ValueError, match="mean"):
        data.linear_regression(10, [1.0, 2.0], [[1.0, 0.0], [0.0, 1.0]], mean=[0.0])


def test_gaussian_mixture_shapes_balance_determinism():
    X, y = data.gaussian_mixture(seed=1)
    assert X.shape == (200, 2) and y.shape == (200,)
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert y.sum().item() == 100
    assert 0 < y[:100].sum().item() < 100  # shuffled, not sorted by class
    X2, y2 = data.gaussian_mixture(seed=1)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert not torch.equal(X, data.gaussian_mixture(seed=2)[0])


def test_gaussian_mixture_class_statistics():
    X, y = data.gaussian_mixture(100_000, seed=0)
    for k in (0, 1):
        Xk = X[y == k].double()
        torch.testing.assert_close(Xk.mean(0), data.MIXTURE_MEANS[k].double(), atol=0.02, rtol=0)
        torch.testing.assert_close(
            torch.cov(Xk.T), data.MIXTURE_COVS[k].double(), atol=0.03, rtol=0
        )


def test_bayes_log_odds_match_multivariate_normal_densities():
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    log_p = [
        torch.distributions.MultivariateNormal(mu.double(), Sigma.double()).log_prob(x)
        for mu, Sigma in zip(data.MIXTURE_MEANS, data.MIXTURE_COVS, strict=True)
    ]
    torch.testing.assert_close(data.gaussian_mixture_log_odds(x), log_p[1] - log_p[0])
    assert torch.equal(data.gaussian_mixture_bayes(x), (log_p[1] > log_p[0]).long())


def test_bayes_classifier_agrees_with_qda_fit_on_a_large_sample():
    X, y = data.gaussian_mixture(20_000, seed=5)
    qda = QuadraticDiscriminantAnalysis().fit(X.numpy(), y.numpy())
    X_test, y_test = data.gaussian_mixture(5_000, seed=6)
    bayes = data.gaussian_mixture_bayes(X_test)
    agreement = (bayes.numpy() == qda.predict(X_test.numpy())).mean()
    assert agreement > 0.99
    assert 0.85 < (bayes == y_test).float().mean().item() < 0.97  # overlapping classes


def grad_and_hessian(f, point):
    xy = torch.tensor(point, dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(f, xy)
    hessian = torch.autograd.functional.hessian(f, xy)
    return f(xy).item(), grad, hessian


@pytest.mark.parametrize("condition_number", [1.0, 10.0, 100.0])
@pytest.mark.parametrize("angle", [0.0, math.pi / 6])
def test_quadratic_minimum_and_conditioning(condition_number, angle):
    def f(xy):
        return data.quadratic(xy, condition_number=condition_number, angle=angle)

    value, grad, hessian = grad_and_hessian(f, [0.0, 0.0])
    assert value == 0.0 and torch.equal(grad, torch.zeros(2, dtype=torch.float64))
    eigenvalues, eigenvectors = torch.linalg.eigh(hessian)
    torch.testing.assert_close(eigenvalues, torch.tensor([1.0, condition_number]).double())
    if condition_number > 1:  # steep direction = the y axis rotated by angle
        steep = torch.tensor([-math.sin(angle), math.cos(angle)], dtype=torch.float64)
        assert abs(eigenvectors[:, 1] @ steep).item() == pytest.approx(1.0)


def test_rosenbrock_minimum_and_known_value():
    value, grad, hessian = grad_and_hessian(data.rosenbrock, [1.0, 1.0])
    assert value == 0.0 and torch.equal(grad, torch.zeros(2, dtype=torch.float64))
    assert torch.linalg.eigvalsh(hessian).min() > 0
    assert data.rosenbrock(torch.tensor([-1.2, 1.0])).item() == pytest.approx(24.2)
    assert data.rosenbrock(torch.tensor([2.0, 4.0]), a=2.0).item() == 0.0


def test_saddle_stationary_points():
    value, grad, hessian = grad_and_hessian(data.saddle, [0.0, 0.0])
    assert value == 0.0 and torch.equal(grad, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(torch.linalg.eigvalsh(hessian), torch.tensor([-1.0, 2.0]).double())
    for y in (-1.0, 1.0):
        value, grad, hessian = grad_and_hessian(data.saddle, [0.0, y])
        assert value == -0.25 and torch.equal(grad, torch.zeros(2, dtype=torch.float64))
        assert torch.linalg.eigvalsh(hessian).min() > 0


@pytest.mark.parametrize("f", [data.quadratic, data.rosenbrock, data.saddle])
def test_test_functions_evaluate_on_grids(f):
    grid = torch.randn(4, 5, 2, generator=torch.Generator().manual_seed(0))
    values = f(grid)
    assert values.shape == (4, 5)
    assert values[2, 3].item() == pytest.approx(f(grid[2, 3]).item())


def test_digits_shapes_dtypes_determinism():
    d = data.digits(seed=0)
    sizes = [len(part.y) for part in (d.train, d.val, d.test)]
    assert sizes == [1797 - 2 * 359, 359, 359]
    for part in (d.train, d.val, d.test):
        assert part.x.shape == (len(part.y), 64)
        assert part.x.dtype == torch.float32 and part.y.dtype == torch.int64
    assert set(d.train.y.tolist()) == set(range(10))
    again = data.digits(seed=0)
    assert torch.equal(d.train.x, again.train.x) and torch.equal(d.test.y, again.test.y)
    assert not torch.equal(d.train.y, data.digits(seed=1).train.y)
    assert len(data.digits(val_fraction=0.1, test_fraction=0.3).test.y) == round(0.3 * 1797)


def test_digits_splits_partition_the_data_and_standardize_with_train_statistics():
    d = data.digits(seed=2)
    raw = load_digits()
    rows = []
    for part in (d.train, d.val, d.test):
        pixels = torch.round(part.x * d.std + d.mean)  # undo the standardization
        rows += [
            (tuple(p), label) for p, label in zip(pixels.tolist(), part.y.tolist(), strict=True)
        ]
    expected = [
        (tuple(p), label) for p, label in zip(raw.data.tolist(), raw.target.tolist(), strict=True)
    ]
    assert sorted(rows) == sorted(expected)  # every image exactly once, with its label

    train_raw = d.train.x * d.std + d.mean
    torch.testing.assert_close(d.mean, train_raw.mean(0), atol=1e-4, rtol=0)
    varying = d.std != 1.0
    torch.testing.assert_close(d.train.x.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        d.train.x[:, varying].std(0, correction=0),
        torch.ones(int(varying.sum())),
        atol=1e-4,
        rtol=0,
    )
    assert d.val.x.mean(0).abs().max() > 1e-3  # val statistics were not used


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [(dict(val_fraction=-0.1), "val_fraction"), (dict(val_fraction=0.5, test_fraction=0.5), "< 1")],
)
def test_digits_rejects_bad_fractions(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        data.digits(**kwargs)


def test_cliff_gradient_matches_autograd_and_its_minimum_and_shape():
    import numpy as np  # imported here: this test was added at the end of the file

    rng = np.random.default_rng(0)
    # random points, and points inside the cliff's band |u| < width / 2
    angle = data.CLIFF_ANGLE
    normal = np.array([math.cos(angle), math.sin(angle)])
    along = np.array([-math.sin(angle), math.cos(angle)])
    points = list(rng.uniform(-3, 3, size=(20, 2)))
    points += [u * normal + v * along for u, v in rng.uniform([-0.25, -2], [0.25, 2], (20, 2))]
    for point in points:
        xy = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        (expected,) = torch.autograd.grad(data.cliff(xy), xy)
        np.testing.assert_allclose(data.cliff_grad(xy.detach()).numpy(), expected, atol=1e-12)
    # the minimum, f = 0 with a zero gradient, at (cos a, sin a); f >= 0 on a grid
    minimum = torch.tensor(normal)
    assert data.cliff(minimum).item() == 0.0
    assert data.cliff_grad(minimum).abs().max().item() == 0.0
    grid = torch.stack(torch.meshgrid(*[torch.linspace(-4, 4, 161)] * 2, indexing="xy"), -1)
    assert data.cliff(grid.double()).min().item() >= 0.0
    # the terrace is 20 higher than the bowl; the band's slope peaks at 1.875 * 20 / 0.5
    bowl = torch.tensor(-2.0 * normal + 0.5 * along)
    terrace_minus_bowl = data.cliff(bowl) - data.cliff(bowl, height=0.0)
    assert terrace_minus_bowl.item() == pytest.approx(20.0, abs=1e-12)
    on_edge = torch.tensor(0.0 * normal + 0.0 * along)
    cliff_slope = -(data.cliff_grad(on_edge) - data.cliff_grad(on_edge, height=0.0)) @ minimum
    assert cliff_slope.item() == pytest.approx(1.875 * 20 / 0.5)
    # far away the ground is flat: f levels off at 4
    far = torch.tensor(21.0 * normal)
    assert data.cliff(far).item() == pytest.approx(4.0, abs=1e-9)
    assert data.cliff_grad(far).norm().item() < 1e-8
    assert data.cliff(grid.double()).shape == (161, 161)
