"""course_utils.dropout against torch.nn.Dropout, autograd and closed forms.

Statistical tests use course_utils.exercises.stats, whose tests reject a correct
implementation with probability below 1e-7 each; every random draw here is seeded, so
a run is reproducible.
"""

import math

import numpy as np
import pytest
import torch

from course_utils import dropout as D
from course_utils import exercises
from course_utils.exercises import lecture06 as L
from course_utils.exercises import stats

RATES = (0.1, 0.3, 0.5, 0.7, 0.9)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _nonzero(shape, seed, dtype=torch.float64):
    g = _gen(seed)
    magnitude = 0.5 + 1.5 * torch.rand(shape, generator=g, dtype=dtype)
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).to(dtype)
    return magnitude * sign


# --- dropout ----------------------------------------------------------------------------


@pytest.mark.parametrize("p", RATES)
def test_dropout_keeps_a_fraction_1_minus_p_and_scales_the_kept_units(p):
    x = _nonzero((200, 150), seed=1)
    y = D.dropout(x, p, generator=_gen(2))
    kept = y != 0
    assert stats.rate_test(int(kept.sum()), kept.numel(), 1 - p) is None
    torch.testing.assert_close(y[kept], x[kept] / (1 - p), rtol=1e-12, atol=0)
    wrong = stats.rate_test(int(kept.sum()), kept.numel(), p) if p != 0.5 else "skip"
    assert wrong is not None  # the test can tell 1 - p from p


@pytest.mark.parametrize("p", RATES)
def test_dropout_is_unbiased(p):
    # E[y / x] = 1 and sd(y / x) = sqrt(p / (1 - p)) per entry, over 200,000 entries
    x = _nonzero((500, 400), seed=3)
    ratio = D.dropout(x, p, generator=_gen(4)) / x
    sd = math.sqrt(p / (1 - p))
    assert stats.mean_test(ratio, 1.0, sd) is None
    assert stats.std_test(ratio, sd, mean=1.0, kurtosis=_bernoulli_kurtosis(1 - p)) is None
    assert stats.mean_test(ratio * 1.05, 1.0, sd) is not None  # a 5% bias is caught


def _bernoulli_kurtosis(q):
    return (1 - 6 * q * (1 - q)) / (q * (1 - q)) + 3


def test_dropout_draws_its_mask_from_the_generator_reproducibly():
    x = _nonzero((64, 48), seed=5)
    first = D.dropout(x, 0.4, generator=_gen(7))
    again = D.dropout(x, 0.4, generator=_gen(7))
    other = D.dropout(x, 0.4, generator=_gen(8))
    assert torch.equal(first == 0, again == 0) and torch.equal(first, again)
    assert not torch.equal(first == 0, other == 0)
    # the mask is documented: keep where U[0, 1) noise drawn from the generator is >= p
    noise = torch.rand(x.shape, generator=_gen(7), dtype=x.dtype)
    assert torch.equal(first != 0, noise >= 0.4)
    torch.testing.assert_close(first, D.dropout_from_noise(x, noise, 0.4), rtol=0, atol=0)


def test_dropout_masks_every_entry_independently():
    x = torch.ones(256, 128, dtype=torch.float64)
    kept = (D.dropout(x, 0.5, generator=_gen(9)) != 0).double()
    assert stats.correlation_test(kept[:-1], kept[1:]) is None  # across the batch
    assert stats.correlation_test(kept[:, :-1], kept[:, 1:]) is None  # across units
    shared = (L._one_mask_for_the_batch(x, 0.5, generator=_gen(9)) != 0).double()
    assert stats.correlation_test(shared[:-1], shared[1:]) is not None


