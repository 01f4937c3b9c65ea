"""Files: the submissions of a folder, read without following links; results.json and the
gradebook, written atomically with names that cannot fake a line or a formula.

A student's entry of the submissions folder is a notebook file or a folder holding one.
Nothing here follows a symbolic link: an entry that is a link, or a notebook reached
through one, is not graded (it could point at the solutions or at another student's
file), and every file read is opened component by component with ``O_NOFOLLOW``. An
entry that cannot be graded -- a link, a FIFO, a folder nested too deep or holding too
many files, a name that is not UTF-8 -- gets a row with the reason, like any other.

Names are shown escaped (``display``): control characters, terminal escape codes and
bytes that are not UTF-8 become ``\\n``, ``\\x1b``, ``\\xff`` (and a backslash ``\\\\``),
so a name cannot fake a line of the summary; in the CSV a text that a spreadsheet would
read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
gets a leading ``'`` (as does one starting with ``'``, so that no two names collide).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_DEPTH = 16  # folder levels searched inside a student's folder
MAX_ENTRIES = 10_000  # files and folders looked at inside a student's folder
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class SubmissionError(Exception):
    """The file cannot be graded (not a notebook, too large, a link, ...); the message says why."""


@dataclass(frozen=True)
class Submission:
    """One entry of the submissions folder: the notebook to grade, or why there is none.

    ``entry`` is the entry's name as the file system has it (bytes that are not UTF-8
    are kept as surrogates); ``parts`` the notebook's path below ``root``, entry first.
    """

    root: Path
    entry: str
    parts: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def student(self) -> str:
        """The entry's name, escaped for display."""
        return display(self.entry)

    @property
    def file(self) -> str:
        """The notebook's path below the submissions folder, escaped for display."""
        return display("/".join(self.parts or (self.entry,)))

    @classmethod
    def of_file(cls, path: Path) -> Submission:
        """A single notebook given by its path (its folder is trusted, the file is not)."""
        path = Path(path)
        return cls(path.parent, path.name, (path.name,))


