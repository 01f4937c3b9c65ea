"""Common tests over the whole exercise registry: a new lecture's exercises get them for free.

For every exercise: its cases are plain data with the same groups for every seed; its
reference passes its own cases and gives the same output when called twice; every
declared known mistake fails with its own hint; group names that promise a dtype keep
the promise. For every stochastic exercise, over many seeds: the reference never fails
(the false-failure rate) and a 10% error of scale always does (the power).
"""

import numpy as np
import pytest

from course_utils import exercises
from course_utils.exercises import Case, GeneratorSeed, stats
from course_utils.exercises.lecture01 import _naive_softmax

exercises._load_all()
ALL = sorted(exercises.REGISTRY)
STOCHASTIC = [i for i in ALL if exercises.get(i).kind == "stochastic"]
SEEDS = (0, 1, exercises.VISIBLE_SEED)


def _plain(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    if isinstance(value, tuple | list):
        return all(_plain(v) for v in value)
    return isinstance(value, int | float | str | bool | GeneratorSeed) or value is None


@pytest.mark.parametrize("exercise_id", ALL)
def test_the_reference_passes_its_cases_and_is_deterministic(exercise_id):
    # The reference runs twice per case; the second run is judged against the first, so
    # a reference whose output changes from call to call (or ignores its generator) fails.
    ex = exercises.get(exercise_id)
    for seed in SEEDS:
        for case in ex.cases(np.random.default_rng(seed)):
            first, again = exercises.expected(ex, case), exercises.expected(ex, case)
            assert exercises.judge(ex, case, first, again) is None, (exercise_id, case.group)
            outputs = first if ex.kind == "stochastic" else (first,)
            arrays = [a for out in outputs for a in (out if isinstance(out, tuple) else (out,))]
            assert all(np.isfinite(a).all() for a in arrays), (exercise_id, case.group)


@pytest.mark.parametrize("exercise_id", ALL)
def test_cases_are_plain_data_with_the_same_groups_for_every_seed(exercise_id):
    ex = exercises.get(exercise_id)
    groups = None
    for seed in range(5):
        cases = ex.cases(np.random.default_rng(seed))
        assert all(_plain(v) for case in cases for v in case.args.values())
        these = [case.group for case in cases]
        assert groups is None or these == groups
        groups = these
    # Hidden cases differ from the visible ones (a secret seed gives new numbers).
    a = ex.cases(np.random.default_rng(1))[0].args
    b = ex.cases(np.random.default_rng(2))[0].args
    assert any(_differ(a[k], b[k]) for k in a)


def _differ(a, b) -> bool:
    """Two case arguments differ (arrays by value, tuples of arrays element by element)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) != len(b) or any(_differ(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return not np.array_equal(a, b)
    return a != b


def _arrays(values):
    """The arrays among case arguments, inside tuples too."""
    for value in values:
        if isinstance(value, tuple):
            yield from _arrays(value)
        elif isinstance(value, np.ndarray):
            yield value


@pytest.mark.parametrize("exercise_id", ALL)
def test_group_names_that_name_a_dtype_have_arrays_of_that_dtype(exercise_id):
    ex = exercises.get(exercise_id)
    for case in ex.visible_cases():
        floats = [v for v in _arrays(case.args.values()) if v.dtype.kind == "f"]
        for name, dtype in (("float32", np.float32), ("float64", np.float64)):
            if name in case.group:
                assert floats and all(v.dtype == dtype for v in floats), (case.group, ex.id)


@pytest.mark.parametrize("exercise_id", ALL)
def test_ids_names_points_and_kind(exercise_id):
    ex = exercises.get(exercise_id)
    lecture, short = ex.id.split(".")
    assert len(lecture) == 2 and lecture.isdigit() and short
    assert ex.name.isidentifier() and ex.points > 0
    assert ex in exercises.for_lecture(lecture)
    assert ex.reference.__module__.startswith("course_utils.")
    assert not ex.reference.__module__.startswith("course_utils.exercises")  # a topic module
    seeds = [v for c in ex.visible_cases() for v in c.args.values() if isinstance(v, GeneratorSeed)]
    if ex.kind == "stochastic":
        assert len(seeds) == len(ex.visible_cases())  # every case hands the answer a generator
    else:
        assert seeds == []


MISTAKES = [(i, k) for i in ALL for k in range(len(exercises.get(i).mistakes))]


@pytest.mark.parametrize(("exercise_id", "index"), MISTAKES)
def test_every_known_mistake_fails_with_its_own_hint(exercise_id, index):
    ex = exercises.get(exercise_id)
    mistake = ex.mistakes[index]
    hinted = 0
    for case in ex.visible_cases():
        want = exercises.expected(ex, case)
        got = exercises.run_case(ex, mistake.fn, case)
        if exercises.judge(ex, case, want, got) is None:
            continue  # this mistake happens to be right for this case
        hint = exercises.diagnose(ex, case, got)
        assert hint is not None, case.group
        hinted += hint == mistake.message
    assert hinted, f"{mistake.message!r} is never the hint for its own mistake"


def _scaled(output, factor):
    """An output with every floating-point array multiplied by ``factor`` (a wrong scale)."""
    if isinstance(output, tuple):
        return tuple(_scaled(o, factor) for o in output)
    return output * factor if output.dtype.kind == "f" else output


# Per case a correct answer fails with probability < 1e-6, so over the 60 seeds x ~6
# cases below the reference fails anywhere with probability < 1e-3. A scale 10% off must
# fail every time; with the sample sizes the exercises use, it passes a case with
# probability below 1e-30 (see course_utils.exercises.stats).
@pytest.mark.parametrize("exercise_id", STOCHASTIC)
def test_stochastic_judges_reject_no_correct_answer_and_catch_a_10_percent_scale(exercise_id):
    ex = exercises.get(exercise_id)
    false_failures, misses, judged = [], [], 0
    for seed in range(60):
        for case in ex.cases(np.random.default_rng(seed)):
            want = exercises.expected(ex, case)
            if exercises.judge(ex, case, want, want) is not None:
                false_failures.append((seed, case.group))
            for factor in (1.1, 1 / 1.1):
                wrong = _scaled(want[0], factor)
                if exercises.judge(ex, case, want, (wrong, wrong)) is None:
                    misses.append((seed, case.group, factor))
            judged += 1
    assert judged >= 300
    assert false_failures == []
    assert misses == []


@pytest.mark.parametrize("exercise_id", STOCHASTIC)
def test_stochastic_hints_also_match_an_answer_that_draws_in_another_order(exercise_id):
    # The same wrong distribution from another seed: not identical, same distribution.
    ex = exercises.get(exercise_id)
    for mistake in ex.mistakes:
        for case in ex.visible_cases():
            want = exercises.expected(ex, case)
            reseeded = Case(
                case.group,
                {
                    k: GeneratorSeed(v.seed + 1) if isinstance(v, GeneratorSeed) else v
                    for k, v in case.args.items()
                },
            )
            got = exercises.run_case(ex, mistake.fn, reseeded)
            if exercises.judge(ex, case, want, got) is not None:
                assert exercises.diagnose(ex, case, got) == mistake.message, case.group
                break


def test_the_two_draws_of_a_stochastic_answer_must_agree():
    ex = exercises.get("03.he_normal_")
    case = ex.visible_cases()[0]
    want = exercises.expected(ex, case)
    first, _ = want
    assert exercises.judge(ex, case, want, (first, first + 1e-3)).startswith("two calls")
    assert "wrong shape" in exercises.judge(ex, case, want, (first[:2], first[:2]))


def test_min_samples_for_scale_matches_the_documented_numbers():
    assert stats.Z == pytest.approx(5.33, abs=0.005)
    n = stats.min_samples_for_scale(0.1)
    assert 3000 < n < 4000  # so the 16,384-entry cases of lecture 03 are 4x more than enough
    assert stats.min_samples_for_scale(0.1, kurtosis=1.8) < n


def test_statistical_tests_accept_the_truth_and_reject_a_wrong_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 2.0, size=20_000)
    assert stats.std_test(x, 2.0, mean=0.0) is None
    assert "1.1 times" in stats.std_test(1.1 * x, 2.0, mean=0.0)
    assert stats.mean_test(x, 0.0, 2.0) is None
    assert "standard errors" in stats.mean_test(x + 0.5, 0.0, 2.0)
    assert stats.bounds_test(np.clip(x, -1, 1), -1, 1) is None
    assert "lie outside" in stats.bounds_test(x, -1, 1)
    assert stats.rate_test(5000, 10_000, 0.5) is None
    assert "rate" in stats.rate_test(5300, 10_000, 0.5)
    assert stats.correlation_test(x[:10_000], x[10_000:]) is None
    assert "correlated" in stats.correlation_test(x[:10_000], x[:10_000] + x[10_000:])


def test_compare_reports_shape_dtype_nan_and_factor_without_expected_values():
    ex = exercises.get("01.softmax")
    want = np.array([0.25, 0.75])
    assert "wrong shape" in exercises.compare(ex, want, np.zeros(3))
    assert "wrong dtype" in exercises.compare(ex, want, want.astype(np.float32))
    assert "NaN" in exercises.compare(ex, want, np.array([np.nan, 1.0]))
    message = exercises.compare(ex, want, 2 * want)
    assert "2 times the expected" in message
    assert "0.25" not in message and "0.75" not in message
    assert "expected an array" in exercises.compare(ex, want, [0.25, 0.75])
    assert "expected 2 outputs" in exercises.compare(ex, (want, want), (want,))


def test_compare_tolerances_at_their_boundaries():
    # float64 uses the exercise's rtol/atol; float32 at least FLOAT32_TOL.
    ex = exercises.get("01.softmax")  # rtol 1e-6, atol 1e-8
    want = np.array([1.0, 2.0])
    inside = want * (1 + 0.9e-6)
    outside = want * (1 + 1.2e-6)
    assert exercises.compare(ex, want, inside) is None
    assert "outside the tolerance" in exercises.compare(ex, want, outside)
    want32 = want.astype(np.float32)
    assert exercises.compare(ex, want32, (want * (1 + 9e-6)).astype(np.float32)) is None
    assert exercises.compare(ex, want32, (want * (1 + 3e-5)).astype(np.float32)) is not None
    ints = np.array([1, 2, 3])
    assert exercises.compare(ex, ints, ints.copy()) is None
    assert "1 of 3 entries differ" in exercises.compare(ex, ints, np.array([1, 2, 4]))


def test_compare_warns_about_nothing_for_inf_and_nan_answers():
    ex = exercises.get("01.log_softmax")
    want = np.array([-1.0, -2.0])
    with np.errstate(all="raise"):  # any floating-point warning would raise here
        assert "inf" in exercises.compare(ex, want, np.array([-np.inf, np.nan]))
        assert exercises.compare(ex, np.array([-np.inf, 0.0]), np.array([-np.inf, 0.0])) is None


def test_diagnose_recognises_a_known_mistake():
    ex = exercises.get("01.softmax")
    case = Case("extreme", {"z": np.array([[1000.0, -1000.0]])})
    got = exercises.run_case(ex, _naive_softmax, case)
    assert "subtract the maximum" in exercises.diagnose(ex, case, got)


def test_forbidden_uses_flags_attributes_and_imports_but_not_own_helpers():
    ex = exercises.get("01.log_softmax")
    source = (
        "import course_utils.losses\n"
        "from torch.nn.functional import log_softmax as ls\n"
        "def log_softmax(z, dim=-1):\n"
        "    return z.log_softmax(dim) + torch.logsumexp(z, dim)\n"
    )
    found = exercises.forbidden_uses(ex, source)
    assert len(found) == 4, found
    own_helper = (
        "def softmax(z):\n    return z\n\ndef log_softmax(z, dim=-1):\n    return softmax(z)\n"
    )
    assert exercises.forbidden_uses(ex, own_helper) == []


def test_registering_an_id_twice_is_an_error():
    ex = exercises.get("01.softmax")
    with pytest.raises(ValueError, match="registered twice"):
        exercises.register(ex)


def test_lecture_modules_are_found_without_a_list():
    lectures = {ex.id.split(".")[0] for ex in exercises.REGISTRY.values()}
    assert {"01", "02", "03"} <= lectures
