r"""Lecture 06 exercises: dropout forward (stochastic) and backward, the test-time layer of
standard dropout, the source deck's dropout code fixed, MC dropout, DropConnect, and the
variance shift before a BatchNorm layer.

The stochastic judges never compare with a second draw of the reference; they test what
every correct answer satisfies:

- dropout: every output is 0 or x / (1 - p) (exact), the number kept is
  Binomial(n, 1 - p) (exact test), and the mask bits of neighbouring entries, along the
  batch and along the features, are uncorrelated (a mask shared by the whole batch fails);
- DropConnect: the standardized outputs z = (y - (W x + b)) / sd, with
  sd^2 = p / (1 - p) sum_j W_ij^2 x_j^2, have mean 0 and variance 1 (the variance test is
  given the exact kurtosis, from the cumulants of the Bernoulli sum), and neighbouring
  outputs of one example, and one output of neighbouring examples, are uncorrelated once
  the sign of the covariance that unit dropout or a shared mask would cause is divided
  out;
- MC dropout: with at most 10 droppable inputs the judge enumerates every subnetwork and
  knows the exact mean, variance and fourth moment of each probability; the answer's
  means, standardized by sqrt(var / T), must look like N(0, 1) draws, and its variances
  must be within their exact standard error of the truth, on average over the examples.
"""

import math

import numpy as np
import torch

from course_utils import dropout
from course_utils.exercises import Case, Exercise, GeneratorSeed, Mistake, register, stats

DROPOUT_FUNCTIONS = (
    "dropout",
    "dropout_",
    "Dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_dropout",
    "alpha_dropout",
    "feature_alpha_dropout",
)


def _seed(rng) -> GeneratorSeed:
    return GeneratorSeed(int(rng.integers(2**31)))


def _nonzero(rng, shape, dtype=np.float64):
    """Values of both signs with |x| in [0.5, 2]: a dropped entry (0) is never confused."""
    magnitude = rng.uniform(0.5, 2.0, size=shape)
    return (magnitude * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)


# --- 06.dropout -----------------------------------------------------------------------


def _dropout_cases(rng):
    def case(group, shape, p, dtype=np.float64, training=True):
        args = {"x": _nonzero(rng, shape, dtype), "p": p, "training": training}
        return Case(group, args | {"generator": _seed(rng)})

    rate = float(rng.choice([0.2, 0.3, 0.4]))
    return [
        case("a batch (N, D), float64", (160, 128), rate),
        case("a batch (N, D), float64", (128, 160), float(rng.choice([0.6, 0.7, 0.8]))),
        case("p = 0.5", (128, 128), 0.5),
        case("float32", (128, 144), float(rng.choice([0.1, 0.25])), dtype=np.float32),
        case("3-D input (N, T, D)", (16, 32, 40), float(rng.choice([0.2, 0.5, 0.75]))),
        case("p = 0 keeps everything", (64, 64), 0.0),
        case("eval mode (training=False) is the identity", (64, 80), rate, training=False),
    ]


def _kept(case, got):
    """The kept entries (y != 0) and the problem if some output is neither 0 nor x / (1 - p)."""
    x, p = case.args["x"], case.args["p"]
    got = np.asarray(got, dtype=np.float64)
    scaled = x.astype(np.float64) / (1 - p)
    kept = got != 0
    rtol = 1e-5 if x.dtype == np.float32 else 1e-12
    wrong = int(np.sum(kept & ~np.isclose(got, scaled, rtol=rtol, atol=0.0)))
    if wrong:
        return kept, (
            f"{wrong} of {got.size} outputs are neither 0 (dropped) nor x / (1 - p) (kept)"
        )
    return kept, None


