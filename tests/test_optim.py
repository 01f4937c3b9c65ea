"""course_utils.optim against torch.optim step by step, plus closed-form checks."""

import functools
import io
import math

import pytest
import torch

from course_utils import optim

STEPS = 120

# (name, constructor kwargs, overrides for param group 1, overrides for param group 2)
CONFIGS = [
    ("SGD", dict(lr=0.05), dict(lr=0.1, weight_decay=0.01), dict(lr=0.02)),
    (
        "SGD",
        dict(lr=0.05, momentum=0.9),
        dict(momentum=0.5, dampening=0.5, weight_decay=0.01),
        dict(momentum=0.0),
    ),
    (
        "SGD",
        dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        dict(momentum=0.7),
        dict(lr=0.01, weight_decay=0.0),
    ),
    (
        "Adagrad",
        dict(lr=0.1, initial_accumulator_value=0.1),
        dict(lr=0.5, weight_decay=0.1),
        dict(eps=1e-3),
    ),
    ("RMSprop", dict(lr=0.01), dict(alpha=0.9, weight_decay=0.01), dict(eps=1e-3)),
    (
        "RMSprop",
        dict(lr=0.01, centered=True, momentum=0.9),
        dict(centered=False, momentum=0.5),
        dict(momentum=0.0, weight_decay=0.1),
    ),
    ("Adadelta", dict(), dict(rho=0.95, weight_decay=0.01), dict(lr=0.5, eps=1e-4)),
    ("Adam", dict(lr=0.01), dict(betas=(0.8, 0.99), weight_decay=0.01), dict(lr=1e-3, eps=1e-6)),
    ("AdamW", dict(lr=0.01), dict(betas=(0.5, 0.9), weight_decay=0.1), dict(weight_decay=0.0)),
]
CONFIG_IDS = [f"{name}-{i}" for i, (name, *_) in enumerate(CONFIGS)]

TOLERANCES = {
    torch.float32: dict(rtol=1e-5, atol=1e-6),
    torch.float64: dict(rtol=1e-12, atol=1e-14),
}


def make_params(seed, dtype):
    """Six leaf tensors of random shapes (1-D to 3-D); the last one never gets a gradient."""
    gen = torch.Generator().manual_seed(seed)
    params = []
    for _ in range(6):
        ndim = int(torch.randint(1, 4, (1,), generator=gen))
        shape = torch.randint(1, 7, (ndim,), generator=gen).tolist()
        params.append(torch.randn(shape, generator=gen, dtype=dtype).requires_grad_())
    return params


def param_groups(params, overrides1, overrides2):
    return [
        {"params": params[0:2]},
        {"params": params[2:4], **overrides1},
        {"params": params[4:6], **overrides2},
    ]


def train(optimizer, params, steps, gen):
    """Noisy quadratic bowl: g = curvature * theta + noise, noise drawn from ``gen``."""
    for _ in range(steps):
        for i, p in enumerate(params[:-1]):
            curvature = 0.5 + 0.5 * i
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            p.grad = curvature * p.detach() + noise
        optimizer.step()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("name", "kwargs", "overrides1", "overrides2"), CONFIGS, ids=CONFIG_IDS)
def test_matches_torch_step_by_step(name, kwargs, overrides1, overrides2, seed, dtype):
    ours = make_params(seed, dtype)
    theirs = make_params(seed, dtype)
    ours_opt = getattr(optim, name)(param_groups(ours, overrides1, overrides2), **kwargs)
    theirs_opt = getattr(torch.optim, name)(
        param_groups(theirs, overrides1, overrides2), foreach=False, **kwargs
    )
    ours_gen = torch.Generator().manual_seed(100 + seed)
    theirs_gen = torch.Generator().manual_seed(100 + seed)
    for step in range(1, STEPS + 1):
        train(ours_opt, ours, 1, ours_gen)
        train(theirs_opt, theirs, 1, theirs_gen)
        close = [
            torch.allclose(a, b, **TOLERANCES[dtype]) for a, b in zip(ours, theirs, strict=True)
        ]
        assert all(close), f"parameters {close} differ from torch after step {step}"
    assert not torch.equal(ours[0], make_params(seed, dtype)[0])  # the run did move
    assert torch.equal(ours[-1], make_params(seed, dtype)[-1])  # no grad, no update


ROUND_TRIP = [(name, kwargs, o1, o2) for name, kwargs, o1, o2 in CONFIGS] + [
    ("DeltaBarDelta", dict(lr=0.01), dict(kappa=0.01, beta=0.5), dict(phi=0.5))
]