def test_p_0_and_eval_mode_return_the_input_itself():
    x = torch.randn(5, 4, generator=_gen(0))
    assert D.dropout(x, 0.0, generator=_gen(1)) is x
    assert D.dropout(x, 0.7, training=False) is x
    module = D.Dropout(0.7).eval()
    assert module(x) is x
    assert torch.nn.functional.dropout(x, 0.7, training=False) is x  # what torch does


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_p_outside_0_1_is_rejected(p):
    x = torch.randn(3)
    with pytest.raises(ValueError, match=r"^p must"):
        D.dropout(x, p)
    with pytest.raises(ValueError, match=r"^p must"):
        D.Dropout(p)
    with pytest.raises(ValueError, match=r"^p must"):
        D.DropConnectLinear(3, 2, p)
    with pytest.raises(ValueError, match=r"^p must"):
        D.dropconnect_linear(x[None], torch.randn(2, 3), None, p)


def test_bad_arguments_get_messages_that_name_them():
    x = torch.randn(4, 3)
    with pytest.raises(TypeError, match=r"^p must be a number"):
        D.dropout(x, "0.5")
    with pytest.raises(TypeError, match=r"^x must be a torch.Tensor"):
        D.dropout(np.ones(3), 0.5)
    with pytest.raises(TypeError, match=r"^x must be a floating-point tensor"):
        D.dropout(torch.ones(3, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match=r"^training must be True or False"):
        D.dropout(x, 0.5, training=1)
    with pytest.raises(TypeError, match=r"^generator must be a torch.Generator"):
        D.dropout(x, 0.5, generator=0)
    with pytest.raises(ValueError, match=r"^x and noise must have the same shape"):
        D.dropout_from_noise(x, torch.rand(3, 4), 0.5)
    with pytest.raises(ValueError, match=r"^weight must have shape"):
        D.dropconnect_linear(x, torch.randn(2, 4), None, 0.5)
    with pytest.raises(ValueError, match=r"^bias must have shape"):
        D.dropconnect_linear(x, torch.randn(2, 3), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"^samples must be >= 2"):
        D.mc_dropout_softmax(x, torch.randn(2, 3), torch.zeros(2), 0.5, 1)
    with pytest.raises(TypeError, match=r"^model must be a torch.nn.Module"):
        D.mc_dropout_predict(lambda x: x, x)
    with pytest.raises(ValueError, match=r"^var must be positive"):
        D.variance_shift(torch.zeros(2), torch.tensor([1.0, 0.0]), 0.5)
    with pytest.raises(ValueError, match=r"^n must be at most 20"):
        D.subnetwork_masks(21, 0.5)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_gradients_flow_only_through_kept_units(p):
    x = _nonzero((30, 20), seed=11).requires_grad_()
    upstream = torch.randn(30, 20, generator=_gen(12), dtype=torch.float64)
    y = D.dropout(x, p, generator=_gen(13))
    (y * upstream).sum().backward()
    keep = y.detach() != 0
    assert torch.all(x.grad[~keep] == 0)
    torch.testing.assert_close(x.grad[keep], upstream[keep] / (1 - p), rtol=1e-12, atol=0)
    torch.testing.assert_close(x.grad, D.dropout_backward(upstream, keep, p), rtol=1e-12, atol=0)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_same_statistics_as_torch_nn_dropout(p):
    x = _nonzero((200, 100), seed=14)
    torch.manual_seed(15)
    theirs = torch.nn.Dropout(p).train()(x)
    ours = D.Dropout(p, generator=_gen(16)).train()(x)
    for y in (theirs, ours):
        kept = y != 0
        assert stats.rate_test(int(kept.sum()), kept.numel(), 1 - p) is None
        torch.testing.assert_close(y[kept], x[kept] / (1 - p), rtol=1e-6, atol=0)
    # the two keep counts agree with each other (two-sample z test for proportions)
    k1, k2, n = int((theirs != 0).sum()), int((ours != 0).sum()), x.numel()
    pooled = (k1 + k2) / (2 * n)
    z = (k1 - k2) / n / math.sqrt(2 * pooled * (1 - pooled) / n)
    assert abs(z) < stats.Z
    both = (theirs != 0) & (ours != 0)
    torch.testing.assert_close(ours[both], theirs[both], rtol=1e-6, atol=0)


def test_dropout_module_matches_torch_in_repr_modes_and_gradients():
    module = D.Dropout(0.25, generator=_gen(0))
    assert repr(module) == "Dropout(p=0.25)" and module.p == 0.25
    x = torch.randn(8, 6, requires_grad=True)
    y = module(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() / 0.75)
    assert module.eval()(x) is x


# --- dropout_from_noise, weight_scaled_layer ---------------------------------------------


def test_dropout_from_noise_keeps_ties_and_drops_below_the_rate():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    noise = torch.tensor([0.1, 0.25, 0.3, 0.9])
    torch.testing.assert_close(
        D.dropout_from_noise(x, noise, 0.25), torch.tensor([0.0, 2.0, 3.0, 4.0]) / 0.75
    )


def test_the_decks_rule_keeps_a_fraction_p_and_is_biased():
    # keep where noise < rate, divide by 1 - rate: E[y] = rate / (1 - rate) * x
    x = torch.ones(100_000, dtype=torch.float64)
    noise = torch.rand(x.shape, generator=_gen(3), dtype=x.dtype)
    for rate in (0.2, 0.8):
        deck = L._noise_deck(x, noise, rate)
        sd = math.sqrt(rate * (1 - rate)) / (1 - rate)
        assert stats.mean_test(deck, rate / (1 - rate), sd) is None
        assert stats.mean_test(D.dropout_from_noise(x, noise, rate), 1.0, sd) is None


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 0.9])
def test_weight_scaled_layer_is_the_exact_expectation_of_standard_dropout(p):
    # E over all 2^6 masks of W (m * x) + b, enumerated, equals W_test x + b_test.
    g = _gen(20)
    weight, bias = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4)
    x = torch.randn(6, generator=g, dtype=torch.float64)
    masks, probs = D.subnetwork_masks(6, p)
    expected = (probs[:, None] * ((masks * x) @ weight.T + bias)).sum(dim=0)
    w_test, b_test = D.weight_scaled_layer(weight, bias.double(), p)
    torch.testing.assert_close(x @ w_test.T + b_test, expected, rtol=1e-12, atol=1e-12)
    assert b_test is not bias and torch.equal(b_test, bias.double())


