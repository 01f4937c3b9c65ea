"""Lecture 03 exercises: initialization schemes, activation statistics, two derivations.

``he_normal_`` and ``xavier_uniform_`` are stochastic (judged on the distribution of the
weights drawn); ``activation_stds`` (forward hooks), ``dead_fraction`` and the two
derivations, ``relu_activation_std`` and ``leaky_relu_gain``, are deterministic.

In the stochastic ones the answer fills a zero tensor in place from the generator it is
given and returns it, as torch.nn.init does. A weight of shape (out, in) or (out, in, k, k)
has fan_in = in * k * k. Every case has at least 16,384 entries, so that a standard
deviation off by 10% fails with probability far above 0.999 (see ``stats``).
"""

import itertools
import math

import numpy as np
import torch
from scipy import special

from course_utils import initialization
from course_utils.exercises import Case, Exercise, GeneratorSeed, Mistake, register, stats

INIT_FUNCTIONS = (
    "init",
    "kaiming_normal_",
    "kaiming_uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "trunc_normal_",
    "calculate_gain",
)


def _weight_cases(rng):
    """Zero weights of random linear and conv shapes (>= 16,384 entries), gains, seeds."""

    def case(group, shape, dtype=np.float32, gain=1.0):
        args = {"tensor": np.zeros(shape, dtype=dtype), "gain": gain}
        return Case(group, args | {"generator": GeneratorSeed(int(rng.integers(2**31)))})

    def linear_shape():  # fan_in != fan_out, so that swapping them is caught
        fan_out, fan_in = (int(n) for n in rng.choice([128, 192, 256, 384], size=2, replace=False))
        return fan_out, fan_in

    return [
        case("linear weight (out, in), float32", linear_shape()),
        case("linear weight (out, in), float32", linear_shape()),
        case("more outputs than inputs (fan_out > fan_in)", (512, 64)),
        case("gain argument", linear_shape(), gain=float(rng.choice([0.5, 5 / 3]))),
        case("conv weight (out, in, k, k): fan_in = in * k * k", (64, 32, 3, 3)),
        case("float64", linear_shape(), dtype=np.float64),
    ]


def _fans(case):
    return initialization.fan_in_and_fan_out(case.args["tensor"].shape)


def _judge_normal(std_of):
    """A judge for N(0, std^2) weights, std = std_of(fan_in, fan_out, gain): 3 tests."""

    def judge(case, got):
        fan_in, fan_out = _fans(case)
        std = std_of(fan_in, fan_out, case.args["gain"])
        return (
            stats.std_test(got, std, mean=0.0, what="weights")
            or stats.mean_test(got, 0.0, std, what="weights")
            or stats.ks_test(np.asarray(got) / std, special.ndtr, what="weights")
        )

    return judge


def _judge_uniform(bound_of):
    """A judge for U[-a, a] weights, a = bound_of(fan_in, fan_out, gain): 4 tests."""

    def judge(case, got):
        fan_in, fan_out = _fans(case)
        a = bound_of(fan_in, fan_out, case.args["gain"])
        std = a / math.sqrt(3)
        return (
            stats.bounds_test(got, -a, a, what="weights")
            or stats.std_test(got, std, mean=0.0, kurtosis=1.8, what="weights")
            or stats.mean_test(got, 0.0, std, what="weights")
            or stats.ks_test((np.asarray(got) + a) / (2 * a), _uniform_cdf, what="weights")
        )

    return judge


def _uniform_cdf(u):
    """The CDF of U[0, 1]."""
    return np.clip(u, 0.0, 1.0)


# --- known mistakes -------------------------------------------------------------------


def _fill_normal(std_of):
    def fill(tensor, gain=1.0, generator=None):
        fan_in, fan_out = initialization.fan_in_and_fan_out(tensor.shape)
        return tensor.normal_(0.0, std_of(fan_in, fan_out, gain), generator=generator)

    return fill


def _fill_uniform(bound_of):
    def fill(tensor, gain=1.0, generator=None):
        fan_in, fan_out = initialization.fan_in_and_fan_out(tensor.shape)
        bound = bound_of(fan_in, fan_out, gain)
        return tensor.uniform_(-bound, bound, generator=generator)

    return fill


