"""`check` passes correct answers and names the problem in subtly wrong ones."""

import pytest
import torch

from course_utils import losses
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
