"""Interactive explorers for the notebooks, built so they can be tested without a browser.

``explorer.py`` holds the framework (``Explorer``); each lecture's explorers live in
``lectureNN.py`` next to it and are re-exported here, so ``widgets.softmax_explorer`` and
``widgets.OptimizerExplorer`` work without knowing which lecture they belong to. A new
lecture adds its module; this file does not change.

In a notebook::

    explorer = widgets.softmax_explorer()
    explorer.widget
"""

from course_utils._lectures import lecture_modules, reexport
from course_utils.widgets.explorer import Explorer, figure_png, slider

LECTURES = lecture_modules(__name__, __path__)
__all__ = ["Explorer", "figure_png", "slider", *reexport(globals(), LECTURES)]
