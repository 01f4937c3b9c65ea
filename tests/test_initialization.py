"""course_utils.initialization against torch.nn.init: same values from the same generator,
exact fans, exact uniform bounds, variance within a statistically justified tolerance."""

import math

import pytest
import torch

from course_utils import initialization as init

SHAPES = [(7, 5), (64, 32), (16, 8, 3, 3), (4, 6, 5)]
# ours -> (torch.nn.init twin, its extra arguments)
TWINS = {
    "xavier_uniform_": (torch.nn.init.xavier_uniform_, {}),
    "xavier_normal_": (torch.nn.init.xavier_normal_, {}),
    "he_normal_": (torch.nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
    "he_uniform_": (torch.nn.init.kaiming_uniform_, {"nonlinearity": "relu"}),
    "lecun_normal_": (torch.nn.init.kaiming_normal_, {"nonlinearity": "linear"}),
}


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_values_as_torch_nn_init_with_the_same_generator(name, shape, dtype):
    twin, extra = TWINS[name]
    ours = getattr(init, name)(
        torch.empty(shape, dtype=dtype), generator=torch.Generator().manual_seed(3)
    )
    theirs = twin(
        torch.empty(shape, dtype=dtype), generator=torch.Generator().manual_seed(3), **extra
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)


@pytest.mark.parametrize("gain", [0.5, 5 / 3])
def test_gain_scales_like_torch(gain):
    shape = (20, 30)
    ours = init.xavier_uniform_(
        torch.empty(shape), gain=gain, generator=torch.Generator().manual_seed(0)
    )
    theirs = torch.nn.init.xavier_uniform_(
        torch.empty(shape), gain=gain, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(ours, theirs)
    he = init.he_normal_(torch.empty(shape), gain=gain, generator=torch.Generator().manual_seed(0))
    unit = init.he_normal_(torch.empty(shape), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(he, gain * unit)


def test_fans_follow_torch():
    for shape in SHAPES:
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert init.fan_in_and_fan_out(shape) == (fan_in, fan_out)
    assert init.fan_in_and_fan_out((16, 8, 3, 3)) == (72, 144)


def test_uniform_bounds_are_exact():
    w = init.he_uniform_(
        torch.empty(400, 50, dtype=torch.float64), generator=torch.Generator().manual_seed(1)
    )
    bound = math.sqrt(6 / 50)
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound  # 20,000 draws reach the edge
    w = init.xavier_uniform_(
        torch.empty(100, 300, dtype=torch.float64), generator=torch.Generator().manual_seed(1)
    )
    bound = math.sqrt(6 / 400)
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound


@pytest.mark.parametrize(
    ("name", "variance"),
    [
        ("lecun_normal_", 1 / 200),
        ("xavier_normal_", 2 / 500),
        ("xavier_uniform_", 2 / 500),
        ("he_normal_", 2 / 200),
        ("he_uniform_", 2 / 200),
    ],
)
def test_sample_variance_matches_the_formula(name, variance):
    # 60,000 draws: the sample variance has relative standard error sqrt((kurtosis - 1) / n)
    # <= sqrt(2 / 60000) = 0.0058; accept 6 standard errors (false alarm ~ 2e-9).
    w = getattr(init, name)(
        torch.empty(300, 200, dtype=torch.float64), generator=torch.Generator().manual_seed(2)
    )
    assert w.var().item() == pytest.approx(variance, rel=6 * math.sqrt(2 / w.numel()))
    assert abs(w.mean().item()) < 6 * math.sqrt(variance / w.numel())


def test_in_place_without_autograd_and_returns_the_tensor():
    w = torch.nn.Parameter(torch.zeros(10, 10))
    out = init.he_normal_(w, generator=torch.Generator().manual_seed(0))
    assert out is w and w.grad_fn is None and w.abs().sum() > 0


@pytest.mark.parametrize(
    ("tensor", "kwargs", "error", "match"),
    [
        (torch.zeros(5), {}, ValueError, "at least 2 dimensions"),
        (torch.zeros(3, 3, dtype=torch.int64), {}, TypeError, "floating-point"),
        ([[0.0, 0.0]], {}, TypeError, "torch.Tensor"),
        (torch.zeros(3, 3), {"gain": 0.0}, ValueError, "gain"),
        (torch.zeros(3, 3), {"generator": 1}, TypeError, "generator"),
    ],
)
def test_bad_input_is_refused(tensor, kwargs, error, match):
    for name in TWINS:
        with pytest.raises(error, match=match):
            getattr(init, name)(tensor, **kwargs)