# --- DropConnect --------------------------------------------------------------------------


def test_dropconnect_linear_is_initialised_and_evaluated_like_nn_linear():
    torch.manual_seed(0)
    ours = D.DropConnectLinear(5, 3, p=0.5)
    torch.manual_seed(0)
    theirs = torch.nn.Linear(5, 3)
    torch.testing.assert_close(ours.weight, theirs.weight)
    torch.testing.assert_close(ours.bias, theirs.bias)
    x = torch.randn(7, 5)
    torch.testing.assert_close(ours.eval()(x), theirs(x))
    torch.testing.assert_close(D.dropconnect_linear(x, ours.weight, ours.bias, 0.0), theirs(x))
    assert "p=0.5" in repr(ours)
    y = D.dropconnect_linear(torch.randn(2, 4, 5), ours.weight, None, 0.3, generator=_gen(1))
    assert y.shape == (2, 4, 3)


def test_dropconnect_masks_each_weight_of_each_example():
    # Reproduce the documented mask: U[0, 1) noise of shape (N, out, in), kept where >= p.
    g = _gen(30)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 5, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64)
    y = D.dropconnect_linear(x, weight, bias, 0.4, generator=_gen(31))
    keep = torch.rand((6, 4, 5), generator=_gen(31), dtype=torch.float64) >= 0.4
    manual = torch.stack([(keep[n] * weight) @ x[n] / 0.6 + bias for n in range(6)])
    torch.testing.assert_close(y, manual, rtol=1e-12, atol=1e-12)
    # gradients reach only the kept weights (summed over examples)
    w = weight.clone().requires_grad_()
    upstream = torch.randn(6, 4, generator=g, dtype=torch.float64)
    (D.dropconnect_linear(x, w, bias, 0.4, generator=_gen(31)) * upstream).sum().backward()
    expected = torch.einsum("no,noi,ni->oi", upstream, keep.double(), x) / 0.6
    torch.testing.assert_close(w.grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.7])
