"""Time every control of every explorer in course_utils.widgets, headless; print a table.

    python benchmarks/bench_widgets.py [--repeat N]

An explorer is any ``*_explorer`` builder in ``course_utils.widgets.__all__``. For each,
the script builds it (time to first picture; the first build in a process also pays
one-time imports and font loading), then moves every control in turn through a few
values (each option of a dropdown, ten points across a slider's range) and times
``update()``, what the kernel does after a key press: ``draw`` (the compute function and
the artists' new data) and ``render`` (the redraw and the PNG). The browser adds the
messages to and from the kernel and showing the picture (tests/browser/ measures the
whole, key to picture on screen). Budget: p95 under 100 ms in the browser, so well under
that here, on a 2-core CPU.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("MPLBACKEND", "Agg")

import ipywidgets as ipw
import numpy as np

from course_utils import widgets

FRACTIONS = np.linspace(0.05, 0.95, 10)


def control_values(control) -> list:
    """Values to move a control through, ending where it started."""
    start = control.value
    if isinstance(control, ipw.widgets.widget_selection._Selection):
        values = [value for _, value in control._options_full if value != start]
    elif isinstance(control, ipw.Checkbox | ipw.ToggleButton):
        values = [not start]
    elif isinstance(control, ipw.FloatLogSlider):
        low, high = control.min, control.max
        values = [control.base ** (low + f * (high - low)) for f in FRACTIONS]
    elif hasattr(control, "min") and hasattr(control, "max"):
        values = [control.min + f * (control.max - control.min) for f in FRACTIONS]
        if isinstance(control, ipw.IntSlider):
            values = [round(v) for v in values]
    else:
        values = []
    return [*values, start]


def _timed(function, times: list):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - start)

    return wrapper


def bench(builder, repeat: int) -> tuple[float, dict]:
    """Build time, and per control: the update's wall and CPU times, draw and render (s)."""
    start = time.perf_counter()
    explorer = builder()
    build = time.perf_counter() - start
    results = {}
    for name, control in explorer.controls.items():
        updates, cpu, draws, renders = [], [], [], []
        explorer.draw = _timed(explorer.draw, draws)
        explorer.render = _timed(explorer.render, renders)
        for _ in range(repeat):
            for value in control_values(control):
                start, start_cpu = time.perf_counter(), time.process_time()
                explorer.update(**{name: value})
                updates.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
        del explorer.draw, explorer.render
        results[control.description or name] = (updates, cpu, draws, renders)
    return build, results


def _p95(values) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes over each control's values")
    args = parser.parse_args()

    builders = [name for name in widgets.__all__ if name.endswith("_explorer")]
    print(
        f"{'explorer':<20} {'control':<18} {'updates':>7} {'median':>7} {'p95':>5}"
        f" {'cpu':>5} {'draw':>5} {'render':>6}  (ms; cpu: median CPU time)"
    )
    for builder in builders:
        build, results = bench(getattr(widgets, builder), args.repeat)
        print(f"{builder:<20} {'(build, s)':<18} {build:>7.2f}")
        for control, (updates, cpu, draws, renders) in results.items():
            ms = [1000 * t for t in updates]
            print(
                f"{'':<20} {control[:18]:<18} {len(ms):>7} {statistics.median(ms):>7.0f}"
                f" {_p95(ms):>5.0f} {1000 * statistics.median(cpu):>5.0f}"
                f" {1000 * statistics.median(draws):>5.0f}"
                f" {1000 * statistics.median(renders):>6.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