@pytest.mark.parametrize(
    ("name", "kwargs", "overrides1", "overrides2"),
    ROUND_TRIP,
    ids=[f"{name}-{i}" for i, (name, *_) in enumerate(ROUND_TRIP)],
)
def test_state_dict_round_trip(name, kwargs, overrides1, overrides2):
    cls = getattr(optim, name)
    gen = torch.Generator().manual_seed(7)
    straight = make_params(0, torch.float64)
    train(cls(param_groups(straight, overrides1, overrides2), **kwargs), straight, 60, gen)

    gen = torch.Generator().manual_seed(7)
    first = make_params(0, torch.float64)
    first_opt = cls(param_groups(first, overrides1, overrides2), **kwargs)
    train(first_opt, first, 30, gen)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in first], "optimizer": first_opt.state_dict()}, buffer)
    del first, first_opt

    buffer.seek(0)
    checkpoint = torch.load(buffer)
    resumed = [p.clone().requires_grad_() for p in checkpoint["params"]]
    resumed_opt = cls(param_groups(resumed, {}, {}), **kwargs)  # groups restored from state
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    train(resumed_opt, resumed, 30, gen)
    for a, b in zip(resumed, straight, strict=True):
        assert torch.equal(a, b)


def test_state_dict_round_trip_is_not_vacuous():
    """Resuming Adam without its state (fresh moments, t = 1) gives different numbers."""
    gen = torch.Generator().manual_seed(7)
    straight = make_params(0, torch.float64)
    train(optim.Adam(straight, lr=0.01), straight, 60, gen)
    gen = torch.Generator().manual_seed(7)
    restarted = make_params(0, torch.float64)
    train(optim.Adam(restarted, lr=0.01), restarted, 30, gen)
    train(optim.Adam(restarted, lr=0.01), restarted, 30, gen)
    assert not torch.allclose(restarted[0], straight[0])


