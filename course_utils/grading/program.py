"""Programs: which answer cells an exercise runs, checked against what an answer may use.

Every answer cell is checked on its syntax tree before anything runs (a block-list inside
the process the student controls could never be complete; this is an allow-list, checked
outside it). An answer may use

- the preamble's modules, only to look up a name: ``math.x``, ``np.x``, ``torch.x``,
  ``F.x``, and through them the namespaces in ``NAMESPACES`` (``torch.linalg.norm``);
- the builtins in ``sandbox.ANSWER_BUILTINS`` (``len``, ``range``, ``isinstance``, ...)
  and every name it defines itself.

So it may not: import anything; use a name that starts with two underscores or an
attribute that starts with one (private and dunder attributes: ``torch._C``,
``x.__class__``); reach frames, code objects or tracebacks (``gen.gi_frame``,
``frame.f_builtins``: ``INSPECT_ATTRIBUTES``); use a module as a value (``t = torch``)
or any module outside ``NAMESPACES`` (``torch.ops``, ``torch.autograd``, ``torch.os``);
assign to or delete an attribute of anything reached through the preamble's modules
(``torch.Tensor.x = ...``); rebind ``math``, ``np``, ``torch`` or ``F``; call
``getattr``, ``eval``, ``open`` and the other builtins not listed; call ``torch.load``
or ``np.load`` (unpickling runs code) or ``torch.compile``. Any of these makes the
exercise ``forbidden``.

The cells an exercise needs are its own answer cells and every answer cell that defines
(at the top level) a name they use, and so on: its program. The exercise's forbidden
names (``softmax`` in the softmax exercise) are checked on all of its program, as words of
every attribute (``sandbox.mentions``: forbidding ``softmax`` forbids ``LogSoftmax`` and
``gumbel_softmax`` too). At run time the sandbox blocks, at the ATen dispatcher, the
operators that mention them as well (``torch.nn.Softmax`` and ``F.cross_entropy`` go
through ``aten::softmax.int`` and ``aten::log_softmax.int``); nothing an answer may use
can reach the dispatcher's registrations to undo them.
"""

from __future__ import annotations

import ast
import builtins
import math
import re
import symtable
import types
from dataclasses import dataclass, field

import numpy as np
import torch

from course_utils import sandbox
from course_utils.exercises import Exercise
from course_utils.grading.notebook import Cell

NAMESPACES = (
    *("math", "numpy", "numpy.linalg", "numpy.random"),
    *("torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.special", "torch.fft"),
    # Sampling from a distribution with a generator of one's own (lecture 05's mixup draws
    # Beta weights inside torch.random.fork_rng, seeded from the answer's generator).
    *("torch.distributions", "torch.random"),
)
PREAMBLE = {"math": math, "np": np, "torch": torch, "F": torch.nn.functional}
# Functions that run code the check never sees: unpickling, and compiling (dynamo hands
# a backend the traced graph and the objects it calls).
REFUSED = {
    id(torch.load): "loading pickled data runs code",
    id(np.load): "loading pickled data runs code",
    id(torch.compile): "it rewrites and runs code that this check never sees",
}
# Attributes that reach the interpreter's frames, code objects, globals and builtins
# without an underscore (generator.gi_frame.f_builtins holds __import__): RestrictedPython's
# INSPECT_ATTRIBUTES, and every other attribute of tracebacks, code objects, generators,
# coroutines and asynchronous generators.
INSPECT_PREFIXES = ("tb_", "co_", "gi_", "cr_", "ag_")
INSPECT_ATTRIBUTES = {"f_back", "f_builtins", "f_code", "f_globals", "f_locals", "f_trace"}
INSPECT_ATTRIBUTES |= {"f_lasti", "f_lineno", "f_trace_lines", "f_trace_opcodes"}
MAX_CELL_BYTES = 256 * 2**10
MAX_ANSWER_BYTES = 256 * 2**10  # the answer cells of one exercise together (or untagged)
_BUILTINS = set(dir(builtins)) - set(sandbox.ANSWER_BUILTINS)
_MISSING = object()


@dataclass(frozen=True)
class AnswerCell:
    """One answer cell, analysed: what it defines and uses, and what is wrong with it."""

    index: int
    source: str  # as it runs: IPython magics (% and ! lines) commented out
    error: str | None = None  # why it does not compile
    violations: tuple[str, ...] = ()  # what it uses that no answer may use
    binds: frozenset[str] = frozenset()  # names it defines at the top level
    uses: frozenset[str] = frozenset()  # global names it reads
    # What its attributes mention (sandbox.word_spans), each with its first use:
    # span -> (the attribute as written, line). Built once, so that checking an
    # exercise's forbidden names costs a lookup per name and cell.
    mentioned: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"cell {self.index + 1}"


