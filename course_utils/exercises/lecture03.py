"""Lecture 03 exercises: initialization schemes (stochastic: judged on the distribution).

The answer fills a zero tensor in place from the generator it is given and returns it,
as torch.nn.init does. A weight of shape (out, in) or (out, in, k, k) has fan_in =
in * k * k. Every case has at least 16,384 entries, so that a standard deviation off by
10% fails with probability far above 0.999 (see ``stats``).
"""

import math

import numpy as np
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