def test_dropconnect_mean_variance_and_independence(p):
    # the exercise's judge: E[y] = W x + b, Var(y_i) = p/(1-p) sum_j W_ij^2 x_j^2,
    # independent outputs; it rejects dropout of inputs and a mask shared by the batch
    rng = np.random.default_rng(0)
    case = L._dropconnect_cases(rng)[0]
    case = exercises.Case(case.group, case.args | {"p": p})
    ex = exercises.get("06.dropconnect_linear")
    for fn, ok in (
        (D.dropconnect_linear, True),
        (L._dropconnect_drops_inputs, False),
        (L._dropconnect_one_mask, False),
        (L._dropconnect_no_rescale, False),
    ):
        out = exercises.run_case(ex, fn, case)[0]
        assert (L._judge_dropconnect(case, out) is None) == ok, fn.__name__


def test_dropconnect_module_trains_with_fresh_masks_and_its_generator():
    layer = D.DropConnectLinear(4, 3, p=0.5, generator=_gen(3))
    x = torch.randn(2, 4)
    first, second = layer(x), layer(x)
    assert not torch.equal(first, second)
    layer.generator.manual_seed(3)
    torch.testing.assert_close(layer(x), first)


# --- the ensemble of subnetworks ------------------------------------------------------------


def test_subnetwork_masks_lists_every_mask_once_with_its_probability():
    masks, probs = D.subnetwork_masks(5, 0.3)
    assert masks.shape == (32, 5) and probs.shape == (32,)
    assert len({tuple(row.tolist()) for row in masks}) == 32
    kept = masks.sum(dim=1)
    torch.testing.assert_close(probs, 0.7**kept * 0.3 ** (5 - kept))
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=torch.float64))
    _, uniform = D.subnetwork_masks(4, 0.5)
    torch.testing.assert_close(uniform, torch.full((16,), 1 / 16, dtype=torch.float64))


def test_ensemble_means_against_their_definitions():
    g = _gen(40)
    log_probs = torch.log_softmax(torch.randn(6, 3, 4, generator=g, dtype=torch.float64), -1)
    w = torch.rand(6, generator=g, dtype=torch.float64)
    w = w / w.sum()
    arithmetic, geometric = D.ensemble_means(log_probs, w)
    P = log_probs.exp()
    torch.testing.assert_close(arithmetic, sum(w[k] * P[k] for k in range(6)))
    product = math.prod(P[k] ** w[k] for k in range(6))
    torch.testing.assert_close(geometric, product / product.sum(-1, keepdim=True))
    one, one_g = D.ensemble_means(log_probs[:1], torch.ones(1, dtype=torch.float64))
    torch.testing.assert_close(one, P[0])
    torch.testing.assert_close(one_g, P[0])
    with pytest.raises(ValueError, match=r"^weights must be non-negative and sum to 1"):
        D.ensemble_means(log_probs, 2 * w)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_weight_scaling_is_the_exact_geometric_mean_of_a_softmax_layer(p):
    # softmax(W h + b) (inverted dropout: the trained weights at test time) equals the
    # normalized geometric mean over all 2^H masks, weighted by their probabilities,
    # and differs from the arithmetic mean.
    g = _gen(41)
    h = torch.rand(5, 7, generator=g, dtype=torch.float64) + 0.1
    weight = 2 * torch.randn(3, 7, generator=g, dtype=torch.float64)
    bias = torch.randn(3, generator=g, dtype=torch.float64)
    masks, probs = D.subnetwork_masks(7, p)
    log_probs = torch.log_softmax((masks[:, None, :] * h) @ weight.T / (1 - p) + bias, -1)
    arithmetic, geometric = D.ensemble_means(log_probs, probs)
    torch.testing.assert_close(geometric, torch.softmax(h @ weight.T + bias, -1))
    assert (arithmetic - geometric).abs().max() > 1e-3


# --- MC dropout ---------------------------------------------------------------------------


