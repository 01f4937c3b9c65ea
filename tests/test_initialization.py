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
    "lecun_uniform_": (torch.nn.init.kaiming_uniform_, {"nonlinearity": "linear"}),
    "fan_in_uniform_": (torch.nn.init.kaiming_uniform_, {"a": math.sqrt(5)}),  # nn.Linear's
    "standard_normal_": (torch.nn.init.normal_, {"mean": 0.0, "std": 1.0}),
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
    fixed = init.standard_normal_(
        torch.empty(shape), gain=gain, generator=torch.Generator().manual_seed(0)
    )
    theirs = torch.nn.init.normal_(
        torch.empty(shape), 0.0, gain, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(fixed, theirs)
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
        ("lecun_uniform_", 1 / 200),
        ("fan_in_uniform_", 1 / 600),
        ("standard_normal_", 1.0),
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


def test_init_schemes_name_the_public_functions():
    for name, fn in init.INIT_SCHEMES.items():
        assert fn is getattr(init, name + "_")


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 0.5, 1.0, 3.0])
def test_leaky_relu_gain_is_torchs(slope):
    assert init.leaky_relu_gain(slope) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", slope), rel=1e-12
    )


def test_leaky_relu_gain_keeps_the_second_moment_through_a_layer():
    # E[leaky(z)^2] * gain^2 = E[z^2] for symmetric z, checked on 10^6 draws
    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for slope in (0.0, 0.3):
        a = torch.nn.functional.leaky_relu(z, slope)
        ratio = (init.leaky_relu_gain(slope) ** 2 * (a**2).mean() / (z**2).mean()).item()
        assert ratio == pytest.approx(1.0, abs=0.01)
    with pytest.raises(TypeError, match="negative_slope"):
        init.leaky_relu_gain("0.1")


def test_relu_activation_std_against_the_truncated_normal_and_its_slope():
    from scipy import stats

    std = init.relu_activation_std(5, 2.0, input_second_moment=3.0)
    assert std.dtype == torch.float64 and std.shape == (5,)
    # layer 1: z ~ N(0, 2 mult q) = N(0, 12); relu(z) = max(z, 0): its std from scipy's moments
    s = math.sqrt(12.0)
    mean = s * stats.norm.expect(lambda u: max(u, 0.0))
    second = s**2 * stats.norm.expect(lambda u: max(u, 0.0) ** 2)
    assert std[0].item() == pytest.approx(math.sqrt(second - mean**2), rel=1e-7)
    torch.testing.assert_close(
        std[1:] / std[:-1], torch.full((4,), math.sqrt(2.0), dtype=std.dtype)
    )


@pytest.mark.parametrize("mult", [0.5, 1.0, 2.0])
def test_relu_activation_std_predicts_a_wide_network(mult):
    # Width 2048: the measured std is within a few percent of the infinite-width prediction.
    gen = torch.Generator().manual_seed(1)
    model = init.deep_mlp(6, 2048, "relu", "he_normal", gain=math.sqrt(mult), generator=gen)
    x = torch.randn(512, 2048, generator=gen)
    stats = init.layer_statistics(model, x, generator=gen)
    measured = torch.tensor([s.act_std for s in stats], dtype=torch.float64)
    torch.testing.assert_close(measured, init.relu_activation_std(6, mult), rtol=0.05, atol=0)
    with pytest.raises(ValueError, match="mult"):
        init.relu_activation_std(3, 0.0)
    with pytest.raises(ValueError, match="depth"):
        init.relu_activation_std(0, 1.0)


# --- deep_mlp ------------------------------------------------------------------------------


def test_deep_mlp_layout_and_weights_drawn_in_order_from_the_generator():
    model = init.deep_mlp(
        3, 16, "tanh", "xavier_uniform", in_features=5, out_features=4,
        generator=torch.Generator().manual_seed(7),
    )  # fmt: skip
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear", "Tanh", "Linear"]
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(16, 5), (16, 16), (16, 16), (4, 16)]
    gen = torch.Generator().manual_seed(7)
    for m in linears:
        expected = torch.nn.init.xavier_uniform_(torch.empty_like(m.weight), generator=gen)
        torch.testing.assert_close(m.weight.detach(), expected, rtol=0, atol=0)
        assert (m.bias == 0).all() and m.weight.requires_grad
    assert model(torch.zeros(2, 5)).shape == (2, 4)


def test_deep_mlp_gain_dtype_callable_init_and_the_global_rng():
    state = torch.get_rng_state()
    model = init.deep_mlp(
        2, 8, "relu", "he_normal", gain=0.5, dtype=torch.float64,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn from the global RNG
    unit = init.deep_mlp(
        2, 8, "relu", "he_normal", dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    for a, b in zip(model.parameters(), unit.parameters(), strict=True):
        assert a.dtype == torch.float64
        torch.testing.assert_close(a, 0.5 * b)

    def ones_(w, *, gain, generator):
        with torch.no_grad():
            return w.fill_(gain)

    const = init.deep_mlp(1, 3, "sigmoid", ones_, gain=0.2)
    assert (const[0].weight == 0.2).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"activation": "swish"}, ValueError, "activation must be one of"),
        ({"init": "kaiming"}, ValueError, "init must be one of"),
        ({"depth": 0}, ValueError, "depth"),
        ({"width": 2.0}, TypeError, "width"),
        ({"out_features": 0}, ValueError, "out_features"),
        ({"gain": -1.0}, ValueError, "gain"),
    ],
)
def test_deep_mlp_refuses_bad_arguments(kwargs, error, match):
    args = {"depth": 2, "width": 4, "activation": "tanh", "init": "lecun_normal"} | kwargs
    with pytest.raises(error, match=match):
        init.deep_mlp(**args)