def _judge_dropout(case, got):
    x, p = case.args["x"], case.args["p"]
    if not case.args["training"] or p == 0.0:
        if np.array_equal(got, x):
            return None
        return "with p = 0 or training=False dropout must return x unchanged"
    kept, problem = _kept(case, got)
    if problem:
        return problem
    by_example = kept.reshape(kept.shape[0], -1)  # (N, rest): neighbours across the batch
    by_feature = kept.reshape(-1, kept.shape[-1])  # (rest, D): neighbours across features
    return (
        stats.correlation_test(
            by_example[:-1], by_example[1:], what="mask bits of neighbouring examples"
        )
        or stats.correlation_test(
            by_feature[:, :-1], by_feature[:, 1:], what="mask bits of neighbouring units"
        )
        or stats.rate_test(int(kept.sum()), kept.size, 1 - p, what="entries kept")
    )


def _keep_below_rate(x, p, training=True, generator=None):
    # the deck's code: keep where noise < p, then divide by 1 - p
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) < p) / (1 - p)


def _no_rescale(x, p, training=True, generator=None):
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p)


def _times_keep_probability(x, p, training=True, generator=None):
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p) * (1 - p)


def _one_mask_for_the_batch(x, p, training=True, generator=None):
    if not training or p == 0.0:
        return x
    keep = torch.rand(x.shape[1:], generator=generator, dtype=x.dtype) >= p
    return x * keep / (1 - p)


def _drops_in_eval_mode(x, p, training=True, generator=None):
    return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p) / (1 - p)


# --- 06.dropout_backward, 06.weight_scaled_layer, 06.dropout_from_noise ---------------


def _backward_cases(rng):
    def case(group, shape, p, dtype=np.float64, mask=None):
        grad = rng.standard_normal(shape).astype(dtype)
        if mask is None:
            mask = rng.random(shape) >= p
        return Case(group, {"grad_output": grad, "mask": mask, "p": p})

    return [
        case("random masks, float64", (6, 5), float(rng.choice([0.2, 0.5]))),
        case("random masks, float64", (3, 4, 5), float(rng.choice([0.3, 0.7]))),
        case("float32", (8, 3), 0.25, dtype=np.float32),
        case("p = 0: the gradient passes unchanged", (4, 6), 0.0, mask=np.ones((4, 6), bool)),
        case("every unit dropped", (2, 7), 0.6, mask=np.zeros((2, 7), bool)),
    ]


def _backward_no_rescale(grad_output, mask, p):
    return grad_output * mask


def _backward_ignores_mask(grad_output, mask, p):
    return grad_output / (1 - p)


def _backward_times_keep(grad_output, mask, p):
    return grad_output * mask * (1 - p)


def _layer_cases(rng):
    def case(group, out, inp, p, dtype=np.float64):
        return Case(
            group,
            {
                "weight": rng.standard_normal((out, inp)).astype(dtype),
                "bias": rng.standard_normal(out).astype(dtype),
                "p": p,
            },
        )

    return [
        case("random layers, float64", 4, 6, float(rng.choice([0.2, 0.3]))),
        case("random layers, float64", 3, 5, float(rng.choice([0.6, 0.8]))),
        case("p = 0.5", 5, 2, 0.5),
        case("float32", 2, 3, 0.25, dtype=np.float32),
        case("p = 0: nothing was dropped", 3, 3, 0.0),
    ]


def _layer_scales_bias(weight, bias, p):
    return (1 - p) * weight, (1 - p) * bias


def _layer_times_p(weight, bias, p):
    return p * weight, bias.clone()


def _layer_divides(weight, bias, p):
    return weight / (1 - p), bias.clone()


def _noise_cases(rng):
    def case(group, shape, rate, dtype=np.float64, ties=False):
        noise = rng.random(shape)
        if ties:
            noise.flat[::3] = rate  # noise exactly equal to the rate
        return Case(
            group,
            {"x": _nonzero(rng, shape, dtype), "noise": noise.astype(dtype), "p": rate},
        )

    return [
        case("rates other than 0.5", (5, 8), float(rng.choice([0.1, 0.2, 0.3]))),
        case("rates other than 0.5", (4, 3, 6), float(rng.choice([0.7, 0.8, 0.9]))),
        case("rate 0.5", (6, 6), 0.5),
        case("noise equal to the rate (ties)", (3, 9), 0.25, ties=True),
        case("float32", (7, 5), float(rng.choice([0.25, 0.75])), dtype=np.float32),
    ]


