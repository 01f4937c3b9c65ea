"""course_utils.regularization: the noise tricks, statistically and on their edges."""

import math

import numpy as np
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


# --- penalties and their gradients -------------------------------------------------------


def _random_params(rng_seed):
    """The parameters of a random small conv + MLP model, float64: weights and vectors."""
    gen = torch.Generator().manual_seed(rng_seed)
    shapes = [(4, 3, 3, 3), (4,), (7, 4), (7,), (2, 7), (2,), ()]
    return [torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True) for s in shapes]


@pytest.mark.parametrize("seed", range(5))
def test_l2_and_l1_penalties_sum_over_the_weights_only(seed):
    params = _random_params(seed)
    weights = [p for p in params if p.dim() >= 2]
    assert len(weights) == 3  # the conv kernel and two matrices; vectors and the scalar are not
    l2 = sum(float((w.detach().numpy() ** 2).sum()) for w in weights)
    l1 = sum(float(abs(w.detach().numpy()).sum()) for w in weights)
    assert reg.l2_penalty(params).item() == pytest.approx(l2, rel=1e-12)
    assert reg.l1_penalty(params).item() == pytest.approx(l1, rel=1e-12)
    assert reg.l2_penalty(iter(params)).item() == pytest.approx(l2, rel=1e-12)  # any iterable
    assert reg.l2_penalty(params).dtype == torch.float64


@pytest.mark.parametrize("seed", range(5))
def test_penalty_gradients_match_autograd(seed):
    params = _random_params(seed)
    auto_l2 = torch.autograd.grad(reg.l2_penalty(params), params, allow_unused=True)
    written = reg.l2_penalty_grad(params)
    auto_l1 = torch.autograd.grad(reg.l1_penalty(params), params, allow_unused=True)
    for p, a2, w2, a1 in zip(params, auto_l2, written, auto_l1, strict=True):
        if p.dim() >= 2:
            torch.testing.assert_close(a2, 2 * p.detach(), rtol=1e-12, atol=0)
            torch.testing.assert_close(w2, a2, rtol=1e-12, atol=0)
            torch.testing.assert_close(a1, p.detach().sign(), rtol=0, atol=0)
        else:  # not in the penalty at all: no gradient, and the written one is 0
            assert a2 is None and a1 is None
            assert torch.equal(w2, torch.zeros_like(p))


def test_penalties_of_nothing_penalized_are_zero_and_bad_input_is_refused():
    b = torch.ones(3, dtype=torch.float64)
    for penalty in (reg.l2_penalty, reg.l1_penalty):
        value = penalty([b, torch.tensor(2.0, dtype=torch.float64)])
        assert value.item() == 0.0 and value.dtype == torch.float64 and value.dim() == 0
        assert penalty([]).item() == 0.0
    with pytest.raises(TypeError, match=r"model\.parameters"):
        reg.l2_penalty(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"params\[1\] must be a torch.Tensor"):
        reg.l2_penalty([b, 3.0])
    with pytest.raises(TypeError, match="floating-point"):
        reg.l1_penalty([torch.ones(2, 2, dtype=torch.int64)])
    with pytest.raises(TypeError, match="iterable of tensors"):
        reg.l2_penalty(3)


def _mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)
    ).double()