def test_every_activation_is_its_torch_function():
    z = torch.linspace(-4, 4, 101, dtype=torch.float64)
    F = torch.nn.functional
    expected = {
        "identity": z,
        "sigmoid": torch.sigmoid(z),
        "tanh": torch.tanh(z),
        "scaled_tanh": 1.7159 * torch.tanh(2 * z / 3),
        "relu": F.relu(z),
        "leaky_relu": F.leaky_relu(z, 0.01),
        "prelu": F.leaky_relu(z, 0.25),  # PReLU starts at slope 0.25
        "elu": F.elu(z),
        "gelu": F.gelu(z),
        "silu": z * torch.sigmoid(z),
        "mish": z * torch.tanh(F.softplus(z)),
    }
    assert set(expected) == set(init.ACTIVATIONS)
    for name, want in expected.items():
        got = init.ACTIVATIONS[name]().double()(z)
        torch.testing.assert_close(got, want, msg=name)
    assert init.ScaledTanh()(torch.tensor([1.0])).item() == pytest.approx(1.0, abs=1e-4)


# --- layer_statistics and friends -----------------------------------------------------------


def _manual_pass(model, x, y=None, g=None):
    """z, a and dL/dz of every layer by an explicit loop with retain_grad (no hooks)."""
    zs, acts, h = [], [], x
    for m in model:
        h = m(h)
        if isinstance(m, torch.nn.Linear):
            h.retain_grad()
            zs.append(h)
            acts.append(None)
        else:
            acts[-1] = h
    loss = torch.nn.functional.cross_entropy(h, y) if y is not None else (h * g).sum()
    loss.backward()
    return zs, acts


def test_layer_statistics_equal_a_manual_pass_with_autograd():
    gen = torch.Generator().manual_seed(3)
    model = init.deep_mlp(
        3, 32, "tanh", "xavier_normal", in_features=8, out_features=5, dtype=torch.float64,
        generator=gen,
    )  # fmt: skip
    x = torch.randn(20, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (20,), generator=gen)
    stats = init.layer_statistics(model, x, y)
    assert all(p.grad is None for p in model.parameters())  # .grad untouched
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())  # removed
    zs, acts = _manual_pass(model, x, y)
    assert len(stats) == 4
    assert [s.activation for s in stats] == ["tanh", "tanh", "tanh", None]
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for s, z, a, lin in zip(stats, zs, acts, linears, strict=True):
        assert s.pre_mean == pytest.approx(z.mean().item(), rel=1e-12)
        assert s.pre_std == pytest.approx(z.std().item(), rel=1e-12)
        assert s.grad_mean == pytest.approx(z.grad.mean().item(), rel=1e-9, abs=1e-15)
        assert s.grad_std == pytest.approx(z.grad.std().item(), rel=1e-9)
        assert s.weight_grad_std == pytest.approx(lin.weight.grad.std().item(), rel=1e-9)
        torch.testing.assert_close(s.grad, z.grad)
        if a is None:
            assert s.act is None and s.act_std is None and s.saturated is None
        else:
            assert s.act_std == pytest.approx(a.std().item(), rel=1e-12)
            assert s.act_mean == pytest.approx(a.mean().item(), rel=1e-9, abs=1e-15)
            assert s.saturated == pytest.approx((a.abs() > 0.99).double().mean().item())
            assert s.dead is None


def test_layer_statistics_injects_a_standard_normal_gradient_without_targets():
    model = init.deep_mlp(2, 16, "relu", "he_normal", generator=torch.Generator().manual_seed(0))
    x = torch.randn(10, 16, generator=torch.Generator().manual_seed(1))
    stats = init.layer_statistics(model, x, generator=torch.Generator().manual_seed(2))
    g = torch.randn(10, 16, generator=torch.Generator().manual_seed(2))
    zs, _ = _manual_pass(model, x, g=g)
    for s, z in zip(stats, zs, strict=True):
        torch.testing.assert_close(s.grad, z.grad)
        assert s.dead == pytest.approx(((z <= 0).all(dim=0)).float().mean().item())
        assert s.saturated is None and s.activation == "relu"


def test_layer_statistics_removes_its_hooks_when_the_model_fails():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    with pytest.raises(RuntimeError):
        init.layer_statistics(model, torch.zeros(2, 3))
    assert not any(m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match=r"nn\.Linear"):
        init.layer_statistics(torch.nn.Tanh(), torch.zeros(2, 3))
    with pytest.raises(TypeError, match="model"):
        init.layer_statistics(lambda x: x, torch.zeros(2, 3))
    with pytest.raises(TypeError, match="x"):
        init.layer_statistics(model, torch.zeros(2, 3, dtype=torch.int64))