def _he_conv_fan_in_without_kernel(tensor, gain=1.0, generator=None):
    return tensor.normal_(0.0, gain * math.sqrt(2.0 / tensor.shape[1]), generator=generator)


def _xavier_from_zero(tensor, gain=1.0, generator=None):
    fan_in, fan_out = initialization.fan_in_and_fan_out(tensor.shape)
    return tensor.uniform_(0.0, gain * math.sqrt(6.0 / (fan_in + fan_out)), generator=generator)


register(
    Exercise(
        id="03.he_normal_",
        name="he_normal_",
        title="He (Kaiming) normal initialization",
        points=2,
        reference=initialization.he_normal_,
        cases=_weight_cases,
        judge=_judge_normal(lambda fan_in, fan_out, gain: gain * math.sqrt(2.0 / fan_in)),
        forbidden=INIT_FUNCTIONS,
        mistakes=(
            Mistake(
                "He's variance uses fan_in, the number of inputs of each unit "
                "(tensor.shape[1] times the kernel size), not fan_out",
                _fill_normal(lambda fan_in, fan_out, gain: gain * math.sqrt(2.0 / fan_out)),
            ),
            Mistake(
                "2 / fan_in is the variance: the standard deviation is its square root",
                _fill_normal(lambda fan_in, fan_out, gain: gain * 2.0 / fan_in),
            ),
            Mistake(
                "that is LeCun's variance 1 / fan_in: He doubles it because a ReLU zeroes "
                "half of its input",
                _fill_normal(lambda fan_in, fan_out, gain: gain * math.sqrt(1.0 / fan_in)),
            ),
            Mistake(
                "for a conv weight (out, in, k, k) each output sums over in * k * k inputs: "
                "fan_in includes the kernel size",
                _he_conv_fan_in_without_kernel,
            ),
        ),
    ),
    Exercise(
        id="03.xavier_uniform_",
        name="xavier_uniform_",
        title="Xavier (Glorot) uniform initialization",
        points=2,
        reference=initialization.xavier_uniform_,
        cases=_weight_cases,
        judge=_judge_uniform(
            lambda fan_in, fan_out, gain: gain * math.sqrt(6 / (fan_in + fan_out))
        ),
        forbidden=INIT_FUNCTIONS,
        mistakes=(
            Mistake(
                "sqrt(2 / (fan_in + fan_out)) is the standard deviation; a uniform on [-a, a] "
                "has standard deviation a / sqrt(3), so a = sqrt(6 / (fan_in + fan_out))",
                _fill_uniform(
                    lambda fan_in, fan_out, gain: gain * math.sqrt(2 / (fan_in + fan_out))
                ),
            ),
            Mistake(
                "the bound is the square root of 6 / (fan_in + fan_out)",
                _fill_uniform(lambda fan_in, fan_out, gain: gain * 6 / (fan_in + fan_out)),
            ),
            Mistake(
                "the weights must be symmetric around 0: draw from [-a, a], not [0, a]",
                _xavier_from_zero,
            ),
        ),
    ),
)


# --- activation statistics with hooks, dead units, and two derivations ---------------------


def _mlp_case(rng, group, widths, activation, dtype=np.float64, batch=None, bias_shift=0.0):
    """x (N, n_0) and He-scaled weights for layers of these widths; biases N(shift, 0.1^2)."""
    batch = int(rng.integers(8, 33)) if batch is None else batch
    weights = tuple(
        (rng.standard_normal((n_out, n_in)) * math.sqrt(2.0 / n_in)).astype(dtype)
        for n_in, n_out in itertools.pairwise(widths)
    )
    biases = tuple(
        (bias_shift + 0.1 * rng.standard_normal(n_out)).astype(dtype) for n_out in widths[1:]
    )
    x = rng.standard_normal((batch, widths[0])).astype(dtype)
    args = {"x": x, "weights": weights, "biases": biases, "activation": activation}
    return Case(group, args)


