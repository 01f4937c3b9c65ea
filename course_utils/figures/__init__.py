"""Figure helpers made for one lecture, one module per lecture (``lectureNN.py``).

Plotting primitives that several lectures use stay in ``course_utils.plotting``; what
draws one lecture's particular picture lives here and is re-exported, so a notebook
writes ``figures.plot_line_fits(...)``. A new lecture adds its module; this file does
not change.
"""

from course_utils._lectures import lecture_modules, reexport

LECTURES = lecture_modules(__name__, __path__)
__all__ = reexport(globals(), LECTURES)