def test_layer_statistics_pairs_an_activation_only_with_the_output_it_is_applied_to():
    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.act = torch.nn.Linear(4, 4), torch.nn.ReLU()

        def forward(self, x):
            return self.act(self.lin(x) + x)  # the ReLU sees z + x, not z

    stats = init.layer_statistics(Residual(), torch.randn(3, 4))
    assert stats[0].activation is None and stats[0].act is None


def test_activation_stds_is_the_std_of_every_layers_output():
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(6, 4, generator=gen), torch.randn(3, 6, generator=gen)]
    biases = [torch.randn(6, generator=gen), torch.randn(3, generator=gen)]
    x = torch.randn(5, 4, generator=gen)
    a1 = torch.sigmoid(x @ weights[0].T + biases[0])
    a2 = torch.sigmoid(a1 @ weights[1].T + biases[1])
    got = init.activation_stds(x, weights, biases, "sigmoid")
    torch.testing.assert_close(got, torch.stack([a1.std(), a2.std()]))
    with pytest.raises(ValueError, match="takes 4 inputs but layer 0 has 6"):
        init.activation_stds(x, [weights[0], weights[0]], [biases[0], biases[0]], "tanh")
    with pytest.raises(ValueError, match="same length"):
        init.mlp_from_weights(weights, biases[:1], "tanh")


def test_dead_and_saturated_fractions_on_hand_made_inputs():
    z = torch.tensor([[1.0, 0.0, -1.0, -2.0], [-1.0, 0.0, -3.0, 0.5]])
    assert init.dead_fraction(z).item() == 0.5  # units 2 (z = 0 is dead) and 3
    assert init.dead_fraction(z.double()).dtype == torch.float64
    assert init.dead_fraction(torch.tensor([[-1.0, 2.0]])).item() == 0.5  # a batch of one
    a = torch.tensor([0.995, -0.999, 0.5, 0.0])
    assert init.saturated_fraction(a, "tanh").item() == 0.5
    s = torch.tensor([0.005, 0.5, 0.995, 0.01])
    assert init.saturated_fraction(s, "sigmoid").item() == 0.5  # 0.01 itself is inside
    assert init.saturated_fraction(1.7159 * a, "scaled_tanh").item() == 0.5
    with pytest.raises(ValueError, match="saturating"):
        init.saturated_fraction(a, "relu")
    with pytest.raises(ValueError, match="shape"):
        init.dead_fraction(torch.zeros(4))


def test_initial_loss_is_cross_entropy_and_log_c_for_zero_logits():
    gen = torch.Generator().manual_seed(0)
    model = init.deep_mlp(2, 8, "tanh", "xavier_normal", in_features=3, out_features=7,
                          generator=gen)  # fmt: skip
    x, y = torch.randn(50, 3, generator=gen), torch.randint(0, 7, (50,), generator=gen)
    loss, log_c = init.initial_loss(model, x, y)
    with torch.no_grad():
        assert loss == pytest.approx(torch.nn.functional.cross_entropy(model(x), y).item())
        model[-1].weight.zero_()
    assert log_c == math.log(7)
    assert init.initial_loss(model, x, y)[0] == pytest.approx(math.log(7), rel=1e-6)


def test_update_to_data_ratio_closed_form_and_bad_input():
    before = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    assert init.update_to_data_ratio(before, before + torch.tensor([[0.0, 0.005]])) == (
        pytest.approx(1e-3)
    )
    with pytest.raises(ValueError, match="all zeros"):
        init.update_to_data_ratio(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="same shape"):
        init.update_to_data_ratio(torch.ones(2), torch.ones(3))


def test_update_to_data_ratios_of_sgd_are_lr_times_gradient_over_weight_norms():
    import copy

    gen = torch.Generator().manual_seed(0)
    model = init.deep_mlp(2, 16, "relu", "he_normal", in_features=4, out_features=3,
                          dtype=torch.float64, generator=gen)  # fmt: skip
    twin = copy.deepcopy(model)
    batches = [
        (
            torch.randn(8, 4, generator=gen, dtype=torch.float64),
            torch.randint(0, 3, (8,), generator=gen),
        )
        for _ in range(3)
    ]
    loss_fn = torch.nn.functional.cross_entropy
    ratios = init.update_to_data_ratios(
        model, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1), batches
    )
    assert ratios.shape == (3, 3) and ratios.dtype == torch.float64
    weights = [m.weight for m in twin if isinstance(m, torch.nn.Linear)]
    for step, (x, y) in enumerate(batches):
        grads = torch.autograd.grad(loss_fn(twin(x), y), list(twin.parameters()))
        expected = [
            0.1 * g.norm() / w.norm()
            for g, w in zip(grads[::2], weights, strict=True)  # weights, not biases
        ]
        torch.testing.assert_close(ratios[step], torch.stack(expected).detach())
        with torch.no_grad():
            for p, g in zip(twin.parameters(), grads, strict=True):
                p -= 0.1 * g