def analyse(cells: list[Cell], indices) -> dict[int, AnswerCell]:
    """The answer cells ``indices`` of a submission, analysed (in notebook order)."""
    parsed, totals = {}, {}
    for index in sorted(set(indices)):
        # Lines starting with % or ! (IPython magics, shell escapes) are not Python.
        source = re.sub(r"^(\s*)([%!])", r"\1# \2", cells[index].source, flags=re.MULTILINE)
        # What we analyse stays bounded (about a second), however large the notebook; the
        # solutions hold a few KB per exercise.
        tag = cells[index].exercise
        totals[tag] = totals.get(tag, 0) + len(source.encode())
        if totals[tag] > MAX_ANSWER_BYTES:
            error = f"the answer cells of {tag or 'no exercise'} up to cell {index + 1} hold "
            error += f"more than {MAX_ANSWER_BYTES // 2**10} KB of code together"
            parsed[index] = (AnswerCell(index, source, error=error), None, None)
            continue
        parsed[index] = _parse(index, source)
    # A builtin may be shadowed by a name some answer cell defines.
    defined = set().union(*(names for _, names, _ in parsed.values() if names))
    analysed = {}
    for index, (cell, _, tree) in parsed.items():
        if tree is None:
            analysed[index] = cell
            continue
        policy = _Policy(defined)
        policy.visit(tree)
        violations = [f"{text} ({cell.label}, line {line})" for text, line in policy.problems]
        analysed[index] = AnswerCell(
            index,
            cell.source,
            violations=tuple(violations),
            binds=cell.binds,
            uses=cell.uses,
            mentioned=policy.mentioned,
        )
    return analysed


