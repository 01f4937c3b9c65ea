"""Grade notebook submissions: the trusted side of ``course grade`` and ``course grade-all``.

The pipeline, one module per step:

1. ``files``: find each student's notebook in the submissions folder and read it,
   following no link (a link, a FIFO, a strange name gets a row with the reason).
2. ``notebook``: parse it (at most 20 MB and 2,000 cells), find the answer cells by their
   ``exercise:<id>`` tag (or the function they define) and report every other cell that
   differs from the released ``notebooks/<ID>.ipynb``; those are never run.
3. ``program``: check every answer cell against what an answer may use (an allow-list on
   its syntax tree) and find the cells each exercise needs.
4. ``judging``: hidden cases from a secret seed (never the public seed of ``check``) and
   their expected values, computed here with the references, once per run.
5. ``pool``: each exercise's cells run in a fresh child of a sandbox server
   (course_utils.sandbox) that sends back plain arrays; we accept only the messages,
   counts and sizes we expect. A cell that ends the process at its top level is left
   out and the exercise run again without it.
6. ``judging``: the arrays are judged with ``exercises.judge``; score = points x (case
   groups passed / case groups).
7. ``results``, ``files``: results.json (Gradescope's format) and the CSV gradebook,
   written atomically, before the sandbox servers are stopped; shards of a class are
   merged with ``merge_gradebooks``.

``grader.Grader`` runs the pipeline.

Threat model. A submission is hostile: inside its sandbox it can patch torch, numpy or
anything else it reaches, return objects that claim to equal anything, read the files
around it, exit, crash, loop, allocate or print without end. None of that reaches this
process: the answer code runs in another process, forked from a server that never held a
seed or an expected value, with a scrubbed environment, in namespaces of its own (it sees
no other process, writes only a private tmpfs that vanishes with it, has no network),
with no inherited descriptors, rlimits and a user id of its own; all it can do is send
data, and data is checked and compared here. Timeouts, crashes and garbage cost that
exercise its points and nothing else.

Not defended: the sandbox can read world-readable files (course_utils' reference code,
say); copying the reference code is plagiarism, not an exploit. Where the kernel refuses
namespaces, the children are isolated by user ids only, and ``Grader`` refuses to grade
more than one submission at a time unless told otherwise (``isolated=False``).
"""

from course_utils.grading.files import (
    Submission,
    SubmissionError,
    display,
    find_submissions,
    gradebook_header,
    gradebook_row,
    in_shard,
    merge_gradebooks,
    results_name,
    write_atomically,
    write_gradebook,
    write_results,
)
from course_utils.grading.grader import Grader, IsolationError, Limits
from course_utils.grading.judging import HiddenCases, hidden_cases, status_of
from course_utils.grading.notebook import (
    Assignment,
    Cell,
    assignment_of,
    find_answers,
    integrity_notes,
    load_assignment,
    read_cells,
)
from course_utils.grading.pool import SandboxPool, SandboxRun
from course_utils.grading.results import STATUSES, Outcome, SubmissionResult, TestResult

__all__ = [
    "STATUSES",
    "Assignment",
    "Cell",
    "Grader",
    "HiddenCases",
    "IsolationError",
    "Limits",
    "Outcome",
    "SandboxPool",
    "SandboxRun",
    "Submission",
    "SubmissionError",
    "SubmissionResult",
    "TestResult",
    "assignment_of",
    "display",
    "find_answers",
    "find_submissions",
    "gradebook_header",
    "gradebook_row",
    "hidden_cases",
    "in_shard",
    "integrity_notes",
    "load_assignment",
    "merge_gradebooks",
    "read_cells",
    "results_name",
    "status_of",
    "write_atomically",
    "write_gradebook",
    "write_results",
]
