"""Time every explorer in course_utils.widgets, headless, and print a table (not a test).

    python benchmarks/bench_widgets.py [--repeat N]

An explorer is any ``*_explorer`` builder in ``course_utils.widgets.__all__``. For each,
the script builds it (time to first picture; the first build in a process also pays
one-time imports and font loading), then moves every control in turn through a
few values (each option of a dropdown, three points across a slider's range) and times
``update()``: the compute function, the redraw and the PNG, what a student waits for
after releasing a slider. Budget: well under 150 ms per update on a 2-core CPU.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("MPLBACKEND", "Agg")

import ipywidgets as ipw

from course_utils import widgets


def control_values(control) -> list:
    """A few values to move a control through, ending where it started."""
    start = control.value
    if isinstance(control, ipw.widgets.widget_selection._Selection):
        values = [value for _, value in control._options_full if value != start]
    elif isinstance(control, ipw.FloatLogSlider):
        low, high = control.min, control.max
        values = [control.base ** (low + f * (high - low)) for f in (0.2, 0.5, 0.8)]
    elif hasattr(control, "min") and hasattr(control, "max"):
        values = [control.min + f * (control.max - control.min) for f in (0.2, 0.5, 0.8)]
    else:
        values = []
    return [*values, start]


def bench(builder, repeat: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    explorer = builder()
    build = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        for name, control in explorer.controls.items():
            for value in control_values(control):
                start = time.perf_counter()
                explorer.update(**{name: value})
                times.append(time.perf_counter() - start)
    return build, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes over all controls")
    args = parser.parse_args()

    builders = [name for name in widgets.__all__ if name.endswith("_explorer")]
    print(f"{'explorer':<20} {'build (s)':>9} {'updates':>8} {'median (ms)':>12} {'max (ms)':>9}")
    for name in builders:
        build, times = bench(getattr(widgets, name), args.repeat)
        median, worst = 1000 * statistics.median(times), 1000 * max(times)
        print(f"{name:<20} {build:>9.2f} {len(times):>8} {median:>12.0f} {worst:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