def _noise_deck(x, noise, p):
    return x * (noise < p) / (1 - p)


def _noise_strict(x, noise, p):
    return x * (noise > p) / (1 - p)


def _noise_no_rescale(x, noise, p):
    return x * (noise >= p)


# --- 06.mc_dropout_softmax --------------------------------------------------------------

MC_SAMPLES = 250


def _mc_cases(rng):
    def case(group, n, hidden, classes, p, dtype=np.float64):
        h = (np.abs(rng.standard_normal((n, hidden))) + 0.2).astype(dtype)  # ReLU-like, > 0
        weight = (rng.standard_normal((classes, hidden)) / math.sqrt(hidden)).astype(dtype)
        bias = (0.3 * rng.standard_normal(classes)).astype(dtype)
        args = {"h": h, "weight": weight, "bias": bias, "p": p, "samples": MC_SAMPLES}
        return Case(group, args | {"generator": _seed(rng)})

    return [
        case("p = 0.5, float64", 200, 8, 3, 0.5),
        case("p = 0.5, float64", 200, 6, 5, 0.5),
        case("other rates", 200, 8, 4, float(rng.choice([0.2, 0.3]))),
        case("other rates", 200, 6, 2, float(rng.choice([0.6, 0.7]))),
        case("float32", 200, 8, 3, 0.5, dtype=np.float32),
    ]


def _exact_moments(case):
    """Over all 2^H subnetworks, for q_n = P(class c_n | h_n) with c_n = n mod C (one class
    per example, so the examples stay independent): its mean, variance and 4th central
    moment, and the covariances Cov(q_n, q_n+k) one mask shared by examples n and n + k would
    give, for the lags k = C, 2C, 3C, 4C (pairs of the same class)."""
    h, weight, bias = (
        torch.from_numpy(case.args[k].astype(np.float64)) for k in ("h", "weight", "bias")
    )
    p, n, classes = case.args["p"], h.shape[0], weight.shape[0]
    masks, probs = dropout.subnetwork_masks(h.shape[1], p)  # (K, H), (K,)
    logits = (masks[:, None, :] * h) @ weight.T / (1 - p) + bias  # (K, N, C)
    c = torch.arange(n) % classes
    q = torch.softmax(logits, dim=-1)[:, torch.arange(n), c]  # (K, N)
    w = probs[:, None]
    mean = (w * q).sum(dim=0)
    centred = q - mean
    var = (w * centred**2).sum(dim=0)
    mu4 = (w * centred**4).sum(dim=0)
    lags = range(classes, 5 * classes, classes)
    shared = {k: (w * centred[:, :-k] * centred[:, k:]).sum(dim=0).numpy() for k in lags}
    return mean.numpy(), var.numpy(), mu4.numpy(), c.numpy(), shared


def _judge_mc(case, got):
    mean, std = (np.asarray(g, dtype=np.float64) for g in got)
    T = case.args["samples"]
    exact_mean, var, mu4, classes, shared = _exact_moments(case)
    rows = np.arange(len(classes))
    m, s = mean[rows, classes], std[rows, classes]
    z_mean = (m - exact_mean) / np.sqrt(var / T)
    var_of_s2 = (mu4 - var**2 * (T - 3) / (T - 1)) / T  # exact for the sample variance
    z_var = (s**2 - var) / np.sqrt(var_of_s2)
    # Errors of examples n and n + k are independent; one mask shared by both would
    # correlate them with the sign of their covariance, which is divided out here.
    firsts = np.concatenate([z_mean[:-k] * np.sign(cov) for k, cov in shared.items()])
    seconds = np.concatenate([z_mean[k:] for k in shared])
    return (
        stats.bounds_test(mean, 0.0, 1.0, what="mean probabilities")
        or stats.bounds_test(std, 0.0, 0.5 * math.sqrt(T / (T - 1)), what="standard deviations")
        or stats.correlation_test(firsts, seconds, what="errors of the means of different examples")
        or stats.mean_test(z_mean, 0.0, 1.0, what="standardized errors of the means")
        or stats.std_test(z_mean, 1.0, mean=0.0, what="standardized errors of the means")
        or stats.mean_test(z_var, 0.0, 1.0, what="standardized errors of the variances")
    )