def test_mc_dropout_softmax_estimates_the_arithmetic_mean_and_the_spread():
    ex = exercises.get("06.mc_dropout_softmax")
    for seed in range(3):
        for case in ex.cases(np.random.default_rng(seed)):
            first, again = exercises.expected(ex, case)
            assert L._judge_mc(case, first) is None, case.group
            for f, a in zip(first, again, strict=True):
                np.testing.assert_array_equal(f, a)  # reproducible from the generator


def test_mc_judge_rejects_wrong_averages_and_shared_masks():
    ex = exercises.get("06.mc_dropout_softmax")
    case = ex.visible_cases()[0]
    for wrong in (
        L._mc_mean_logits,
        L._mc_no_rescale,
        L._mc_weight_scaled,
        L._mc_one_mask_per_pass,
    ):
        out = exercises.run_case(ex, wrong, case)[0]
        assert L._judge_mc(case, out) is not None, wrong.__name__


def test_mc_dropout_predict_keeps_batchnorm_in_eval_mode_and_restores_modes():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(6)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 6),
        bn,
        torch.nn.ReLU(),
        D.Dropout(0.5, generator=_gen(1)),
        torch.nn.Linear(6, 3),
    )
    model.train()
    x = torch.randn(10, 4)
    running = bn.running_mean.clone()
    mean, std = D.mc_dropout_predict(model, x, samples=50)
    assert torch.equal(bn.running_mean, running)  # BN was not in train mode
    assert all(m.training for m in model.modules())  # modes restored
    assert mean.shape == std.shape == (10, 3) and not mean.requires_grad
    torch.testing.assert_close(mean.sum(dim=1), torch.ones(10))
    assert (std > 0).any()  # (an example whose hidden units are all 0 has none)
    # without dropout every pass is the eval-mode model: std 0, mean = softmax(model(x))
    plain = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).eval()
    mean, std = D.mc_dropout_predict(plain, x, samples=3)
    torch.testing.assert_close(mean, torch.softmax(plain(x), -1))
    assert torch.all(std == 0) and not plain.training


def test_mc_dropout_predict_matches_the_exact_ensemble_of_a_softmax_layer():
    g = _gen(50)
    h = torch.rand(40, 6, generator=g, dtype=torch.float64) + 0.1
    layer = torch.nn.Linear(6, 3).double()
    model = torch.nn.Sequential(D.Dropout(0.5, generator=_gen(51)), layer)
    masks, probs = D.subnetwork_masks(6, 0.5)
    with torch.no_grad():
        log_probs = torch.log_softmax(layer(masks[:, None, :] * h / 0.5), -1)
        exact = (probs[:, None, None] * log_probs.exp()).sum(0)
        sd = ((probs[:, None, None] * (log_probs.exp() - exact) ** 2).sum(0)).sqrt()
    T = 500
    mean, std = D.mc_dropout_predict(model, h, samples=T)
    z = ((mean - exact) / (sd / math.sqrt(T)))[:, 0]  # one class: independent examples
    assert stats.mean_test(z, 0.0, 1.0) is None
    assert stats.std_test(z, 1.0, mean=0.0) is None
    torch.testing.assert_close(std, sd, rtol=0.25, atol=1e-3)  # T = 500: within ~5%


# --- variance shift -------------------------------------------------------------------------


def test_variance_shift_closed_form_matches_a_simulation_and_batchnorm():
    g = _gen(60)
    mu = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
    sigma = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    x = mu + sigma * torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    for p in (0.0, 0.2, 0.5):
        ratio = D.variance_shift(mu, sigma**2, p)
        y = D.dropout(x, p, generator=g)
        measured = y.var(dim=0) / x.var(dim=0)
        torch.testing.assert_close(measured, ratio, rtol=0.03, atol=0)
        # a BatchNorm layer in train mode records the shifted variance
        bn = torch.nn.BatchNorm1d(3, momentum=None).double()  # cumulative average
        for batch in y.split(10_000):
            bn(batch)
        torch.testing.assert_close(bn.running_var / sigma**2, ratio, rtol=0.03, atol=0)
    torch.testing.assert_close(
        D.variance_shift(torch.zeros(2), torch.ones(2), 0.5), torch.full((2,), 2.0)
    )
