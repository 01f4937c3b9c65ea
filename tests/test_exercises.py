"""The exercise registry is consistent: references pass their own cases, cases are plain data."""

import math

import numpy as np
import pytest
import torch

from course_utils import exercises
from course_utils.exercises import Case, Exercise
from course_utils.exercises.lecture01 import _naive_softmax

exercises._load_all()
ALL = sorted(exercises.REGISTRY)


def _plain(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    if isinstance(value, tuple | list):
        return all(_plain(v) for v in value)
    return isinstance(value, int | float | str | bool) or value is None


@pytest.mark.parametrize("exercise_id", ALL)
def test_reference_passes_its_cases_for_several_seeds(exercise_id):
    ex = exercises.get(exercise_id)
    for seed in (0, 1, exercises.VISIBLE_SEED):
        for case in ex.cases(np.random.default_rng(seed)):
            want = exercises.expected(ex, case)
            assert exercises.compare(ex, case, want, want) is None
            wants = want if isinstance(want, tuple) else (want,)
            assert all(np.isfinite(w).all() for w in wants), (exercise_id, case.group)


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
    assert any(not np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("exercise_id", ALL)
def test_ids_names_and_points(exercise_id):
    ex = exercises.get(exercise_id)
    lecture, short = ex.id.split(".")
    assert len(lecture) == 2 and lecture.isdigit() and short
    assert ex.name.isidentifier() and ex.points > 0
    assert ex in exercises.for_lecture(lecture)


def test_compare_reports_shape_dtype_nan_and_factor_without_expected_values():
    ex = exercises.get("01.softmax")
    case = Case("g", {})
    want = np.array([0.25, 0.75])
    assert "wrong shape" in exercises.compare(ex, case, want, np.zeros(3))
    assert "wrong dtype" in exercises.compare(ex, case, want, want.astype(np.float32))
    assert "NaN" in exercises.compare(ex, case, want, np.array([np.nan, 1.0]))
    message = exercises.compare(ex, case, want, 2 * want)
    assert "2 times the expected" in message
    assert "0.25" not in message and "0.75" not in message
    assert "expected an array" in exercises.compare(ex, case, want, [0.25, 0.75])


def test_diagnose_recognises_a_known_mistake():
    ex = exercises.get("01.softmax")
    case = Case("extreme", {"z": np.array([[1000.0, -1000.0]])})
    got = exercises.run_case(_naive_softmax, case, 1)
    assert "subtract the maximum" in exercises.diagnose(ex, case, got)


def test_forbidden_uses_flags_attributes_and_imports_but_not_own_helpers():
    ex: Exercise = exercises.get("01.log_softmax")
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


# --- lecture 02: the functional step references are exactly one torch.optim step ---------


def _torch_step(optimizer_cls, param, grad, state, **hyper):
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


@pytest.mark.parametrize("seed", range(5))
def test_lecture02_step_references_match_torch_optim(seed):
    from course_utils.exercises import lecture02 as l2

    g = torch.Generator().manual_seed(seed)
    p, grad, buf = (torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(3))
    sq = torch.rand(3, 4, generator=g, dtype=torch.float64)

    want, state = _torch_step(
        torch.optim.SGD, p, grad, {"momentum_buffer": buf}, lr=0.1, momentum=0.9
    )
    got_p, got_v = l2.sgd_momentum_step(p, grad, buf, 0.1, 0.9)
    assert torch.allclose(got_p, want) and torch.allclose(got_v, state["momentum_buffer"])

    want, state = _torch_step(
        torch.optim.SGD, p, grad, {"momentum_buffer": buf}, lr=0.1, momentum=0.9, nesterov=True
    )
    got_p, got_v = l2.nesterov_step(p, grad, buf, 0.1, 0.9)
    assert torch.allclose(got_p, want) and torch.allclose(got_v, state["momentum_buffer"])

    want, state = _torch_step(torch.optim.RMSprop, p, grad, {"square_avg": sq}, lr=0.01, alpha=0.9)
    got_p, got_s = l2.rmsprop_step(p, grad, sq, 0.01, 0.9, 1e-8)
    assert torch.allclose(got_p, want) and torch.allclose(got_s, state["square_avg"])

    t = 7
    m = torch.randn(3, 4, generator=g, dtype=torch.float64)
    state0 = {
        "exp_avg": m,
        "exp_avg_sq": sq,
        "step": torch.tensor(float(t - 1), dtype=torch.float64),
    }
    want, state = _torch_step(torch.optim.Adam, p, grad, state0, lr=1e-2, betas=(0.8, 0.99))
    got_p, got_m, got_v = l2.adam_step(p, grad, m, sq, t, 1e-2, 0.8, 0.99, 1e-8)
    assert torch.allclose(got_p, want)
    assert torch.allclose(got_m, state["exp_avg"]) and torch.allclose(got_v, state["exp_avg_sq"])


def test_lecture02_cosine_reference_matches_torch_scheduler():
    from course_utils.exercises import lecture02 as l2

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12, eta_min=0.01)
    for epoch in range(13):
        assert math.isclose(
            l2.cosine_annealing_lr(epoch, 0.1, 12, 0.01), opt.param_groups[0]["lr"], rel_tol=1e-9
        )
        opt.step()
        sched.step()
