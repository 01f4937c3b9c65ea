"""The environment is pinned once and consistently: pyproject, environment.yml, lock file."""

import re
import tomllib

import yaml

from conftest import ROOT


def _pins(lines):
    pins = {}
    for line in lines:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s;#]+)\s*", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _pyproject():
    """Every dependency of pyproject.toml: the package's and those of every extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert {"dev", "site"} <= extras.keys()
    return project["dependencies"] + [dep for extra in extras.values() for dep in extra]


def test_every_dependency_is_pinned_exactly():
    deps = _pyproject()
    unpinned = [d for d in deps if "==" not in d]
    assert not unpinned, f"pin these exactly in pyproject.toml: {unpinned}"
    assert "torch==2.13.0" in deps


def test_environment_yml_has_the_same_pins_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == _pins(_pyproject())
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    assert "python" + requires_python.replace(" ", "") in env["dependencies"]


def test_lock_file_agrees_with_pyproject_and_installs_anywhere():
    lock_lines = (ROOT / "requirements.lock").read_text().splitlines()
    lock = _pins(lock_lines)
    for name, version in _pins(_pyproject()).items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"
    # A local label (torch==2.13.0+cpu) would not install from PyPI elsewhere.
    assert not [line for line in lock_lines if "+" in line.split("#")[0]]
    assert not [
        line for line in lock_lines if line and not line.startswith("#") and "==" not in line
    ]