def test_step_returns_closure_loss_and_zero_grad_works():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.Adam([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(5.0)
    assert isinstance(opt, torch.optim.Optimizer)
    opt.zero_grad()
    assert w.grad is None


def test_adam_first_step_is_lr_times_sign():
    """With m_hat_1 = g_1 and v_hat_1 = g_1^2 (eps = 0) the first step is lr * sign(g)."""
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    w.grad = torch.tensor([3.0, -0.2, 1e-3], dtype=torch.float64)
    optim.Adam([w], lr=0.1, eps=0.0).step()
    torch.testing.assert_close(w.detach(), torch.tensor([-0.1, 0.1, -0.1], dtype=torch.float64))


INVALID = [
    ("SGD", dict(lr=-0.1), "lr"),
    ("SGD", dict(lr=0.1, momentum=-0.5), "momentum"),
    ("SGD", dict(lr=0.1, weight_decay=-1.0), "weight_decay"),
    ("SGD", dict(lr=0.1, dampening=2.0), "dampening"),
    ("SGD", dict(lr=0.1, nesterov=True), "nesterov"),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    ("Adagrad", dict(lr=-1.0), "lr"),
    ("Adagrad", dict(eps=-1e-10), "eps"),
    ("Adagrad", dict(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    ("RMSprop", dict(alpha=1.0), "alpha"),
    ("RMSprop", dict(momentum=-0.9), "momentum"),
    ("RMSprop", dict(eps=-1.0), "eps"),
    ("Adadelta", dict(rho=1.5), "rho"),
    ("Adadelta", dict(weight_decay=-0.1), "weight_decay"),
    ("Adam", dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    ("Adam", dict(betas=(0.9, -0.1)), r"betas\[1\]"),
    ("Adam", dict(betas=(0.9,)), "betas"),
    ("Adam", dict(eps=-1e-8), "eps"),
    ("AdamW", dict(lr=-1e-3), "lr"),
    ("AdamW", dict(weight_decay=-0.01), "weight_decay"),
    ("DeltaBarDelta", dict(kappa=-1.0), "kappa"),
    ("DeltaBarDelta", dict(phi=1.5), "phi"),
    ("DeltaBarDelta", dict(beta=1.0), "beta"),
]


@pytest.mark.parametrize(("name", "kwargs", "argument"), INVALID)
def test_invalid_hyperparameters_raise(name, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        getattr(optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)


# ---------------------------------------------------------------- DeltaBarDelta


def test_delta_bar_delta_constant_gradient_grows_rate_linearly():
    """g_t = c for all t: every step after the first agrees, so lr_t = lr + (t - 1) kappa."""
    lr, kappa, steps = 0.01, 0.002, 50
    c = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = optim.DeltaBarDelta([w], lr=lr, kappa=kappa)
    for _ in range(steps):
        w.grad = c.clone()
        opt.step()
    expected_rate = torch.tensor([lr + (steps - 1) * kappa] * 3 + [lr], dtype=torch.float64)
    torch.testing.assert_close(opt.state[w]["lr"], expected_rate)
    total_rate = steps * lr + kappa * steps * (steps - 1) / 2  # sum of lr_t over t
    torch.testing.assert_close(w.detach(), -c * total_rate)


def test_delta_bar_delta_alternating_gradient_shrinks_rate_geometrically():
    """g_t = (-1)^(t+1) c: after the first step the sign always disagrees with gbar."""
    lr, phi, steps = 0.1, 0.2, 30
    c = torch.tensor([1.0, -3.0], dtype=torch.float64)
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = optim.DeltaBarDelta([w], lr=lr, phi=phi, beta=0.7)
    expected_w = torch.zeros(2, dtype=torch.float64)
    for t in range(1, steps + 1):
        g = c * (-1) ** (t + 1)
        w.grad = g.clone()
        opt.step()
        expected_w -= lr * (1 - phi) ** (t - 1) * g
        expected_rate = torch.full((2,), lr * (1 - phi) ** (t - 1), dtype=torch.float64)
        torch.testing.assert_close(opt.state[w]["lr"], expected_rate)
    torch.testing.assert_close(w.detach(), expected_w)


def test_delta_bar_delta_matches_scalar_reference():
    """Jacobs' rule written for one scalar weight at a time, on random gradients."""
    lr, kappa, phi, beta = 0.05, 0.01, 0.3, 0.6
    gen = torch.Generator().manual_seed(3)
    grads = torch.randn(100, 5, generator=gen, dtype=torch.float64) + 0.3
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = optim.DeltaBarDelta([w], lr=lr, kappa=kappa, phi=phi, beta=beta)
    for g in grads:
        w.grad = g.clone()
        opt.step()
    for i in range(5):
        weight, rate, gbar = 0.0, lr, 0.0
        for g in grads[:, i].tolist():
            if gbar * g > 0:
                rate += kappa
            elif gbar * g < 0:
                rate *= 1 - phi
            weight -= rate * g
            gbar = (1 - beta) * g + beta * gbar
        assert w[i].item() == pytest.approx(weight, rel=1e-12)


# ---------------------------------------------------------------- newton_step


def random_quadratic(n, seed):
    """f(x) = 1/2 x^T A x - b^T x with A symmetric positive definite."""
    gen = torch.Generator().manual_seed(seed)
    Q = torch.randn(n, n, generator=gen, dtype=torch.float64)
    A = Q @ Q.T + n * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    x0 = torch.randn(n, generator=gen, dtype=torch.float64)
    return (lambda x: 0.5 * x @ A @ x - b @ x), A, b, x0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_newton_step_solves_quadratic_in_one_step(seed):
    f, A, b, x0 = random_quadratic(6, seed)
    x1 = optim.newton_step(f, x0)
    torch.testing.assert_close(x1, torch.linalg.solve(A, b))
    torch.testing.assert_close(x1, torch.linalg.inv(A) @ b)


def test_damped_newton_step_on_quadratic():
    f, A, b, x0 = random_quadratic(4, 5)
    damping = 2.5
    gradient = A @ x0 - b
    expected = x0 - torch.linalg.inv(A + damping * torch.eye(4, dtype=torch.float64)) @ gradient
    torch.testing.assert_close(optim.newton_step(f, x0, damping=damping), expected)
    assert not torch.allclose(expected, torch.linalg.solve(A, b))  # damping changed the step


def test_newton_iterations_find_rosenbrock_minimum():
    def rosenbrock(x):
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

    x = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    for _ in range(10):
        x = optim.newton_step(rosenbrock, x)
    torch.testing.assert_close(x, torch.tensor([1.0, 1.0], dtype=torch.float64))


def test_newton_step_rejects_bad_arguments():
    with pytest.raises(ValueError, match="x must be a 1-D"):
        optim.newton_step(lambda x: x.sum(), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="damping"):
        optim.newton_step(lambda x: x.sum(), torch.zeros(2), damping=-1.0)
    assert math.isfinite(optim.newton_step(lambda x: (x**2).sum(), torch.ones(3))[0].item())


# ---------------------------------------------------------------- functional one-step updates


def _torch_step(optimizer_cls, param, grad, state, **hyper):
    """One torch.optim step from ``param`` with the given state (after a first step)."""
    p = torch.nn.Parameter(param.clone())
    opt = optimizer_cls([p], foreach=False, **hyper)
    p.grad = grad.clone()
    opt.step()  # creates the state, which we then overwrite and step again from
    with torch.no_grad():
        p.copy_(param)
    for key, value in state.items():
        opt.state[p][key] = value.clone() if torch.is_tensor(value) else value
    p.grad = grad.clone()
    opt.step()
    return p.detach(), opt.state[p]


@pytest.mark.parametrize("seed", range(4))
def test_functional_steps_are_one_torch_optim_step(seed):
    g = torch.Generator().manual_seed(seed)
    p, grad, buf, m = (torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(4))
    sq, delta = (torch.rand(3, 4, generator=g, dtype=torch.float64) for _ in range(2))
    close = functools.partial(torch.testing.assert_close, rtol=1e-12, atol=1e-14)

    want, state = _torch_step(
        torch.optim.SGD, p, grad, {"momentum_buffer": buf}, lr=0.1, momentum=0.9, dampening=0.2
    )
    got_p, got_v = optim.sgd_step(p, grad, buf, 0.1, 0.9, dampening=0.2)
    close(got_p, want), close(got_v, state["momentum_buffer"])

    want, state = _torch_step(
        torch.optim.SGD, p, grad, {"momentum_buffer": buf}, lr=0.1, momentum=0.9, nesterov=True
    )
    got_p, got_v = optim.nesterov_step(p, grad, buf, 0.1, 0.9)
    close(got_p, want), close(got_v, state["momentum_buffer"])

    want, state = _torch_step(torch.optim.Adagrad, p, grad, {"sum": sq}, lr=0.1)
    got_p, got_s = optim.adagrad_step(p, grad, sq, 0.1)
    close(got_p, want), close(got_s, state["sum"])

    want, state = _torch_step(torch.optim.RMSprop, p, grad, {"square_avg": sq}, lr=0.01, alpha=0.9)
    got_p, got_s = optim.rmsprop_step(p, grad, sq, 0.01, 0.9, 1e-8)
    close(got_p, want), close(got_s, state["square_avg"])

    want, state = _torch_step(
        torch.optim.Adadelta, p, grad, {"square_avg": sq, "acc_delta": delta}, lr=0.5, rho=0.8
    )
    got_p, got_v, got_u = optim.adadelta_step(p, grad, sq, delta, 0.5, 0.8)
    close(got_p, want), close(got_v, state["square_avg"]), close(got_u, state["acc_delta"])

    t = 7
    state0 = {"exp_avg": m, "exp_avg_sq": sq, "step": torch.tensor(float(t - 1))}
    want, state = _torch_step(torch.optim.Adam, p, grad, state0, lr=1e-2, betas=(0.8, 0.99))
    got_p, got_m, got_v = optim.adam_step(p, grad, m, sq, t, 1e-2, 0.8, 0.99, 1e-8)
    close(got_p, want), close(got_m, state["exp_avg"]), close(got_v, state["exp_avg_sq"])


def test_functional_steps_leave_their_inputs_alone_unless_in_place():
    p, grad, m, v = (torch.full((3,), x) for x in (1.0, 0.5, 0.1, 0.2))
    before = [t.clone() for t in (p, grad, m, v)]
    new_p, new_m, new_v = optim.adam_step(p, grad, m, v, 3, 0.1)
    assert all(torch.equal(a, b) for a, b in zip((p, grad, m, v), before, strict=True))
    assert not torch.equal(new_p, p) and new_p is not p
    same_p, same_m, same_v = optim.adam_step(p, grad, m, v, 3, 0.1, inplace=True)
    assert same_p is p and same_m is m and same_v is v
    assert torch.equal(p, new_p) and torch.equal(m, new_m) and torch.equal(v, new_v)
    # plain SGD: no velocity, the first velocity is the gradient
    stepped, velocity = optim.sgd_step(torch.zeros(2), torch.ones(2), None, lr=0.5)
    assert torch.equal(stepped, torch.full((2,), -0.5)) and torch.equal(velocity, torch.ones(2))


# --- heavy-ball momentum on a quadratic: momentum_max_lr and momentum_rate ---------------


def _random_hessian(seed, d=3):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    eigenvalues = torch.rand(d, generator=gen, dtype=torch.float64) * 9.0 + 0.5
    return (q * eigenvalues) @ q.T


def _heavy_ball_errors(hessian, lr, momentum, steps):
    """|w_t - w*| for optim.SGD with momentum on 1/2 w^T H w (w* = 0) from a fixed start."""
    w = torch.ones(hessian.shape[0], dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([w], lr=lr, momentum=momentum)
    errors = [w.detach().norm().item()]
    for _ in range(steps):
        w.grad = hessian @ w.detach()
        opt.step()
        errors.append(w.detach().norm().item())
    return torch.tensor(errors, dtype=torch.float64)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_momentum_max_lr_separates_convergence_from_divergence(seed, momentum):
    hessian = _random_hessian(seed)
    limit = optim.momentum_max_lr(hessian, momentum)
    assert limit == pytest.approx(2 * (1 + momentum) / torch.linalg.eigvalsh(hessian)[-1].item())
    below = _heavy_ball_errors(hessian, 0.97 * limit, momentum, 3000)
    above = _heavy_ball_errors(hessian, 1.03 * limit, momentum, 400)
    assert below[-1] < 1e-6 * below[0]
    assert above[-1] > 1e3 * above[0]


def _companion_spectral_radius(hessian, lr, momentum):
    """The spectral radius of the heavy ball's linear map (e_t, e_{t-1}) -> (e_{t+1}, e_t)."""
    d = hessian.shape[0]
    eye = torch.eye(d, dtype=torch.float64)
    top = torch.cat([(1 + momentum) * eye - lr * hessian, -momentum * eye], dim=1)
    bottom = torch.cat([eye, torch.zeros(d, d, dtype=torch.float64)], dim=1)
    return torch.linalg.eigvals(torch.cat([top, bottom])).abs().max().item()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("momentum", [0.0, 0.3, 0.8, 0.95])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9, 1.2])
def test_momentum_rate_is_the_spectral_radius_of_the_iteration(seed, momentum, fraction):
    hessian = _random_hessian(seed, d=4)
    lr = fraction * optim.momentum_max_lr(hessian, momentum)
    want = _companion_spectral_radius(hessian, lr, momentum)
    # a repeated root makes eigvals of the companion matrix accurate only to sqrt(eps)
    assert optim.momentum_rate(hessian, lr, momentum) == pytest.approx(want, rel=1e-6)


def test_momentum_rate_is_the_measured_factor_per_step():
    hessian = torch.diag(torch.tensor([1.0, 50.0], dtype=torch.float64))
    for lr, momentum in [(2 / 51, 0.0), (0.018, 0.5), (0.018, 0.9)]:
        errors = _heavy_ball_errors(hessian, lr, momentum, 400)
        rate = optim.momentum_rate(hessian, lr, momentum)
        # the envelope of the error over the last 100 steps against 100 steps before
        measured = (errors[300:].max() / errors[200:300].max()) ** (1 / 100)
        assert measured.item() == pytest.approx(rate, abs=2e-3)
    # Polyak's parameters: the rate is (sqrt(kappa) - 1) / (sqrt(kappa) + 1) = sqrt(mu)
    kappa = 50.0
    mu = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    lr = 4 / (1 + math.sqrt(kappa)) ** 2
    assert optim.momentum_rate(hessian, lr, mu) == pytest.approx(math.sqrt(mu), rel=1e-6)


@pytest.mark.parametrize(
    "hessian, message",
    [
        (torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64), "symmetric"),
        (-torch.eye(2, dtype=torch.float64), "positive semi-definite"),
        (torch.zeros(2, 2, dtype=torch.float64), "positive semi-definite"),
        (torch.ones(3, dtype=torch.float64), "square matrix"),
        (torch.eye(2, dtype=torch.int64), "floating-point"),
    ],
)
def test_momentum_analysis_refuses_bad_hessians(hessian, message):
    with pytest.raises((ValueError, TypeError), match=message):
        optim.momentum_max_lr(hessian, 0.5)
    with pytest.raises((ValueError, TypeError), match=message):
        optim.momentum_rate(hessian, 0.1, 0.5)


def test_momentum_analysis_refuses_bad_numbers():
    hessian = torch.eye(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="momentum"):
        optim.momentum_max_lr(hessian, 1.0)
    with pytest.raises(ValueError, match="lr"):
        optim.momentum_rate(hessian, 0.0, 0.5)
