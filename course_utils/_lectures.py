"""Find the per-lecture modules of a package (``lecture01.py``, ``lecture02.py``, ...).

What grows with every lecture (exercises, explorers, figure helpers) lives in one module
per lecture inside its package, so adding a lecture adds files and edits none. The
packages call these two functions to find those modules.
"""

import importlib
import pkgutil
import re
from types import ModuleType

LECTURE_MODULE = re.compile(r"lecture[0-9]{2}")


def lecture_modules(package: str, path) -> list[ModuleType]:
    """Import and return ``package.lectureNN`` for every such module in ``path``, in order."""
    names = sorted(
        info.name for info in pkgutil.iter_modules(path) if LECTURE_MODULE.fullmatch(info.name)
    )
    return [importlib.import_module(f"{package}.{name}") for name in names]


def reexport(namespace: dict, modules: list[ModuleType]) -> list[str]:
    """Put the public names (``__all__``) of ``modules`` into a package's ``namespace``.

    Returns the names. Two modules exporting the same name is an error: one would
    silently hide the other.
    """
    names = []
    for module in modules:
        for name in module.__all__:
            if name in namespace and namespace[name] is not getattr(module, name):
                raise ImportError(f"{module.__name__} exports {name!r}, which is already taken")
            namespace[name] = getattr(module, name)
            names.append(name)
    return names