def _mc_passes(h, weight, bias, p, samples, generator):
    keep = torch.rand((samples, *h.shape), generator=generator, dtype=h.dtype) >= p
    return (keep * h / (1 - p)) @ weight.T + bias  # (T, N, C) logits


def _mc_mean_logits(h, weight, bias, p, samples, generator=None):
    logits = _mc_passes(h, weight, bias, p, samples, generator)
    return torch.softmax(logits.mean(dim=0), dim=-1), torch.softmax(logits, dim=-1).std(dim=0)


def _mc_no_rescale(h, weight, bias, p, samples, generator=None):
    keep = torch.rand((samples, *h.shape), generator=generator, dtype=h.dtype) >= p
    probs = torch.softmax((keep * h) @ weight.T + bias, dim=-1)
    return probs.mean(dim=0), probs.std(dim=0)


def _mc_weight_scaled(h, weight, bias, p, samples, generator=None):
    probs = torch.softmax(h @ weight.T + bias, dim=-1)
    return probs, torch.zeros_like(probs)


def _mc_one_mask_per_pass(h, weight, bias, p, samples, generator=None):
    keep = torch.rand((samples, 1, h.shape[1]), generator=generator, dtype=h.dtype) >= p
    probs = torch.softmax((keep * h / (1 - p)) @ weight.T + bias, dim=-1)
    return probs.mean(dim=0), probs.std(dim=0)


# --- 06.dropconnect_linear --------------------------------------------------------------


def _dropconnect_cases(rng):
    def case(group, n, inp, out, p, dtype=np.float64, training=True):
        args = {
            "x": rng.standard_normal((n, inp)).astype(dtype),
            "weight": (rng.standard_normal((out, inp)) / math.sqrt(inp)).astype(dtype),
            "bias": rng.standard_normal(out).astype(dtype),
            "p": p,
            "training": training,
        }
        return Case(group, args | {"generator": _seed(rng)})

    return [
        case("p = 0.5, float64", 256, 32, 64, 0.5),
        case("other rates", 256, 24, 64, float(rng.choice([0.2, 0.3]))),
        case("other rates", 192, 32, 96, float(rng.choice([0.6, 0.7]))),
        case("float32", 256, 32, 64, 0.5, dtype=np.float32),
        case("eval mode (training=False): a plain linear layer", 16, 8, 5, 0.5, training=False),
    ]


def _dropconnect_standardized(case, got):
    """z = (y - (W x + b)) / sd, and the exact mean kurtosis of its entries."""
    x, weight, bias = (case.args[k].astype(np.float64) for k in ("x", "weight", "bias"))
    p, q = case.args["p"], 1 - case.args["p"]
    # y_ni - E[y_ni] = sum_j a_nij (M_nij - q) with a_nij = W_ij x_nj / q: the cumulants of a
    # sum of independent Bernoulli(q) terms, as matrix products (no (N, out, in) array)
    kappa2 = q * p * (x**2 @ (weight**2).T) / q**2  # variance of each output
    kappa4 = q * p * (1 - 6 * q * p) * (x**4 @ (weight**4).T) / q**4  # 4th cumulant
    z = (np.asarray(got, dtype=np.float64) - (x @ weight.T + bias)) / np.sqrt(kappa2)
    return z, float(np.mean(3 + kappa4 / kappa2**2))


