"""Release: notebooks/ is a fresh, solution-free build of solutions/ that runs unsolved."""

import nbformat
import pytest

from course_utils import exercises, release

from conftest import NOTEBOOKS, SOLUTIONS

SOLUTION_FILES = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
NAMES = [path.name for path in SOLUTION_FILES]


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    return nb


def test_strip_solutions_keeps_the_signature_and_indentation():
    source = (
        "def softmax(z, dim=-1):\n"
        '    """Docstring stays."""\n'
        "    ### BEGIN SOLUTION\n"
        "    secret = z.exp()\n"
        "    return secret / secret.sum()\n"
        "    ### END SOLUTION\n"
    )
    out = release.strip_solutions(source, "softmax")
    assert out == (
        "def softmax(z, dim=-1):\n"
        '    """Docstring stays."""\n'
        '    raise NotImplementedError("softmax: your code here")'
    )


def test_strip_solutions_handles_several_regions_and_rejects_unbalanced_markers():
    source = (
        "### BEGIN SOLUTION\na = 1\n### END SOLUTION\n"
        "b = 2\n"
        "  ### BEGIN SOLUTION\n  c\n  ### END SOLUTION"
    )
    out = release.strip_solutions(source, "x")
    assert out.count("NotImplementedError") == 2 and "a = 1" not in out and "b = 2" in out
    with pytest.raises(ValueError, match="unbalanced"):
        release.strip_solutions("### BEGIN SOLUTION\nx = 1\n", "x")


def test_student_version_drops_solution_only_cells_outputs_and_metadata():
    answer = nbformat.v4.new_code_cell(
        "def softmax(z, dim=-1):\n    ### BEGIN SOLUTION\n    return z\n    ### END SOLUTION",
        metadata={"tags": ["exercise:01.softmax"], "collapsed": True},
        execution_count=3,
        outputs=[nbformat.v4.new_output("stream", text="hi")],
    )
    secret = nbformat.v4.new_code_cell("print('answer key')", metadata={"tags": ["solution-only"]})
    text = nbformat.v4.new_markdown_cell("# Title")
    solution = _notebook(text, answer, secret)
    solution.metadata["widgets"] = {"state": "lots"}

    student = release.student_version(solution, "01_example")
    assert [cell.id for cell in student.cells] == ["c0", "c1"]
    code = student.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert code.metadata == {"tags": ["exercise:01.softmax"]}
    assert 'raise NotImplementedError("softmax: your code here")' in code.source
    # Exactly this metadata: the kernel students open it with, and what the grader reads.
    assert student.metadata == {
        "kernelspec": {
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python"},
        "course": {"assignment": "01_example"},
    }
    assert release.render(student) == release.render(
        release.student_version(solution, "01_example")
    )


def test_notebooks_folder_is_up_to_date():
    assert release.release(SOLUTIONS, NOTEBOOKS, check=True) == []


@pytest.mark.parametrize("name", NAMES)
def test_released_notebook_contains_no_solution_code(name):
    solution = nbformat.read(SOLUTIONS / name, as_version=4)
    student_text = (NOTEBOOKS / name).read_text()
    assert release.BEGIN not in student_text and release.END not in student_text
    for cell in solution.cells:
        if release.SOLUTION_ONLY in cell.metadata.get("tags", []):
            assert cell.source not in student_text
        region = cell.source.partition(release.BEGIN)[2].partition(release.END)[0]
        for line in region.splitlines()[1:]:
            if len(line.strip()) > 12:  # skip trivial lines such as "return out"
                assert line.strip() not in student_text, f"solution line leaked: {line!r}"


@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_has_one_answer_cell_and_a_check(name):
    solution = nbformat.read(SOLUTIONS / name, as_version=4)
    tagged = [release.exercise_id(cell) for cell in solution.cells if release.exercise_id(cell)]
    registered = [ex.id for ex in exercises.for_lecture(name)]
    assert sorted(tagged) == sorted(registered)
    text = "\n".join(cell.source for cell in solution.cells)
    for ex in exercises.for_lecture(name):
        assert f'check("{ex.id}", {ex.name})' in text


# That every unsolved student notebook runs top to bottom without an error and each check
# says "not implemented yet" is tested in tests/browser/ (make test-browser), which runs it
# in JupyterLab anyway: one execution serves both.


@pytest.mark.parametrize("name", NAMES)
def test_setup_cell_runs_pytorch_on_one_thread(name):
    # The stored outputs are reproduced by nbval once, with the default thread count. They
    # are the same on a student's machine with any number of cores because the setup cell (the
    # first code cell) runs PyTorch on one thread; the small networks of the course gain
    # nothing from more, and a waiting second thread on a busy machine costs a lot.
    solution = nbformat.read(SOLUTIONS / name, as_version=4)
    setup = next(cell for cell in solution.cells if cell.cell_type == "code")
    lines = [line.split("#")[0].strip() for line in setup.source.splitlines()]
    assert "torch.set_num_threads(1)" in lines