@pytest.mark.parametrize(
    ("seed", "momentum", "wd"), [(0, 0.0, 1e-2), (1, 0.9, 1e-3), (2, 0.5, 0.1)]
)
def test_sgd_with_l2_in_the_loss_equals_sgd_with_weight_decay(seed, momentum, wd):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (32,), generator=gen)
    in_loss, decayed = _mlp(seed), _mlp(seed)
    opt_loss = torch.optim.SGD(in_loss.parameters(), lr=0.1, momentum=momentum)
    opt_decay = torch.optim.SGD(
        reg.weight_decay_groups(decayed.parameters(), wd), lr=0.1, momentum=momentum
    )
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(in_loss(x), y)
        loss = loss + wd / 2 * reg.l2_penalty(in_loss.parameters())
        opt_loss.zero_grad()
        loss.backward()
        opt_loss.step()
        opt_decay.zero_grad()
        torch.nn.functional.cross_entropy(decayed(x), y).backward()
        opt_decay.step()
    for a, b in zip(in_loss.parameters(), decayed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # and the decay did something: the biases were left alone, the weights shrank
    plain = _mlp(seed)
    assert not torch.allclose(plain[0].weight, decayed[0].weight)


def test_weight_decay_groups_put_biases_in_a_group_without_decay():
    model = _mlp(0)
    weights, rest = reg.weight_decay_groups(model.parameters(), 0.01)
    assert weights["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    assert [p.shape for p in weights["params"]] == [(8, 3), (2, 8)]
    assert [p.shape for p in rest["params"]] == [(8,), (2,)]
    assert len(reg.weight_decay_groups([torch.ones(2, 2)], 0.1)) == 1  # no empty group
    with pytest.raises(ValueError, match="weight_decay"):
        reg.weight_decay_groups(model.parameters(), -1.0)


@pytest.mark.parametrize("seed", range(4))
def test_sgd_weight_decay_step_is_torch_sgd_with_weight_decay(seed):
    gen = torch.Generator().manual_seed(seed)
    shape = tuple(int(n) for n in torch.randint(1, 6, (2,), generator=gen))
    momentum, wd, lr = [(0.0, 0.1, 0.5), (0.9, 1e-3, 0.1), (0.5, 0.05, 0.2), (0.99, 0.0, 0.01)][
        seed
    ]
    theta = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=lr, momentum=momentum, weight_decay=wd, foreach=False)
    param, velocity = theta.detach().clone(), torch.zeros(shape, dtype=torch.float64)
    for _ in range(4):
        grad = torch.randn(shape, generator=gen, dtype=torch.float64)
        theta.grad = grad.clone()
        opt.step()
        before = param.clone()
        param, velocity = reg.sgd_weight_decay_step(param, grad, velocity, lr, momentum, wd)
        torch.testing.assert_close(param, theta.detach(), rtol=1e-12, atol=1e-14)
        assert not torch.equal(param, before)
    if momentum == 0.0:  # plain SGD: the weights shrink by the factor (1 - lr * wd) each step
        g = torch.randn(shape, generator=gen, dtype=torch.float64)
        new, _ = reg.sgd_weight_decay_step(param, g, velocity, lr, 0.0, wd)
        torch.testing.assert_close(new, (1 - lr * wd) * param - lr * g, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", range(4))
def test_l1_proximal_step_is_the_minimiser_of_the_proximal_objective(seed):
    gen = torch.Generator().manual_seed(seed)
    param = torch.randn(50, generator=gen, dtype=torch.float64)
    grad = torch.randn(50, generator=gen, dtype=torch.float64)
    lr, l1 = 0.3, float(torch.rand((), generator=gen)) * 2
    new = reg.l1_proximal_step(param, grad, lr, l1)
    # brute force: minimise |w - v|^2 / (2 lr) + l1 |w| coordinate by coordinate on a grid
    v = param - lr * grad
    w = torch.linspace(-6, 6, 120_001, dtype=torch.float64)
    objective = (w[None] - v[:, None]) ** 2 / (2 * lr) + l1 * w[None].abs()
    torch.testing.assert_close(new, w[objective.argmin(dim=1)], rtol=0, atol=2e-4)
    torch.testing.assert_close(new, torch.nn.functional.softshrink(v, lr * l1), rtol=0, atol=1e-15)
    # exactly zero inside the threshold, and nowhere else
    assert torch.equal(new == 0, v.abs() <= lr * l1)


def test_l1_subgradient_steps_never_land_on_zero_but_proximal_steps_do():
    gen = torch.Generator().manual_seed(0)
    theta_sub = theta_prox = 1.8 * torch.rand(1000, generator=gen, dtype=torch.float64) - 0.9
    for _ in range(200):  # the loss is 0: only the penalty acts
        zero = torch.zeros_like(theta_sub)
        theta_sub = theta_sub - 0.01 * (zero + 0.5 * theta_sub.sign())
        theta_prox = reg.l1_proximal_step(theta_prox, zero, 0.01, 0.5)
    assert (theta_prox == 0).all()
    assert (theta_sub == 0).sum() == 0 and theta_sub.abs().max() <= 0.005 + 1e-12


# --- early stopping ------------------------------------------------------------------------


def test_early_stopping_epoch_on_curves_with_known_answers():
    def run(values, patience, min_delta=0.0):
        best, stop = reg.early_stopping_epoch(
            torch.tensor(values, dtype=torch.float64), patience, min_delta
        )
        assert best.dtype == stop.dtype == torch.int64
        return int(best), int(stop)

    u_shape = [5.0, 4.0, 3.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0]
    assert run(u_shape, 2) == (3, 5)  # best at 3, two epochs without improvement
    assert run(u_shape, 10) == (3, 8)  # never fires: trained to the last epoch
    assert run([3.0, 2.0, 2.0, 2.0], 2) == (1, 3)  # ties are not improvements
    assert run([3.0, 2.0, 1.95, 1.9, 1.85], 2, min_delta=0.1) == (1, 3)  # too small to count
    assert run([3.0, 2.0, 1.95, 1.8], 3, min_delta=0.1) == (3, 3)  # 2.0 - 0.1 > 1.8
    assert run([3.0, float("nan"), 2.9, float("nan")], 2) == (2, 3)  # NaN never improves
    assert run([1.0], 1) == (0, 0)
    # patience counts from the best, not from the previous epoch
    assert run([3.0, 2.0, 2.5, 2.4, 2.3, 2.2], 3) == (1, 4)


def test_early_stopping_bad_input():
    with pytest.raises(ValueError, match="patience"):
        reg.EarlyStopping(0)
    with pytest.raises(ValueError, match="mode"):
        reg.EarlyStopping(3, mode="up")
    with pytest.raises(ValueError, match="1-D"):
        reg.early_stopping_epoch(torch.ones(2, 2), 1)
    with pytest.raises(TypeError, match="floating-point"):
        reg.early_stopping_epoch(torch.tensor([1, 2]), 1)
    with pytest.raises(ValueError, match="restore"):
        reg.EarlyStopping(3).restore(torch.nn.Linear(1, 1))


def _fit_linear(callbacks, epochs=40):
    """A linear model on noisy data, trained with fit; returns the model, history and the
    weights after every epoch (recorded by a callback that runs first)."""
    from course_utils import training

    gen = torch.Generator().manual_seed(0)
    x, xv = torch.randn(20, 10, generator=gen), torch.randn(200, 10, generator=gen)
    w = torch.randn(10, 1, generator=gen)
    y = x @ w + 2 * torch.randn(20, 1, generator=gen)  # few, noisy points: it overfits
    yv = xv @ w + 2 * torch.randn(200, 1, generator=gen)
    torch.manual_seed(0)
    model = torch.nn.Linear(10, 1)
    snapshots = []

    def record(epoch, history, model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})

    history = training.fit(
        model,
        torch.nn.functional.mse_loss,
        torch.optim.SGD(model.parameters(), lr=0.05),
        (x, y),
        val_data=(xv, yv),
        epochs=epochs,
        batch_size=20,
        callbacks=[record, *callbacks],
        generator=gen,
        progress=False,
    )
    return model, history, snapshots


def test_early_stopping_as_a_fit_callback_stops_and_restores_the_best_weights():
    stopper = reg.EarlyStopping(patience=3)
    model, history, snapshots = _fit_linear([stopper], epochs=400)
    val = history["val_loss"]
    best = min(range(len(val)), key=val.__getitem__)
    assert stopper.best_epoch == best and stopper.stopped_epoch == best + 3 == len(val) - 1
    assert len(val) < 400  # it stopped early
    for key, value in model.state_dict().items():  # the weights are those after the best epoch
        torch.testing.assert_close(value, snapshots[best][key], rtol=0, atol=0)
    assert not torch.equal(snapshots[-1]["weight"], snapshots[best]["weight"])


def test_early_stopping_restore_after_a_run_where_it_never_fired():
    stopper = reg.EarlyStopping(patience=1000, monitor="train_loss")
    model, history, snapshots = _fit_linear([stopper], epochs=15)
    assert stopper.stopped_epoch is None and len(history["train_loss"]) == 15
    stopper.restore(model)
    torch.testing.assert_close(model.weight, snapshots[stopper.best_epoch]["weight"])
    with pytest.raises(ValueError, match="val_acc"):
        _fit_linear([reg.EarlyStopping(2, monitor="val_acc")])


def test_early_stopping_mode_max():
    stopper = reg.EarlyStopping(2, mode="max", min_delta=0.01)
    stops = [stopper.update(v) for v in [0.5, 0.8, 0.805, 0.9, 0.9, 0.85]]
    assert stops == [False, False, False, False, False, True]
    assert stopper.best == 0.9 and stopper.best_epoch == 3 and stopper.stopped_epoch == 5


def test_weight_change_stopping_fires_when_the_largest_change_falls_below_tol():
    model = torch.nn.Linear(3, 1, bias=False)
    stopper = reg.WeightChangeStopping(tol=0.05, window=2)
    for epoch in range(12):
        with torch.no_grad():  # only weight 0 moves, by 0.1 / 2^epoch
            model.weight[0, 0] += 0.1 / 2**epoch
        if stopper(epoch, {}, model):
            break
    # change(t) = |w(t) - w(t - 2)| = 0.1 (2^-t + 2^-(t-1)) = 0.3 / 2^t: below 0.05 from t = 3
    assert stopper.changes[:2] == [None, None]
    assert stopper.changes[2] == pytest.approx(0.3 / 4, rel=1e-5)
    assert stopper.stopped_epoch == 3 and len(stopper.changes) == 4

    relative = reg.WeightChangeStopping(tol=0.5, window=1, relative=True)
    with torch.no_grad():
        model.weight.fill_(2.0)
    assert relative(0, {}, model) is False  # no window yet
    with torch.no_grad():
        model.weight[0, 1] = 3.0
    assert relative(1, {}, model) is True  # change 1, relative to max |w| = 3: 0.33 < 0.5
    assert relative.changes[1] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="tol"):
        reg.WeightChangeStopping(tol=0.0)


