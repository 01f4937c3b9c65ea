"""The Makefile picks a supported Python by itself and refuses others in one sentence.

Nothing is installed: the interpreters are fake (shell scripts that print what the real
ones would), on a PATH that holds only them and the few tools the recipes call.
"""

import os
import re
import shutil
import subprocess
import tomllib

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from conftest import ROOT

MAKE = shutil.which("make")
TOOLS = ["sh", "head", "date", "touch", "cksum", "cut", "id"]


def _requires_python():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]


def _fake_python(path, description="CPython 3.12.1", works=True):
    """An executable that answers the Makefile's probe like a real interpreter would."""
    if works:
        body = f'case "$1" in -c) echo "{description}" ;; -V) echo "Python fake" ;; esac\n'
    else:  # like a pyenv shim for a version that is not activated
        body = f'echo "pyenv: {path.name}: command not found" >&2\nexit 127\n'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def bin_dir(tmp_path):
    """A PATH directory with the tools the recipes need and no Python at all."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return bin_dir


def _make(bin_dir, *args):
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHON", "MAKEFLAGS", "MFLAGS"}}
    env["PATH"] = str(bin_dir)
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _refusal(result):
    """The sentence the Makefile stopped with (make adds its own '*** Error' line)."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if "***" not in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_newest_suitable_python_on_path_is_chosen(bin_dir):
    for name, version in [
        ("python3.13", "3.13.2"),
        ("python3.12", "3.12.8"),
        ("python3.11", "3.11.9"),
        ("python3", "3.11.9"),
    ]:
        _fake_python(bin_dir / name, f"CPython {version}")
    assert _make(bin_dir, "-s", "which-python").stdout == "python3.13\n"
    (bin_dir / "python3.13").unlink()
    assert _make(bin_dir, "-s", "which-python").stdout == "python3.12\n"


def test_a_python_that_does_not_run_or_is_too_old_is_skipped(bin_dir):
    _fake_python(bin_dir / "python3.13", works=False)
    _fake_python(bin_dir / "python3.12", works=False)
    _fake_python(bin_dir / "python3.11", "CPython 3.11.2")
    _fake_python(bin_dir / "python3", "CPython 3.12.3")
    result = _make(bin_dir, "-s", "which-python")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "python3\n"


@pytest.mark.parametrize(
    "description",
    [
        "CPython 3.9.18",
        "CPython 3.10.14",
        "CPython 3.11.0",
        "CPython 3.11.4",
        "CPython 3.11.5",
        "CPython 3.11.10",
        "CPython 3.12.0",
        "CPython 3.13.0",
        "CPython 3.13.11",
        "CPython 3.14.0",
        "CPython 3.20.1",
        "CPython 4.0.0",
        "PyPy 3.11.13",
    ],
)
def test_accepted_versions_are_exactly_requires_python(bin_dir, description):
    implementation, version = description.split()
    expected = implementation == "CPython" and Version(version) in SpecifierSet(_requires_python())
    _fake_python(bin_dir / "python3", description)
    result = _make(bin_dir, "-s", "which-python")
    assert (result.returncode == 0) == expected, result.stderr
    if not expected:
        assert description in _refusal(result)


def test_requires_python_is_the_range_the_refusal_names():
    assert SpecifierSet(_requires_python()) == SpecifierSet(">=3.11.5,<3.14")


def test_no_suitable_python_stops_before_anything_is_created(bin_dir, tmp_path):
    """Debian 12's own Python 3.11.2 is too old for the lock (soupsieve needs 3.11.5)."""
    _fake_python(bin_dir / "python3.11", "CPython 3.11.2")
    _fake_python(bin_dir / "python3", "CPython 3.11.2")
    _fake_python(bin_dir / "python3.13", works=False)
    venv = tmp_path / "venv"
    sentence = _refusal(_make(bin_dir, "env", f"VENV={venv}"))
    assert not venv.exists()
    assert "python3.11 is CPython 3.11.2" in sentence
    assert "python3.13 is not runnable (pyenv: python3.13: command not found)" in sentence
    assert "3.11.5 to 3.13" in sentence
    assert "PYTHON=" in sentence


def test_no_python_at_all_is_refused_in_one_sentence(bin_dir):
    sentence = _refusal(_make(bin_dir, "which-python"))
    assert "no python3 at all" in sentence
    assert "3.11.5 to 3.13" in sentence
    assert "PYTHON=" in sentence