def _judge_dropconnect(case, got):
    x, weight, bias = (case.args[k].astype(np.float64) for k in ("x", "weight", "bias"))
    if not case.args["training"]:
        expected = x @ weight.T + bias
        if np.allclose(got, expected, rtol=1e-5, atol=1e-6):
            return None
        return "with training=False the layer must be the plain linear layer x W^T + b"
    z, kurtosis = _dropconnect_standardized(case, got)
    x2 = x**2
    # Dropping input units would correlate outputs i and i+1 of one example with the sign of
    # sum_j W_ij W_i+1,j x_j^2; one mask for the batch would correlate examples n and n+1
    # with the sign of sum_j W_ij^2 x_nj x_n+1,j. Dividing that sign out makes either visible.
    sign_units = np.sign(x2 @ (weight[:-1] * weight[1:]).T)  # (N, out - 1)
    sign_examples = np.sign((x[:-1] * x[1:]) @ (weight**2).T)  # (N - 1, out)
    return (
        stats.mean_test(z, 0.0, 1.0, what="standardized outputs")
        or stats.std_test(z, 1.0, mean=0.0, kurtosis=kurtosis, what="standardized outputs")
        or stats.correlation_test(
            z[:, :-1] * sign_units, z[:, 1:], what="outputs of one example (units i, i+1)"
        )
        or stats.correlation_test(
            z[:-1] * sign_examples, z[1:], what="outputs of neighbouring examples"
        )
    )


def _dropconnect_drops_inputs(x, weight, bias, p, training=True, generator=None):
    if not training:
        return x @ weight.T + bias
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p
    return (keep * x / (1 - p)) @ weight.T + bias


def _dropconnect_one_mask(x, weight, bias, p, training=True, generator=None):
    if not training:
        return x @ weight.T + bias
    keep = torch.rand(weight.shape, generator=generator, dtype=x.dtype) >= p
    return x @ (keep * weight / (1 - p)).T + bias


def _dropconnect_no_rescale(x, weight, bias, p, training=True, generator=None):
    if not training:
        return x @ weight.T + bias
    keep = torch.rand((x.shape[0], *weight.shape), generator=generator, dtype=x.dtype) >= p
    return torch.einsum("noi,ni->no", keep * weight, x) + bias


# --- 06.variance_shift --------------------------------------------------------------------


def _shift_cases(rng):
    def case(group, shape, p, dtype=np.float64, zero_mean=False):
        mean = np.zeros(shape) if zero_mean else 2 * rng.standard_normal(shape)
        var = rng.uniform(0.1, 3.0, size=shape)
        return Case(group, {"mean": mean.astype(dtype), "var": var.astype(dtype), "p": p})

    return [
        case("units with random means and variances, float64", (6,), float(rng.choice([0.2, 0.5]))),
        case("units with random means and variances, float64", (4, 3), 0.7),
        case("zero-mean units", (5,), float(rng.choice([0.3, 0.5])), zero_mean=True),
        case("float32", (8,), 0.25, dtype=np.float32),
        case("p = 0: no shift", (4,), 0.0),
    ]


def _shift_ignores_mean(mean, var, p):
    return torch.ones_like(var) / (1 - p)


def _shift_second_moment(mean, var, p):
    return (var + mean**2) / (1 - p) / var


def _shift_inverted(mean, var, p):
    return var / ((var + mean**2) / (1 - p) - mean**2)


