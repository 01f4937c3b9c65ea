"""`check` passes correct answers and names the problem in subtly wrong ones."""

import math
import warnings

import pytest
import torch

from course_utils import exercises, losses
from course_utils.checks import check, run_check, use


def correct_softmax(z, dim=-1):
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def unstable_softmax(z, dim=-1):
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)


def wrong_axis_softmax(z, dim=-1):
    return correct_softmax(z, dim=0 if z.dim() > 1 and dim in (-1, z.dim() - 1) else -1)


def float64_softmax(z, dim=-1):
    return correct_softmax(z.double(), dim)


def cheating_softmax(z, dim=-1):
    return torch.softmax(z, dim=dim)


def unfinished(z, dim=-1):
    raise NotImplementedError("softmax: your code here")


def test_correct_function_passes():
    report = run_check("01.softmax", correct_softmax)
    assert report.passed, report.text()
    assert "All checks passed" in report.text()


def test_unstable_softmax_fails_on_extreme_logits_and_says_why(capsys):
    report = run_check("01.softmax", unstable_softmax)
    assert report.status == "failed"
    failed = [group for group, failure in report.groups.items() if failure]
    assert failed == ["extreme logits (±1000, 1e4)"]
    text = report.text()
    assert "NaN" in text and "subtract the maximum logit" in text
    check("01.softmax", unstable_softmax)
    assert "FAIL extreme logits" in capsys.readouterr().out


def test_wrong_axis_is_named():
    text = run_check("01.softmax", wrong_axis_softmax).text()
    assert "wrong dimension" in text


def test_wrong_dtype_is_reported():
    text = run_check("01.softmax", float64_softmax).text()
    assert "wrong dtype: expected float32, got float64" in text


def test_forgotten_mean_is_named():
    def summed(logits, target):
        log_p = torch.log(correct_softmax(logits))
        if target.dtype == torch.int64:
            return -log_p[torch.arange(len(target)), target].sum()
        return -(target * log_p).sum()

    text = run_check("01.cross_entropy", summed).text()
    assert "you summed over the batch" in text


def test_forgotten_one_over_n_in_gradient_reports_the_factor():
    def no_mean(logits, target):
        p = correct_softmax(logits)
        if target.dtype == torch.int64:
            target = torch.nn.functional.one_hot(target, logits.shape[1]).to(logits.dtype)
        return p - target

    text = run_check("01.cross_entropy_grad", no_mean).text()
    assert "forgot the 1/N" in text
    assert "times the expected ones" in text


def test_not_implemented_and_forbidden():
    assert run_check("01.softmax", unfinished).status == "not implemented"
    report = run_check("01.softmax", cheating_softmax)
    assert report.status == "forbidden"
    assert "torch.softmax" in report.text()


def test_wrong_return_type_is_reported():
    def returns_list(z, dim=-1):
        return correct_softmax(z, dim).tolist()

    assert (
        "returned a list, expected a torch.Tensor" in run_check("01.softmax", returns_list).text()
    )


def test_exceptions_are_reported_with_type_and_message():
    def crashes(z, dim=-1):
        raise ZeroDivisionError("oops")

    text = run_check("01.softmax", crashes).text()
    assert "raised ZeroDivisionError: oops" in text


def test_use_falls_back_to_the_reference(capsys):
    assert use("01.softmax", correct_softmax) is correct_softmax
    assert use("01.softmax", unfinished) is losses.softmax
    assert "not implemented yet" in capsys.readouterr().out
    assert use("01.softmax", unstable_softmax) is losses.softmax
    assert "does not pass its checks" in capsys.readouterr().out


def test_bad_arguments():
    with pytest.raises(ValueError, match="exercise_id must be one of"):
        run_check("01.nope", correct_softmax)
    with pytest.raises(TypeError, match="fn must be the function"):
        run_check("01.softmax", "softmax")


def test_every_case_of_a_group_runs_until_one_fails():
    # Wrong only on the last case of one group: check must still get there.
    ex = exercises.get("01.softmax")
    group = "random shapes, float64"
    last = torch.from_numpy(
        next(c for c in reversed(ex.visible_cases()) if c.group == group).args["z"]
    )
    calls = []

    def wrong_on_the_last_case(z, dim=-1):
        calls.append(z)
        out = correct_softmax(z, dim)
        return out + 1 if z.shape == last.shape and torch.equal(z, last) else out

    report = run_check("01.softmax", wrong_on_the_last_case)
    assert [g for g, failure in report.groups.items() if failure] == [group]
    assert len(calls) == len(ex.visible_cases())  # no case skipped, none run twice


def test_a_naive_log_softmax_prints_no_warning(capsys):
    def naive(z, dim=-1):
        return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would raise here
        check("01.log_softmax", naive)
    out = capsys.readouterr()
    assert "FAIL extreme logits" in out.out and "Warning" not in out.out + out.err


def test_stochastic_feedback_shows_the_generator_and_no_expected_values():
    def wrong_scale(tensor, gain=1.0, generator=None):
        return tensor.normal_(0.0, 0.5, generator=generator)

    report = run_check("03.he_normal_", wrong_scale)
    text = report.text()
    assert report.status == "failed"
    assert "torch.Generator().manual_seed(" in text and "expected:" not in text
    assert "times the target" in text
    assert "all 0.0 (shape" in text  # the zero input tensor, summarised


def test_an_answer_that_ignores_its_generator_is_told_so():
    def global_rng(tensor, gain=1.0, generator=None):
        fan_in = tensor.shape[1] * math.prod(tensor.shape[2:])
        return tensor.normal_(0.0, gain * math.sqrt(2 / fan_in))  # no generator

    text = run_check("03.he_normal_", global_rng).text()
    assert "two calls with generators in the same state gave different results" in text