def _activation_std_cases(rng):
    def widths(n_layers):
        return [int(n) for n in rng.integers(3, 17, size=n_layers + 1)]

    return [
        _mlp_case(rng, "tanh, 3 layers, float64", widths(3), "tanh"),
        _mlp_case(rng, "relu, 4 layers of different widths, float64", widths(4), "relu"),
        _mlp_case(rng, "sigmoid, 2 layers, float64", widths(2), "sigmoid"),
        _mlp_case(rng, "float32", widths(3), "tanh", dtype=np.float32),
        _mlp_case(rng, "one layer", widths(1), "relu"),
        _mlp_case(rng, "a batch of two", widths(2), "tanh", batch=2),
        # every ReLU of the second layer inactive: its outputs are all 0, std 0
        _mlp_case(rng, "a layer whose ReLUs are all off", widths(2), "relu", bias_shift=-50.0),
    ]


def _forward(x, weights, biases, activation):
    """The outputs z and a of every layer (for the known mistakes)."""
    f = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[activation]
    zs, acts, a = [], [], x
    for w, b in zip(weights, biases, strict=True):
        zs.append(a @ w.T + b)
        a = f(zs[-1])
        acts.append(a)
    return zs, acts


def _std_of_pre_activations(x, weights, biases, activation):
    zs, _ = _forward(x, weights, biases, activation)
    return torch.stack([z.std() for z in zs])


def _mean_of_unit_stds(x, weights, biases, activation):
    _, acts = _forward(x, weights, biases, activation)
    return torch.stack([a.std(dim=0).mean() for a in acts])


def _population_std(x, weights, biases, activation):
    _, acts = _forward(x, weights, biases, activation)
    return torch.stack([a.std(correction=0) for a in acts])


def _dead_cases(rng):
    def z(shape, dtype=np.float64, shift=0.0):
        return (rng.standard_normal(shape) + shift).astype(dtype)

    ties = z((6, 10), shift=-1.0)
    ties[:, :3] = np.minimum(ties[:, :3], 0.0)  # units 0-2: never positive ...
    ties[rng.integers(0, 6), :3] = 0.0  # ... and exactly 0 on one example: dead
    ties[:, 3:] = np.abs(ties[:, 3:])  # the others positive somewhere (unless all 0)
    ties[:, 3] = -np.abs(ties[:, 3])
    ties[0, 3] = 1e-3  # unit 3 positive on one example only: alive
    return [
        Case("random, float64", {"z": z((int(rng.integers(4, 20)), 12), shift=-1.5)}),
        Case("random, float64", {"z": z((int(rng.integers(4, 20)), 7), shift=-2.0)}),
        Case("float32", {"z": z((10, 16), dtype=np.float32, shift=-1.8)}),
        Case("ties: z = 0 exactly (ReLU'(0) = 0 in PyTorch)", {"z": ties}),
        Case("a batch of one", {"z": z((1, 9))}),
        Case("no dead unit", {"z": np.abs(z((5, 6))) + 0.1}),
        Case("every unit dead", {"z": -np.abs(z((5, 6)))}),
    ]


def _dead_strict(z):
    return (~(z >= 0).any(dim=0)).to(z.dtype).mean()


def _inactive_entries(z):
    return (z <= 0).to(z.dtype).mean()


def _dead_on_any_example(z):
    return (z <= 0).any(dim=0).to(z.dtype).mean()


def _relu_std_cases(rng):
    def case(group, mult, q=1.0, depth=None):
        depth = int(rng.integers(3, 12)) if depth is None else depth
        return Case(group, {"depth": depth, "mult": mult, "input_second_moment": q})

    return [
        case("He (mult = 1)", 1.0),
        case("mult < 1: the std shrinks", float(rng.choice([0.5, 0.7, 0.9]))),
        case("mult > 1: the std grows", float(rng.choice([1.5, 2.0, 3.0]))),
        case("inputs with E[x^2] != 1", float(rng.uniform(0.5, 2.0)), q=float(rng.uniform(2, 9))),
        case("depth 1", float(rng.uniform(0.5, 2.0)), depth=1),
    ]


def _rms_not_std(depth, mult, input_second_moment=1.0):
    k = torch.arange(1, depth + 1, dtype=torch.float64)
    return torch.sqrt(input_second_moment * mult**k)


def _std_of_z(depth, mult, input_second_moment=1.0):
    k = torch.arange(1, depth + 1, dtype=torch.float64)
    return torch.sqrt(2 * input_second_moment * mult**k)


def _mult_per_layer_on_the_std(depth, mult, input_second_moment=1.0):
    k = torch.arange(1, depth + 1, dtype=torch.float64)
    return math.sqrt(input_second_moment * (1 - 1 / math.pi)) * mult**k