def _parse(index: int, source: str) -> tuple[AnswerCell, set[str] | None, ast.AST | None]:
    label = f"cell {index + 1}"
    if len(source.encode()) > MAX_CELL_BYTES:
        error = f"the cell holds more than {MAX_CELL_BYTES // 2**10} KB of code ({label})"
        return AnswerCell(index, source, error=error), None, None
    try:
        tree = compile(source, f"<{label}>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        table = symtable.symtable(source, f"<{label}>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        line = f", line {err.lineno}" if getattr(err, "lineno", None) else ""
        message = err.args[0] if err.args else ""
        error = f"{type(err).__name__}: {message} ({label}{line})"
        return AnswerCell(index, source, error=error), None, None
    binds, uses, names = set(), set(), set()
    pending = [table]
    while pending:
        scope = pending.pop()
        pending += scope.get_children()
        for symbol in scope.get_symbols():
            name = symbol.get_name()
            if symbol.is_assigned() or symbol.is_imported() or symbol.is_parameter():
                names.add(name)
            top = scope.get_type() == "module" or symbol.is_declared_global()
            if top and (symbol.is_assigned() or symbol.is_imported()):
                binds.add(name)
            if symbol.is_referenced() and (scope.get_type() == "module" or symbol.is_global()):
                uses.add(name)
    # Rebinding a preamble module is refused in the cell that does it; it does not make
    # that cell part of every exercise that uses the module.
    binds -= PREAMBLE.keys()
    cell = AnswerCell(index, source, binds=frozenset(binds), uses=frozenset(uses))
    return cell, names | binds, tree


class _Policy(ast.NodeVisitor):
    """Collects what a cell uses that no answer may use, and every attribute it names."""

    def __init__(self, defined: set[str]):
        self.defined = defined
        self.problems: list[tuple[str, int]] = []
        self.mentioned: dict[str, tuple[str, int]] = {}
        self.roots: set[int] = set()  # ids of preamble names that start an attribute chain

    def problem(self, node: ast.AST, text: str) -> None:
        self.problems.append((text, getattr(node, "lineno", 0)))

    def name(self, node: ast.AST, name: str | None) -> None:
        if name and name.startswith("__"):
            self.problem(node, f"{name}: names that start with __ are not allowed")

    def visit_Import(self, node) -> None:
        self.problem(node, "import: the preamble gives you math, np, torch and F, import nothing")

    visit_ImportFrom = visit_Import

    def visit_Attribute(self, node: ast.Attribute) -> None:
        for span in sandbox.word_spans(node.attr, sandbox.MENTION_WORDS):
            if span not in self.mentioned:
                self.mentioned[span] = (_unparse(node), node.lineno)
        if node.attr.startswith("_"):
            self.problem(node, f"{_unparse(node)}: attributes that start with _ are private")
        elif node.attr.startswith(INSPECT_PREFIXES) or node.attr in INSPECT_ATTRIBUTES:
            message = "frames, code objects and tracebacks are not available"
            self.problem(node, f"{_unparse(node)}: {message}")
        chain, root = [], node
        while isinstance(root, ast.Attribute):
            chain.insert(0, root)
            root = root.value
        if isinstance(root, ast.Name) and root.id in PREAMBLE and id(root) not in self.roots:
            self.roots.add(id(root))  # checked once, from the outermost attribute
            problem = _resolve(root.id, [part.attr for part in chain])
            if problem:
                self.problem(node, problem)
            stores = [p for p in chain if isinstance(p.ctx, ast.Store | ast.Del)]
            if stores:
                self.problem(node, f"{_unparse(stores[0])}: do not assign to or delete it")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.name(node, node.id)
        if node.id in PREAMBLE:
            if not isinstance(node.ctx, ast.Load):
                self.problem(node, f"{node.id} is the preamble's module: do not rebind it")
            elif id(node) not in self.roots:
                self.problem(node, f"{node.id} is a module: only look up names in it ({node.id}.x)")
        elif node.id in _BUILTINS and node.id not in self.defined:
            self.problem(node, f"{node.id} is not available to answers")

    def visit_FunctionDef(self, node) -> None:
        self.name(node, node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_arg(self, node: ast.arg) -> None:
        self.name(node, node.arg)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.name(node, node.name)
        self.generic_visit(node)

    def visit_Global(self, node) -> None:
        for name in node.names:
            self.name(node, name)

    visit_Nonlocal = visit_Global

    def visit_MatchAs(self, node) -> None:
        self.name(node, node.name)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs


def _resolve(root: str, attributes: list[str]) -> str | None:
    """What is wrong with the attribute chain ``root.a.b...`` (resolved on the real modules)."""
    value, written = PREAMBLE[root], root
    for attribute in attributes:
        if not isinstance(value, types.ModuleType):
            return None  # from here on it is an ordinary object's attribute
        if value.__name__ not in NAMESPACES:
            return f"{written} is a module answers may not use"
        value = value.__dict__.get(attribute, _MISSING)
        written += "." + attribute
        if value is _MISSING:
            return f"{written} is not available to answers"
        if id(value) in REFUSED:
            return f"{written} is not allowed: {REFUSED[id(value)]}"
    if isinstance(value, types.ModuleType):
        if value.__name__ not in NAMESPACES:
            return f"{written} is a module answers may not use"
        return f"{written} is a module: only look up names in it ({written}.x)"
    return None


def _unparse(node: ast.AST) -> str:
    """The code of ``node``, at most 80 characters (an attribute chain is shortened first,
    so that the work does not grow with its length)."""
    chain = []
    while isinstance(node, ast.Attribute) and len(chain) < 20:
        chain.insert(0, node.attr[:80])
        node = node.value
    small = next((False for i, _ in enumerate(ast.walk(node)) if i >= 50), True)
    try:
        root = ast.unparse(node) if small and not isinstance(node, ast.Attribute) else "..."
    except (ValueError, RecursionError):
        root = "?"
    text = ".".join([root[:80], *chain])
    return text if len(text) <= 80 else text[:77] + "..."


def program_of(ex: Exercise, cells: dict[int, AnswerCell], own: list[int]) -> list[int]:
    """The answer cells ``ex`` needs, in notebook order: its own (``own``), those defining
    its function, and every cell defining a name that a needed cell uses, transitively."""
    binders: dict[str, list[int]] = {}
    for index, cell in cells.items():
        for name in cell.binds:
            binders.setdefault(name, []).append(index)
    needed = set(own) | set(binders.get(ex.name, ()))
    names = set().union(*(cells[index].uses for index in needed)) if needed else set()
    while names:
        for index in binders.get(names.pop(), ()):
            if index not in needed:
                needed.add(index)
                names |= cells[index].uses
    return sorted(needed)


def forbidden_uses(ex: Exercise, cells: list[AnswerCell]) -> list[str]:
    """The attributes in ``cells`` that mention a name ``ex`` forbids (``torch.softmax``)."""
    spans = dict.fromkeys("".join(sandbox.name_words(name)) for name in ex.forbidden)
    uses = {}  # (cell, line, text) -> its first mention, in notebook order, once each
    for cell in cells:
        for span in spans:
            if span in cell.mentioned:
                text, line = cell.mentioned[span]
                uses.setdefault((cell.index, line, text), f"{text} ({cell.label}, line {line})")
    return [uses[key] for key in sorted(uses)]