register(
    Exercise(
        id="06.dropout",
        name="dropout",
        title="Inverted dropout, forward",
        points=3,
        reference=dropout.dropout,
        cases=_dropout_cases,
        judge=_judge_dropout,
        forbidden=DROPOUT_FUNCTIONS,
        mistakes=(
            Mistake(
                "dropout keeps a unit with probability 1 - p: keep where the uniform noise "
                "is >= p (keeping where it is < p keeps a fraction p)",
                _keep_below_rate,
            ),
            Mistake(
                "inverted dropout scales the kept units by 1 / (1 - p), so that E[y] = x",
                _no_rescale,
            ),
            Mistake(
                "multiplying by (1 - p) is the test-time rule of standard dropout; inverted "
                "dropout divides the kept units by (1 - p) during training",
                _times_keep_probability,
            ),
            Mistake(
                "in eval mode (training=False) dropout is the identity: return x",
                _drops_in_eval_mode,
            ),
        ),
    ),
    Exercise(
        id="06.dropout_backward",
        name="dropout_backward",
        title="Inverted dropout, backward",
        points=1,
        reference=dropout.dropout_backward,
        cases=_backward_cases,
        forbidden=DROPOUT_FUNCTIONS,
        mistakes=(
            Mistake(
                "the forward pass divided the kept units by (1 - p); so does the gradient",
                _backward_no_rescale,
            ),
            Mistake(
                "a dropped unit did not influence the loss: its gradient is 0 (multiply by "
                "the mask)",
                _backward_ignores_mask,
            ),
            Mistake(
                "the derivative of m x / (1 - p) with respect to x is m / (1 - p), not m (1 - p)",
                _backward_times_keep,
            ),
        ),
    ),
    Exercise(
        id="06.weight_scaled_layer",
        name="weight_scaled_layer",
        title="The test-time layer of standard dropout",
        points=2,
        reference=dropout.weight_scaled_layer,
        cases=_layer_cases,
        n_outputs=2,
        mistakes=(
            Mistake(
                "the bias is added after the masked sum and is never dropped: leave it as it is",
                _layer_scales_bias,
            ),
            Mistake(
                "p is the probability of dropping a unit; the expected mask value is the keep "
                "probability 1 - p",
                _layer_times_p,
            ),
            Mistake(
                "dividing by (1 - p) is what inverted dropout does during training; here the "
                "training pass did not rescale, so the test-time weights shrink",
                _layer_divides,
            ),
        ),
    ),
    Exercise(
        id="06.dropout_from_noise",
        name="dropout_from_noise",
        title="Spot the bug: the deck's dropout code, fixed",
        points=1,
        reference=dropout.dropout_from_noise,
        cases=_noise_cases,
        forbidden=DROPOUT_FUNCTIONS,
        mistakes=(
            Mistake(
                "that is the deck's bug: noise < p happens with probability p, so it keeps "
                "a fraction p of the units",
                _noise_deck,
            ),
            Mistake(
                "keep where noise >= p: then P(drop) = P(noise < p) = p exactly, ties included",
                _noise_strict,
            ),
            Mistake("the kept units are divided by (1 - p)", _noise_no_rescale),
        ),
    ),
    Exercise(
        id="06.mc_dropout_softmax",
        name="mc_dropout_softmax",
        title="MC dropout: mean and spread of T passes",
        points=3,
        reference=dropout.mc_dropout_softmax,
        cases=_mc_cases,
        judge=_judge_mc,
        n_outputs=2,
        forbidden=DROPOUT_FUNCTIONS,
        mistakes=(
            Mistake(
                "average the probabilities of the passes, not their logits: the softmax of "
                "the mean logits is a (normalized) geometric mean, not the ensemble's average",
                _mc_mean_logits,
            ),
            Mistake(
                "each pass uses inverted dropout: divide the kept inputs by (1 - p)",
                _mc_no_rescale,
            ),
            Mistake(
                "that is the weight-scaled (deterministic) prediction: MC dropout keeps "
                "dropout on and averages T passes with fresh masks",
                _mc_weight_scaled,
            ),
        ),
    ),
    Exercise(
        id="06.dropconnect_linear",
        name="dropconnect_linear",
        title="DropConnect, forward",
        points=2,
        reference=dropout.dropconnect_linear,
        cases=_dropconnect_cases,
        judge=_judge_dropconnect,
        forbidden=DROPOUT_FUNCTIONS,
        mistakes=(
            Mistake(
                "that drops input units (dropout): DropConnect drops every weight W_ij "
                "independently, so each output sees its own mask",
                _dropconnect_drops_inputs,
            ),
            Mistake(
                "divide the kept weights by (1 - p), so that E[y] = W x + b",
                _dropconnect_no_rescale,
            ),
        ),
    ),
    Exercise(
        id="06.variance_shift",
        name="variance_shift",
        title="Predict the variance shift before BatchNorm",
        points=2,
        reference=dropout.variance_shift,
        cases=_shift_cases,
        mistakes=(
            Mistake(
                "1 / (1 - p) is the shift of a zero-mean unit; for a unit with mean mu, "
                "dropout also turns part of mu^2 into variance",
                _shift_ignores_mean,
            ),
            Mistake(
                "Var_train is E[y^2] - E[y]^2: subtract mu^2 (E[y] = mu)",
                _shift_second_moment,
            ),
            Mistake("the ratio asked for is Var_train / Var_test (it is >= 1)", _shift_inverted),
        ),
    ),
)