def _layers_from_zero(depth, mult, input_second_moment=1.0):
    k = torch.arange(0, depth, dtype=torch.float64)
    return torch.sqrt(input_second_moment * (1 - 1 / math.pi) * mult**k)


def _gain_cases(rng):
    return [
        Case("slopes in (0, 1)", {"negative_slope": float(rng.uniform(0.05, 0.95))}),
        Case("slopes in (0, 1)", {"negative_slope": float(rng.uniform(0.05, 0.95))}),
        Case("ReLU: negative_slope = 0", {"negative_slope": 0.0}),
        Case("PyTorch's default slope 0.01", {"negative_slope": 0.01}),
        Case("slope 1: the identity", {"negative_slope": 1.0}),
        Case("slopes above 1", {"negative_slope": float(rng.uniform(1.5, 4.0))}),
    ]


register(
    Exercise(
        id="03.activation_stds",
        name="activation_stds",
        title="The std of every layer's activations, recorded by forward hooks",
        points=2,
        reference=initialization.activation_stds,
        cases=_activation_std_cases,
        mistakes=(
            Mistake(
                "these are the stds of the pre-activations z (the Linear outputs); record the "
                "outputs of the activation modules",
                _std_of_pre_activations,
            ),
            Mistake(
                "that is the mean over units of each unit's std over the batch; take one std "
                "over all entries of the layer's output (batch and units together)",
                _mean_of_unit_stds,
            ),
            Mistake(
                "use the default Tensor.std(), which divides by n - 1 (you divided by n)",
                _population_std,
            ),
        ),
    ),
    Exercise(
        id="03.dead_fraction",
        name="dead_fraction",
        title="The fraction of dead ReLU units on a batch",
        points=1,
        reference=initialization.dead_fraction,
        cases=_dead_cases,
        mistakes=(
            Mistake(
                "z = 0 exactly gives a ReLU output of 0 and a derivative of 0 in PyTorch: a "
                "unit is alive only where z > 0",
                _dead_strict,
            ),
            Mistake(
                "that is the fraction of inactive entries (z <= 0); a unit is dead when it is "
                "inactive on every example of the batch",
                _inactive_entries,
            ),
            Mistake(
                "that counts units inactive on at least one example; a dead unit is inactive "
                "on all of them",
                _dead_on_any_example,
            ),
        ),
    ),
    Exercise(
        id="03.relu_activation_std",
        name="relu_activation_std",
        title="Derive the std of ReLU activations under He-with-mult",
        points=3,
        reference=initialization.relu_activation_std,
        cases=_relu_std_cases,
        rtol=1e-9,
        atol=1e-12,
        mistakes=(
            Mistake(
                "that is the root mean square sqrt(E[a^2]); the std also subtracts E[a]^2, and "
                "for a Gaussian z, E[relu(z)] = std(z) / sqrt(2 pi)",
                _rms_not_std,
            ),
            Mistake(
                "that is the std of the pre-activations z; a ReLU keeps only half of the "
                "second moment, and its output has a nonzero mean",
                _std_of_z,
            ),
            Mistake(
                "mult multiplies the variance per layer; the std grows by sqrt(mult) per layer",
                _mult_per_layer_on_the_std,
            ),
            Mistake(
                "off by one layer: layer 1 already has one factor of mult (its weights are "
                "scaled too); k runs from 1 to depth",
                _layers_from_zero,
            ),
        ),
    ),
    Exercise(
        id="03.leaky_relu_gain",
        name="leaky_relu_gain",
        title="Derive the gain for leaky-ReLU layers",
        points=2,
        reference=initialization.leaky_relu_gain,
        cases=_gain_cases,
        rtol=1e-9,
        atol=1e-12,
        forbidden=("calculate_gain", "init"),
        mistakes=(
            Mistake(
                "2 / (1 + a^2) is the gain squared (the factor on the variance); the gain "
                "multiplies the std",
                lambda negative_slope: 2.0 / (1.0 + negative_slope**2),
            ),
            Mistake(
                "the negative half is scaled by a, so its second moment by a^2: 1 + a^2, not 1 + a",
                lambda negative_slope: math.sqrt(2.0 / (1.0 + negative_slope)),
            ),
        ),
    ),
)
