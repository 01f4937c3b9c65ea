"""course_utils.batchnorm against torch (F.batch_norm, nn.BatchNorm1d, F.layer_norm), autograd
and numerical gradients: random shapes and seeds, float32 and float64, edge cases, bad input."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import batchnorm as bn
from course_utils.losses import numerical_gradient

F64 = {"rtol": 1e-6, "atol": 1e-10}
F32 = {"rtol": 1e-5, "atol": 1e-6}
GRAD_F32 = {"rtol": 1e-4, "atol": 1e-5}


def _tol(dtype):
    return F64 if dtype == torch.float64 else F32


def _batch(seed, n, c, dtype=torch.float64, scale=3.0, shift=2.0):
    g = torch.Generator().manual_seed(seed)
    x = shift + scale * torch.randn(n, c, generator=g, dtype=dtype)
    gamma = 0.5 + torch.rand(c, generator=g, dtype=dtype)
    beta = torch.randn(c, generator=g, dtype=dtype)
    return x, gamma, beta


SHAPES = [(2, 1), (2, 5), (7, 3), (32, 16), (5, 40)]


# --- forward -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_forward_equals_torch_batch_norm_in_training_mode(shape, dtype, eps):
    x, gamma, beta = _batch(sum(shape), *shape, dtype=dtype)
    y, (x_hat, cache_gamma, inv_std) = bn.batchnorm_forward(x, gamma, beta, eps)
    expected = F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
    torch.testing.assert_close(y, expected, **_tol(dtype))
    torch.testing.assert_close(bn.batchnorm_transform(x, gamma, beta, eps), y, rtol=0, atol=0)
    # the cache: x_hat (N, C), gamma, 1/sqrt(var + eps) with the biased variance
    var = ((x - x.mean(0)) ** 2).mean(0)
    torch.testing.assert_close(inv_std, 1 / torch.sqrt(var + eps), **_tol(dtype))
    torch.testing.assert_close(x_hat, (x - x.mean(0)) / torch.sqrt(var + eps), **_tol(dtype))
    assert cache_gamma is gamma
    assert y.dtype == dtype and y.shape == x.shape


def test_normalized_features_have_mean_zero_and_variance_almost_one():
    x, gamma, beta = _batch(0, 50, 4, scale=10.0, shift=-7.0)
    _, (x_hat, _, _) = bn.batchnorm_forward(x, gamma, beta, eps=1e-5)
    torch.testing.assert_close(
        x_hat.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0
    )
    var = x.var(0, correction=0)
    torch.testing.assert_close(x_hat.var(0, correction=0), var / (var + 1e-5))


def test_a_constant_feature_gives_beta_not_nan():
    x = torch.tensor([[3.0, 1.0], [3.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    gamma, beta = torch.tensor([2.0, 1.0], dtype=torch.float64), torch.tensor([0.5, 0.0]).double()
    y, _ = bn.batchnorm_forward(x, gamma, beta)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y[:, 0], torch.full((3,), 0.5, dtype=torch.float64))


# --- backward ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_backward_equals_autograd_of_torch_batch_norm(shape, seed):
    x, gamma, beta = _batch(seed * 100 + sum(shape), *shape)
    dy = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    _, cache = bn.batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = bn.batchnorm_backward(dy, cache)

    leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    y = F.batch_norm(leaves[0], None, None, leaves[1], leaves[2], training=True)
    expected = torch.autograd.grad(y, leaves, dy)
    for got, want in zip((dx, dgamma, dbeta), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_backward_equals_autograd_through_the_forward_steps():
    # autograd through our own forward (mean, variance, normalize, scale): an independent path
    x, gamma, beta = _batch(3, 6, 4)
    dy = torch.randn(6, 4, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    y, cache = bn.batchnorm_forward(*leaves)
    expected = torch.autograd.grad(y, leaves, dy)
    got = bn.batchnorm_backward(dy, tuple(t.detach() for t in cache))
    for g, want in zip(got, expected, strict=True):
        torch.testing.assert_close(g, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 2), (4, 3), (5, 1)])
def test_backward_equals_numerical_gradients(shape):
    x, gamma, beta = _batch(sum(shape) + 7, *shape)
    w = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def loss(x, gamma, beta):  # a scalar that depends on every output: L = sum(w * y)
        return (w * bn.batchnorm_forward(x, gamma, beta)[0]).sum()

    _, cache = bn.batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = bn.batchnorm_backward(w, cache)  # dL/dy = w
    tol = {"rtol": 1e-6, "atol": 1e-7}
    torch.testing.assert_close(dx, numerical_gradient(lambda t: loss(t, gamma, beta), x), **tol)
    torch.testing.assert_close(dgamma, numerical_gradient(lambda t: loss(x, t, beta), gamma), **tol)
    torch.testing.assert_close(dbeta, numerical_gradient(lambda t: loss(x, gamma, t), beta), **tol)


def test_dx_sums_to_zero_over_the_batch_and_is_orthogonal_to_x_hat():
    # y does not change when every x_i moves by the same amount (or x is rescaled per feature
    # with eps -> 0), so dx has no component along those directions
    x, gamma, beta = _batch(5, 9, 3)
    dy = torch.randn(9, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    _, cache = bn.batchnorm_forward(x, gamma, beta, eps=1e-12)
    dx, _, _ = bn.batchnorm_backward(dy, cache)
    torch.testing.assert_close(dx.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(
        (dx * cache[0]).sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-8, rtol=0
    )


def test_backward_in_float32_matches_torch():
    x, gamma, beta = _batch(11, 64, 8, dtype=torch.float32)
    dy = torch.randn(64, 8, generator=torch.Generator().manual_seed(2))
    _, cache = bn.batchnorm_forward(x, gamma, beta)
    got = bn.batchnorm_backward(dy, cache)
    leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    y = F.batch_norm(leaves[0], None, None, leaves[1], leaves[2], training=True)
    for g, want in zip(got, torch.autograd.grad(y, leaves, dy), strict=True):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, want, **GRAD_F32)


# --- running statistics ------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_update_running_stats_equals_torch_batch_norm(momentum, dtype):
    x, _, _ = _batch(int(10 * momentum), 6, 4, dtype=dtype)
    mean0 = torch.randn(4, generator=torch.Generator().manual_seed(1), dtype=dtype)
    var0 = torch.rand(4, generator=torch.Generator().manual_seed(2), dtype=dtype) + 0.5
    mean, var = bn.update_running_stats(mean0, var0, x, momentum)
    theirs_mean, theirs_var = mean0.clone(), var0.clone()
    F.batch_norm(x, theirs_mean, theirs_var, training=True, momentum=momentum)
    torch.testing.assert_close(mean, theirs_mean, **_tol(dtype))
    torch.testing.assert_close(var, theirs_var, **_tol(dtype))
    assert not torch.equal(mean0, mean) or momentum == 0.0  # new tensors; inputs unchanged
    torch.testing.assert_close(
        mean0, torch.randn(4, generator=torch.Generator().manual_seed(1), dtype=dtype)
    )


def test_running_variance_is_the_unbiased_one():
    x = torch.tensor([[0.0], [2.0]], dtype=torch.float64)  # biased variance 1, unbiased 2
    _, var = bn.update_running_stats(torch.zeros(1).double(), torch.zeros(1).double(), x, 1.0)
    assert var.item() == pytest.approx(2.0)


@pytest.mark.parametrize(("batch_size", "momentum"), [(4, 0.1), (32, 0.3), (2, 0.02)])
def test_running_mean_std_matches_a_simulation(batch_size, momentum):
    # 4000 independent features = 4000 independent runs; after many steps the spread of the
    # running means across them is the stationary standard deviation
    std, c, steps = 1.5, 4000, int(12 / momentum)
    g = torch.Generator().manual_seed(batch_size)
    running = torch.zeros(c, dtype=torch.float64)
    for _ in range(steps):
        batch = 2.0 + std * torch.randn(batch_size, c, generator=g, dtype=torch.float64)
        running = (1 - momentum) * running + momentum * batch.mean(0)
    predicted = bn.running_mean_std(batch_size, momentum, std)
    # the sample std of 4000 roughly normal values is within 3 * 1/sqrt(2 * 4000) ~ 3.4%
    assert running.std().item() == pytest.approx(predicted, rel=0.04)
    assert running.mean().item() == pytest.approx(2.0, abs=4 * predicted / math.sqrt(c))


def test_running_mean_std_limits():
    assert bn.running_mean_std(10, 1.0, 2.0) == pytest.approx(2.0 / math.sqrt(10))  # last batch
    assert bn.running_mean_std(10, 0.0, 2.0) == 0.0
    assert bn.running_mean_std(8, 0.1) == pytest.approx(math.sqrt(0.1 / 1.9 / 8))


# --- the module --------------------------------------------------------------------------


def _pair(c, dtype=torch.float64, momentum=0.1, eps=1e-5, seed=0):
    ours = bn.BatchNorm1d(c, eps=eps, momentum=momentum).to(dtype)
    theirs = torch.nn.BatchNorm1d(c, eps=eps, momentum=momentum).to(dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial gamma and beta, the same in both
        for a, b in ((ours.weight, theirs.weight), (ours.bias, theirs.bias)):
            a.copy_(torch.randn(c, generator=g, dtype=dtype))
            b.copy_(a)
    return ours, theirs


def _assert_same_state(ours, theirs, dtype):
    tol = _tol(dtype)
    torch.testing.assert_close(ours.running_mean, theirs.running_mean, **tol)
    torch.testing.assert_close(ours.running_var, theirs.running_var, **tol)
    assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()
    assert ours.num_batches_tracked.dtype == torch.int64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_module_equals_torch_over_k_training_steps_and_in_eval_mode(dtype, momentum):
    c = 6
    ours, theirs = _pair(c, dtype, momentum)
    g = torch.Generator().manual_seed(1)
    tol = _tol(dtype)
    for step in range(7):
        n = int(torch.randint(2, 12, (1,), generator=g))
        x = 1.5 + 2 * torch.randn(n, c, generator=g, dtype=dtype)
        dy = torch.randn(n, c, generator=g, dtype=dtype)
        outputs = []
        for module in (ours, theirs):
            xr = x.clone().requires_grad_()
            y = module(xr)
            grads = torch.autograd.grad(y, (xr, module.weight, module.bias), dy)
            outputs.append((y, *grads))
        (y, *grads), (y_torch, *grads_torch) = outputs
        torch.testing.assert_close(y, y_torch, **tol)
        for a, b in zip(grads, grads_torch, strict=True):
            # float32: dx cancels (it is tiny for N = 2), so compare on the scale of dy
            torch.testing.assert_close(a, b, **(GRAD_F32 if dtype == torch.float32 else F64))
        _assert_same_state(ours, theirs, dtype)
        assert ours.num_batches_tracked.item() == step + 1

    ours.eval(), theirs.eval()
    x = 3 * torch.randn(5, c, generator=g, dtype=dtype)
    dy = torch.randn(5, c, generator=g, dtype=dtype)
    outputs = []
    for module in (ours, theirs):
        xr = x.clone().requires_grad_()
        y = module(xr)
        outputs.append((y, *torch.autograd.grad(y, (xr, module.weight, module.bias), dy)))
    for a, b in zip(*outputs, strict=True):
        torch.testing.assert_close(a, b, **tol)
    _assert_same_state(ours, theirs, dtype)  # eval mode leaves the statistics alone
    assert ours.num_batches_tracked.item() == 7


def test_momentum_none_is_the_plain_average_of_the_batch_statistics():
    # Ioffe & Szegedy's Algorithm 2: E[x] = mean of the batch means, Var[x] = m/(m-1) times
    # the mean of the (biased) batch variances
    module = bn.BatchNorm1d(3, momentum=None).double()
    batches = [
        torch.randn(8, 3, generator=torch.Generator().manual_seed(s)).double() for s in range(5)
    ]
    for x in batches:
        module(x)
    means = torch.stack([x.mean(0) for x in batches]).mean(0)
    variances = torch.stack([x.var(0, correction=0) for x in batches]).mean(0) * 8 / 7
    torch.testing.assert_close(module.running_mean, means)
    torch.testing.assert_close(module.running_var, variances)


def test_training_under_no_grad_still_updates_the_statistics_like_torch():
    ours, theirs = _pair(4)
    x = torch.randn(10, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))
    _assert_same_state(ours, theirs, torch.float64)


def test_state_dict_keys_and_loading_both_ways():
    ours, theirs = _pair(5)
    for _ in range(3):
        x = torch.randn(7, 5, dtype=torch.float64)
        ours(x)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    _assert_same_state(ours, theirs, torch.float64)
    fresh = bn.BatchNorm1d(5).double()
    fresh.load_state_dict(theirs.state_dict())
    _assert_same_state(fresh, theirs, torch.float64)
    assert [name for name, _ in ours.named_parameters()] == ["weight", "bias"]
    assert [name for name, _ in ours.named_buffers()] == [
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]


def test_defaults_reset_and_repr_like_torch():
    ours, theirs = bn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert torch.equal(a, b) and a.dtype == b.dtype
    ours(torch.randn(4, 3))
    with torch.no_grad():
        ours.weight.mul_(3.0)
    ours.reset_running_stats()
    assert ours.num_batches_tracked.item() == 0 and torch.equal(ours.running_var, torch.ones(3))
    assert torch.equal(ours.weight, torch.full((3,), 3.0))
    ours.reset_parameters()
    assert torch.equal(ours.weight, torch.ones(3))
    assert repr(ours) == "BatchNorm1d(3, eps=1e-05, momentum=0.1)"


def test_a_batch_of_one_in_training_raises_a_clear_error_as_torch_does():
    ours, theirs = _pair(4)
    x = torch.randn(1, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        theirs(x)
    with pytest.raises(ValueError, match=r"at least 2 examples.*model\.eval\(\)"):
        ours(x)
    assert ours.num_batches_tracked.item() == 0  # nothing was counted
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))


def test_module_refuses_bad_input():
    module = bn.BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"input must have shape \(N, 4\)"):
        module(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"input must have shape \(N, 4\)"):
        module(torch.randn(3, 4, 2))  # torch would take (N, C, L); ours is for (N, C) only
    with pytest.raises(TypeError, match="dtype of the module's parameters"):
        module(torch.randn(3, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point"):
        module(torch.ones(3, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        module([[1.0, 2.0, 3.0, 4.0]] * 2)
    for kwargs, error, match in (
        ({"num_features": 0}, ValueError, "num_features"),
        ({"num_features": 2.0}, TypeError, "num_features"),
        ({"num_features": 3, "eps": 0.0}, ValueError, "eps"),
        ({"num_features": 3, "momentum": 1.5}, ValueError, "momentum"),
        ({"num_features": 3, "momentum": "0.1"}, TypeError, "momentum"),
    ):
        with pytest.raises(error, match=match):
            bn.BatchNorm1d(**kwargs)


def test_module_works_inside_a_network_trained_by_an_optimizer():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), bn.BatchNorm1d(4), torch.nn.ReLU())
    twin = copy.deepcopy(net)
    twin[1] = torch.nn.BatchNorm1d(4)
    twin[1].load_state_dict(net[1].state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (net, twin)]
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.randn(16, 3, generator=g)
        for model, opt in zip((net, twin), opts, strict=True):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(net.state_dict().values(), twin.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# --- folding -----------------------------------------------------------------------------


def _trained_bn(module_class, c, dtype, seed):
    module = module_class(c).to(dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        module.weight.copy_(torch.randn(c, generator=g, dtype=dtype))
        module.bias.copy_(torch.randn(c, generator=g, dtype=dtype))
    for _ in range(4):
        module(3 + 2 * torch.randn(9, c, generator=g, dtype=dtype))
    return module.eval()


@pytest.mark.parametrize("module_class", [bn.BatchNorm1d, torch.nn.BatchNorm1d])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_equals_linear_then_bn_in_eval_mode(module_class, dtype, bias):
    torch.manual_seed(0)
    linear = torch.nn.Linear(5, 3, bias=bias).to(dtype)
    norm = _trained_bn(module_class, 3, dtype, seed=1)
    folded = bn.fold_batchnorm(linear, norm)
    x = torch.randn(20, 5, dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), norm(linear(x)), **_tol(dtype))
    assert isinstance(folded, torch.nn.Linear) and folded.bias is not None
    assert folded.weight.dtype == dtype
    # a copy: changing the originals later does not change it
    before = folded.weight.detach().clone()
    with torch.no_grad():
        linear.weight.add_(1.0)
        norm.running_var.mul_(4.0)
    assert torch.equal(folded.weight, before)


def test_fold_batchnorm_params_formula_and_shapes():
    g = torch.Generator().manual_seed(4)
    w, b = torch.randn(3, 2, generator=g).double(), torch.randn(3, generator=g).double()
    gamma, beta, mean = (torch.randn(3, generator=g).double() for _ in range(3))
    var = torch.rand(3, generator=g).double() + 0.1
    w2, b2 = bn.fold_batchnorm_params(w, b, gamma, beta, mean, var, eps=1e-3)
    x = torch.randn(6, 2, generator=g).double()
    z = x @ w.T + b
    expected = gamma * (z - mean) / torch.sqrt(var + 1e-3) + beta
    torch.testing.assert_close(x @ w2.T + b2, expected)
    assert w2.shape == (3, 2) and b2.shape == (3,)


def test_fold_refuses_mismatches():
    linear = torch.nn.Linear(4, 3)
    with pytest.raises(
        ValueError, match=r"num_features \(5\) must equal linear.out_features \(3\)"
    ):
        bn.fold_batchnorm(linear, bn.BatchNorm1d(5))
    with pytest.raises(ValueError, match="affine=True"):
        bn.fold_batchnorm(linear, torch.nn.BatchNorm1d(3, affine=False))
    with pytest.raises(ValueError, match="track_running_stats"):
        bn.fold_batchnorm(linear, torch.nn.BatchNorm1d(3, track_running_stats=False))
    with pytest.raises(TypeError, match=r"linear must be a torch\.nn\.Linear"):
        bn.fold_batchnorm(torch.nn.Conv1d(4, 3, 1), bn.BatchNorm1d(3))
    with pytest.raises(TypeError, match="bn must be"):
        bn.fold_batchnorm(linear, torch.nn.LayerNorm(3))
    with pytest.raises(TypeError, match="dtype of weight"):
        bn.fold_batchnorm(linear, bn.BatchNorm1d(3).double())
    w, v = torch.randn(3, 2), torch.ones(3)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\)"):
        bn.fold_batchnorm_params(w, v, v, v, v, torch.ones(2))
    with pytest.raises(ValueError, match="weight must have shape"):
        bn.fold_batchnorm_params(torch.randn(3), v, v, v, v, v)


# --- layer normalization -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("shape", "normalized_shape"),
    [
        ((4, 6), (6,)),
        ((4, 6), 6),
        ((1, 5), [5]),
        ((2, 3, 4), (4,)),
        ((2, 3, 4), (3, 4)),
        ((7,), (7,)),
    ],
)
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
def test_layer_norm_equals_torch(dtype, shape, normalized_shape, affine):
    g = torch.Generator().manual_seed(len(shape))
    x = (1 + 4 * torch.randn(shape, generator=g, dtype=dtype)).requires_grad_()
    norm_shape = (
        (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    )
    weight = (
        torch.randn(norm_shape, generator=g, dtype=dtype) if affine in ("weight", "both") else None
    )
    bias = torch.randn(norm_shape, generator=g, dtype=dtype) if affine in ("bias", "both") else None
    y = bn.layer_norm(x, normalized_shape, weight, bias, eps=1e-5)
    expected = F.layer_norm(x, list(norm_shape), weight, bias, eps=1e-5)
    torch.testing.assert_close(y, expected, **_tol(dtype))
    dy = torch.randn(shape, generator=g, dtype=dtype)
    torch.testing.assert_close(
        torch.autograd.grad(y, x, dy)[0], torch.autograd.grad(expected, x, dy)[0], **_tol(dtype)
    )


def test_layer_norm_of_one_example_does_not_depend_on_the_batch():
    x = torch.randn(6, 8, dtype=torch.float64)
    whole = bn.layer_norm(x, (8,))
    torch.testing.assert_close(bn.layer_norm(x[2:3], (8,)), whole[2:3], rtol=0, atol=0)


def test_layer_norm_refuses_bad_input():
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="last dimensions of x"):
        bn.layer_norm(x, (3,))
    with pytest.raises(ValueError, match="last dimensions of x"):
        bn.layer_norm(torch.randn(4), (3, 4))
    with pytest.raises(TypeError, match="normalized_shape must be an int or a sequence"):
        bn.layer_norm(x, 4.0)
    with pytest.raises(TypeError, match="normalized_shape"):
        bn.layer_norm(x, ())
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        bn.layer_norm(x, 4, torch.ones(3))
    with pytest.raises(TypeError, match="bias must have the dtype of x"):
        bn.layer_norm(x, 4, None, torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="eps"):
        bn.layer_norm(x, 4, eps=-1.0)


# --- bad input to the functions ----------------------------------------------------------


def test_functions_refuse_bad_input_with_clear_errors():
    x, gamma, beta = _batch(0, 4, 3)
    with pytest.raises(ValueError, match="at least 2 examples"):
        bn.batchnorm_forward(x[:1], gamma, beta)
    with pytest.raises(ValueError, match=r"x must have shape \(N, C\)"):
        bn.batchnorm_forward(x[None], gamma, beta)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        bn.batchnorm_forward(x.long(), gamma, beta)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        bn.batchnorm_forward(x, gamma[:2], beta)
    with pytest.raises(TypeError, match="beta must have the dtype of x"):
        bn.batchnorm_forward(x, gamma, beta.float())
    with pytest.raises(ValueError, match="eps must be > 0"):
        bn.batchnorm_forward(x, gamma, beta, eps=0.0)
    _, cache = bn.batchnorm_forward(x, gamma, beta)
    with pytest.raises(TypeError, match=r"cache must be the tuple \(x_hat, gamma, inv_std\)"):
        bn.batchnorm_backward(x, list(cache))
    with pytest.raises(TypeError, match="of length 2"):
        bn.batchnorm_backward(x, cache[:2])
    with pytest.raises(ValueError, match="dy and cache"):
        bn.batchnorm_backward(x[:2], cache)
    with pytest.raises(TypeError, match="dy must have the dtype"):
        bn.batchnorm_backward(x.float(), cache)
    with pytest.raises(ValueError, match="momentum must be <= 1"):
        bn.update_running_stats(gamma, beta, x, momentum=2.0)
    with pytest.raises(ValueError, match="at least 2 examples"):
        bn.update_running_stats(gamma, beta, x[:1])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        bn.running_mean_std(0, 0.1)
    with pytest.raises(ValueError, match="momentum"):
        bn.running_mean_std(4, -0.1)
