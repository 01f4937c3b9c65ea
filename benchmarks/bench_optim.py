"""Time one optimizer step of course_utils.optim against torch.optim.

Setup: 10M float32 parameters in 20 tensors of shape (500, 1000), gradients
fixed once, 2 intra-op threads. For each optimizer, ours and torch's two
implementations (foreach=False: a Python loop over tensors, like ours;
foreach=True: fused multi-tensor kernels) are stepped in turn, so a change in
machine load affects all three alike. Reported: median time per step over
REPEATS steps, after WARMUP steps that allocate the state and are not timed.
Target: ours / torch for-loop <= 1.5.

    python benchmarks/bench_optim.py
"""

import statistics
import time

import torch

from course_utils import optim

N_TENSORS = 20
SHAPE = (500, 1000)  # 20 x 500k = 10M parameters
WARMUP = 3
REPEATS = 15

OPTIMIZERS = [  # (label, class name in both modules, hyperparameters)
    ("SGD momentum", "SGD", dict(lr=0.01, momentum=0.9)),
    ("Adagrad", "Adagrad", dict(lr=0.01)),
    ("RMSprop", "RMSprop", dict(lr=0.01)),
    ("Adadelta", "Adadelta", dict(lr=1.0)),
    ("Adam", "Adam", dict(lr=1e-3)),
    ("AdamW", "AdamW", dict(lr=1e-3)),
]


def make_params(seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for _ in range(N_TENSORS):
        p = torch.randn(SHAPE, generator=gen).requires_grad_()
        p.grad = torch.randn(SHAPE, generator=gen)
        params.append(p)
    return params


def median_step_times(optimizers: list[torch.optim.Optimizer]) -> list[float]:
    """Step the optimizers round-robin; return each one's median seconds per step."""
    times = [[] for _ in optimizers]
    for repeat in range(WARMUP + REPEATS):
        for optimizer, seconds in zip(optimizers, times, strict=True):
            start = time.perf_counter()
            optimizer.step()
            if repeat >= WARMUP:
                seconds.append(time.perf_counter() - start)
    return [statistics.median(seconds) for seconds in times]


def main() -> None:
    torch.set_num_threads(2)
    n_params = N_TENSORS * SHAPE[0] * SHAPE[1]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{n_params / 1e6:.0f}M float32 parameters in {N_TENSORS} tensors, "
        f"median of {REPEATS} steps after {WARMUP} warm-up steps"
    )
    header = f"{'optimizer':<14}{'ours ms':>10}{'torch loop ms':>15}{'torch foreach ms':>18}"
    print(header + f"{'ours / loop':>13}")
    print("-" * (len(header) + 13))
    for label, name, hyperparameters in OPTIMIZERS:
        ours = getattr(optim, name)(make_params(0), **hyperparameters)
        loop = getattr(torch.optim, name)(make_params(0), foreach=False, **hyperparameters)
        foreach = getattr(torch.optim, name)(make_params(0), foreach=True, **hyperparameters)
        t_ours, t_loop, t_foreach = median_step_times([ours, loop, foreach])
        print(
            f"{label:<14}{1e3 * t_ours:>10.1f}{1e3 * t_loop:>15.1f}{1e3 * t_foreach:>18.1f}"
            f"{t_ours / t_loop:>13.2f}"
        )
        del ours, loop, foreach


if __name__ == "__main__":
    main()