# --- mixup -----------------------------------------------------------------------------------


def _mixup_weights_and_partners(n, alpha, seed, num_classes=8):
    """Run mixup on coded examples and read back each example's weight and partner.

    Example i has input (i + 1, 1) and the one-hot target of class i mod num_classes. For a
    convex combination with one weight per example, the target row holds lam_i at its own
    class and 1 - lam_i at the partner's; the partner j then follows from the first input.
    Rows whose partner has the same class carry no weight information and are dropped.
    """
    i = torch.arange(n, dtype=torch.float64)
    x = torch.stack([i + 1, torch.ones(n, dtype=torch.float64)], dim=1)
    classes = torch.arange(n) % num_classes
    y = torch.nn.functional.one_hot(classes, num_classes).double()
    mx, my = reg.mixup(x, y, alpha, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(mx[:, 1], torch.ones(n, dtype=torch.float64))  # convex: 1 stays 1
    torch.testing.assert_close(my.sum(dim=1), torch.ones(n, dtype=torch.float64))
    assert (my >= 0).all() and ((my > 0).sum(dim=1) <= 2).all()  # two examples at most
    lam = my[torch.arange(n), classes]
    # the partner has another class: its weight shows (even 1 - lam = 1e-15 is not 0)
    mixed = (my > 0).sum(dim=1) == 2
    usable = mixed & (lam < 1 - 1e-3)  # a partner far enough to be read back from x
    partner = (mx[usable, 0] - lam[usable] * (i[usable] + 1)) / (1 - lam[usable]) - 1
    assert (partner - partner.round()).abs().max() < 1e-6  # the same weight mixes x and y
    partner = partner.round().long()
    other = my[usable].clone()
    other[torch.arange(int(usable.sum())), classes[usable]] = 0
    assert torch.equal(other.argmax(dim=1), classes[partner])  # y mixed with the same partner
    return lam, mixed, partner


@pytest.mark.parametrize("alpha", [0.2, 1.0, 3.0])
def test_mixup_is_a_convex_combination_with_beta_weights(alpha):
    n = 40_000
    lam, mixed, partner = _mixup_weights_and_partners(n, alpha, seed=int(alpha * 10))
    # rows with a same-class partner are a 1/8 of them, chosen independently of the weights
    assert 0.8 * n < mixed.sum() < 0.95 * n
    ks = stats.kstest(lam[mixed].numpy(), stats.beta(alpha, alpha).cdf)
    assert ks.pvalue > 1e-7
    # the partners are a permutation: every example is used as a partner at most once
    assert partner.unique().numel() == partner.numel()
    # the weights are independent of the example (no pattern along the batch)
    r = np.corrcoef(lam[mixed].numpy(), np.flatnonzero(mixed.numpy()))[0, 1]
    assert abs(r) * math.sqrt(int(mixed.sum())) < 5.33


def test_mixup_is_reproducible_keeps_dtype_and_shapes_and_refuses_bad_input():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 3, 2, 2, generator=gen), torch.rand(6, 4, generator=gen)
    a = reg.mixup(x, y, 0.4, generator=torch.Generator().manual_seed(5))
    b = reg.mixup(x, y, 0.4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == x.shape and a[1].shape == y.shape and a[0].dtype == torch.float32
    soft = reg.mixup(x, torch.rand(6, generator=gen), 1.0)[1]  # soft binary targets (N,)
    assert soft.shape == (6,)
    with pytest.raises(ValueError, match="alpha"):
        reg.mixup(x, y, 0.0)
    with pytest.raises(ValueError, match="same length"):
        reg.mixup(x, y[:5], 0.2)
    with pytest.raises(TypeError, match="y must be a floating-point"):
        reg.mixup(x, torch.arange(6), 0.2)
    with pytest.raises(TypeError, match="generator"):
        reg.mixup(x, y, 0.2, generator=1)


# --- ensembles ---------------------------------------------------------------------------------


def test_ensemble_average_is_the_mean_of_the_members_probabilities():
    gen = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(5, 7, 4, generator=gen, dtype=torch.float64)
    p = reg.ensemble_average(logits)
    expected = sum(torch.nn.functional.softmax(z, dim=1) for z in logits) / 5
    torch.testing.assert_close(p, expected, rtol=1e-12, atol=0)
    # not the softmax of the mean logits (unless the members agree)
    assert not torch.allclose(p, torch.softmax(logits.mean(dim=0), dim=1))
    extreme = torch.tensor([[[1000.0, -1000.0]], [[-1000.0, 1000.0]]], dtype=torch.float64)
    torch.testing.assert_close(reg.ensemble_average(extreme), torch.tensor([[0.5, 0.5]]).double())
    with pytest.raises(ValueError, match="logits"):
        reg.ensemble_average(torch.ones(3))


@pytest.mark.parametrize(("rho", "n"), [(0.0, 4), (0.3, 5), (0.8, 10), (1.0, 3)])
def test_ensemble_mse_matches_the_average_of_correlated_errors(rho, n):
    # errors eps_m = sqrt(rho) * shared + sqrt(1 - rho) * own, each N(0, 1): Var 1, Cov rho
    gen = torch.Generator().manual_seed(int(10 * rho) + n)
    samples = 200_000
    shared = torch.randn(samples, 1, generator=gen, dtype=torch.float64)
    own = torch.randn(samples, n, generator=gen, dtype=torch.float64)
    errors = math.sqrt(rho) * shared + math.sqrt(1 - rho) * own
    mean_sq = (errors.mean(dim=1) ** 2).mean().item()
    predicted = reg.ensemble_mse(1.0, rho, n)
    assert predicted == pytest.approx(rho + (1 - rho) / n)
    # the average of n errors has variance `predicted`; its squares have variance 2 predicted^2
    assert abs(mean_sq - predicted) < 5.33 * math.sqrt(2 / samples) * predicted
    assert reg.ensemble_mse(2.0, 0.5, 1) == 2.0
    with pytest.raises(ValueError, match="n must be >= 1"):
        reg.ensemble_mse(1.0, 0.0, 0)