def test_a_given_python_wins_and_is_checked_too(bin_dir, tmp_path):
    _fake_python(bin_dir / "python3.13", "CPython 3.13.2")
    mine = _fake_python(tmp_path / "opt" / "python", "CPython 3.12.4")
    assert _make(bin_dir, "-s", "which-python", f"PYTHON={mine}").stdout == f"{mine}\n"

    old = _fake_python(tmp_path / "old" / "python3.11", "CPython 3.11.2")
    venv = tmp_path / "venv"
    sentence = _refusal(_make(bin_dir, "env", f"PYTHON={old}", f"VENV={venv}"))
    assert sentence.startswith(f"make: PYTHON={old} is CPython 3.11.2")
    assert "3.11.5 to 3.13" in sentence
    assert not venv.exists()

    sentence = _refusal(_make(bin_dir, "which-python", "PYTHON=python3.12"))
    assert "PYTHON=python3.12 is not found" in sentence


def test_an_existing_venv_is_kept_whichever_supported_python_made_it(bin_dir, tmp_path):
    """No suitable Python on PATH any more: the .venv made earlier still works."""
    _fake_python(bin_dir / "python3", "CPython 3.10.12")
    venv = tmp_path / "venv"
    _fake_python(venv / "bin" / "python", "CPython 3.12.1")  # its pip install "succeeds"
    result = _make(bin_dir, "env", f"VENV={venv}")
    assert result.returncode == 0, result.stderr
    assert "[1/2] Using the existing" in result.stdout
    assert re.search(r"is ready: installed in \d+ min \d+ s\.", result.stdout)
    assert (venv / ".installed").exists()


def test_an_existing_venv_of_an_unsupported_python_is_refused(bin_dir, tmp_path):
    """A failed first try with Debian's 3.11.2 left a .venv: say so instead of failing in pip."""
    venv = tmp_path / "venv"
    _fake_python(venv / "bin" / "python", "CPython 3.11.2")
    sentence = _refusal(_make(bin_dir, "env", f"VENV={venv}"))
    assert "CPython 3.11.2" in sentence
    assert "make clean" in sentence
    assert not (venv / ".installed").exists()


def _fake_lab_venv(tmp_path, uid):
    """A venv whose python and jupyter only print how they were called."""
    venv = tmp_path / "venv"
    for tool in ["python", "jupyter"]:
        path = venv / "bin" / tool
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'#!/bin/sh\necho "{tool} $*" >&2\n')
        path.chmod(0o755)
    (venv / ".installed").touch()
    fake_id = tmp_path / "fake-id" / "id"
    fake_id.parent.mkdir()
    fake_id.write_text(f"#!/bin/sh\necho {uid}\n")
    fake_id.chmod(0o755)
    return venv, fake_id.parent


def _lab(bin_dir, tmp_path, uid):
    venv, id_dir = _fake_lab_venv(tmp_path, uid)
    (bin_dir / "id").unlink()
    (bin_dir / "id").symlink_to(id_dir / "id")
    result = _make(bin_dir, "lab", f"VENV={venv}", "LAB_ARGS=--no-browser")
    assert result.returncode == 0, result.stderr
    return result


def test_lab_as_root_passes_allow_root_and_says_so(bin_dir, tmp_path):
    result = _lab(bin_dir, tmp_path, 0)
    jupyter = next(line for line in result.stderr.splitlines() if line.startswith("jupyter "))
    assert jupyter == "jupyter lab --allow-root --no-browser notebooks/"
    assert sum("--allow-root" in line for line in result.stdout.splitlines()) == 1


def test_lab_as_a_normal_user_does_not(bin_dir, tmp_path):
    result = _lab(bin_dir, tmp_path, 1000)
    jupyter = next(line for line in result.stderr.splitlines() if line.startswith("jupyter "))
    assert jupyter == "jupyter lab --no-browser notebooks/"
    assert "--allow-root" not in result.stdout + result.stderr


def _kernel_name(clone):
    result = subprocess.run(
        [MAKE, "-n", "-C", str(clone), "lab"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return re.search(r"ipykernel install --user --name (\S+)", result.stdout).group(1)


def test_each_clone_registers_its_own_kernel(tmp_path):
    clones = [tmp_path / "a" / "course", tmp_path / "b" / "course"]
    for clone in clones:
        clone.mkdir(parents=True)
        for name in ["Makefile", "pyproject.toml", "requirements.lock"]:
            shutil.copy(ROOT / name, clone / name)
    names = [_kernel_name(clone) for clone in clones]
    assert names[0] != names[1]
    assert names[0] == _kernel_name(clones[0])  # stable across runs
    assert all(re.fullmatch(r"[a-z0-9._-]+", name) for name in names)