def display(name: str) -> str:
    """``name`` with everything that is not a printable character escaped (injective)."""
    out = []
    for char in name:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8 (os.fsdecode's surrogates)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def spreadsheet_text(text: str) -> str:
    """A CSV field that a spreadsheet shows as text, never evaluates as a formula.

    A text that starts with ``'`` gets one more, so that no two names give the same field
    (``=x`` -> ``'=x``, ``'=x`` -> ``''=x``): the gradebook's student column is its key.
    """
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def find_submissions(directory: Path, assignment_id: str | None = None) -> list[Submission]:
    """One Submission per entry of ``directory`` (hidden ones skipped), in gradebook order.

    A folder counts as one student; its notebook is found by a search that follows no
    links (the one named ``<assignment_id>.ipynb`` if there are several). A folder
    without exactly one such notebook gets the reason instead.
    """
    root = Path(directory)
    with os.scandir(root) as entries:
        found = [_submission(root, e, assignment_id) for e in entries if not e.name.startswith(".")]
    return sorted(found, key=lambda submission: spreadsheet_text(submission.student))


def _submission(root: Path, entry: os.DirEntry, assignment_id: str | None) -> Submission:
    name = entry.name
    try:
        if entry.is_symlink():
            return Submission(root, name, problem="a symbolic link (links are not followed)")
        if entry.is_file(follow_symlinks=False):
            return Submission(root, name, (name,))
        if not entry.is_dir(follow_symlinks=False):
            return Submission(root, name, problem="not a regular file or folder")
        notebooks, links = _notebooks_in(root / name)
        named = [parts for parts in notebooks if parts[-1] == f"{assignment_id}.ipynb"]
        notebooks = named if len(named) == 1 else notebooks
        if len(notebooks) == 1:
            return Submission(root, name, (name, *notebooks[0]))
        problem = "a folder without exactly one notebook (.ipynb) in it"
        if links:
            problem += f" (not following {links} symbolic link{'s' if links > 1 else ''})"
        return Submission(root, name, problem=problem)
    except SubmissionError as err:
        return Submission(root, name, problem=str(err))
    except OSError as err:
        return Submission(root, name, problem=f"could not be read ({err.strerror or err})")


def _notebooks_in(folder: Path) -> tuple[list[tuple[str, ...]], int]:
    """The notebooks below ``folder`` (as name tuples) and how many links were skipped."""
    notebooks, links, seen = [], 0, 0
    pending = [()]
    while pending:
        parts = pending.pop()
        with os.scandir(folder.joinpath(*parts)) as entries:
            for entry in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    raise SubmissionError(f"a folder with more than {MAX_ENTRIES} files in it")
                if entry.name.startswith("."):
                    continue
                if entry.is_symlink():
                    links += entry.name.endswith(".ipynb")
                elif entry.is_dir(follow_symlinks=False):
                    if len(parts) >= MAX_DEPTH:
                        raise SubmissionError(f"folders nested more than {MAX_DEPTH} levels deep")
                    pending.append((*parts, entry.name))
                elif entry.name.endswith(".ipynb") and entry.is_file(follow_symlinks=False):
                    notebooks.append((*parts, entry.name))
    return sorted(notebooks), links


def read_submission(submission: Submission, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of the submission's notebook, opened without following any link below
    the submissions folder; SubmissionError if it is not a regular file or too large."""
    if submission.problem:
        raise SubmissionError(submission.problem)
    try:
        fd = os.open(submission.root, os.O_RDONLY | os.O_DIRECTORY)
        for part in submission.parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            finally:
                os.close(fd)
            fd = inner
        try:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO does not block us
            fd_file = os.open(submission.parts[-1], flags, dir_fd=fd)
        finally:
            os.close(fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):  # a link where a file or folder was
            raise SubmissionError("a symbolic link (links are not followed)") from None
        raise
    with os.fdopen(fd_file, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise SubmissionError("a folder without exactly one notebook (.ipynb) in it")
        if not stat.S_ISREG(mode):
            raise SubmissionError("not a regular file")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise SubmissionError(f"the file is larger than {limit // 2**20} MB")
    return data


def in_shard(submissions: list[Submission], shard: int, count: int) -> list[Submission]:
    """The submissions of shard ``shard`` (1 to ``count``): a split by a hash of each entry's
    name, so that every shard computes the same split whatever the others see."""
    return [s for s in submissions if shard_of(s.entry, count) == shard - 1]


def shard_of(entry: str, count: int) -> int:
    """The shard (0 to count - 1) of an entry name."""
    digest = hashlib.sha256(os.fsencode(entry)).digest()
    return int.from_bytes(digest[:8], "big") % count


def results_name(entry: str) -> str:
    """The file name of an entry's results.json in --results-dir: ``<name>.json``, escaped,
    shortened with a hash of the name where it would exceed 255 bytes."""
    name = display(entry) + ".json"
    if len(name.encode()) <= 255:
        return name
    digest = hashlib.sha256(os.fsencode(entry)).hexdigest()[:16]
    head = display(entry).encode()[: 255 - 22].decode(errors="ignore")
    return f"{head}-{digest}.json"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path`` (mode 0600), then os.replace it.

    Readers never see half a file, and whatever stood at ``path`` before -- say, something
    a submission managed to write there -- is replaced as a whole.
    """
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_results(result, path: Path) -> None:
    """Write results.json (Gradescope's format) atomically."""
    write_atomically(path, json.dumps(result.to_json(), indent=1) + "\n")


def gradebook_header(exercise_ids: list[str]) -> list[str]:
    return ["student", "file", *exercise_ids, "total", "max_score", "notes"]


def gradebook_row(submission: Submission, result) -> list[str]:
    """One student's gradebook row (CSV fields)."""
    scores = [f"{test.score:g}" for test in result.tests]
    issues = [f"{t.exercise} {t.status}" for t in result.tests if t.status != "passed"]
    notes = issues + result.notes
    if len(notes) > 20:
        notes = [*notes[:20], f"... and {len(notes) - 20} more"]
    text = result.problem or "; ".join(notes)
    fields = [submission.student, submission.file, *scores]
    fields += [f"{result.score:g}", f"{result.max_score:g}", text]
    return [spreadsheet_text(field) for field in fields]


def write_gradebook(rows: list[list[str]], header: list[str], path: Path) -> None:
    """Write the CSV gradebook atomically: the header, then the rows sorted by student."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(sorted(rows, key=lambda row: row[0]))
    write_atomically(path, buffer.getvalue())


def merge_gradebooks(paths: list[Path], out: Path) -> int:
    """Merge the gradebooks of the shards of one run into ``out``; returns the row count.

    They must have the same header (one assignment) and no student twice.
    ValueError says what is wrong.
    """
    header, rows, seen = None, [], {}
    for path in paths:
        with Path(path).open(newline="", encoding="utf-8") as file:
            table = list(csv.reader(file))
        if not table:
            raise ValueError(f"{path} is empty (not a gradebook)")
        if header is None:
            header = table[0]
        elif table[0] != header:
            raise ValueError(f"{path} has other columns than {paths[0]}: another assignment?")
        for row in table[1:]:
            if len(row) != len(header):
                raise ValueError(f"{path}: a row with {len(row)} fields, expected {len(header)}")
            if row[0] in seen:
                raise ValueError(f"{row[0]} is in both {seen[row[0]]} and {path}")
            seen[row[0]] = path
            rows.append(row)
    if header is None:
        raise ValueError("no gradebooks to merge")
    write_gradebook(rows, header, out)
    return len(rows)
