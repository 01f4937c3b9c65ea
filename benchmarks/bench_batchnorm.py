"""Time course_utils.batchnorm.BatchNorm1d against torch.nn.BatchNorm1d, forward + backward.

Setup: an input of shape (4096, 1024) float32 that requires grad, a fixed output gradient,
both modules in training mode (so each forward also updates the running statistics),
THREADS intra-op threads. One timed call is ``y = module(x); y.backward(dy)``: the forward
pass, the running-statistics update and the backward pass to x, weight and bias (ours:
``batchnorm_forward``, ``update_running_stats``, ``batchnorm_backward`` in a
``torch.autograd.Function``; torch's: its fused native kernels). The two modules are called
in turn, so a change in machine load affects both alike. Also timed: eval mode (forward +
backward with the running statistics). Reported: the median over REPEATS calls after
WARMUP untimed ones, and the ratio ours / torch.

    python benchmarks/bench_batchnorm.py [--threads N] [--repeats N]
"""

import argparse
import statistics
import time

import torch

from course_utils.batchnorm import BatchNorm1d

SHAPE = (4096, 1024)
WARMUP = 3


def median_times(modules, x, dy, repeats: int) -> list[float]:
    """Call each module on x and backpropagate dy, round-robin; median seconds per call."""
    times = [[] for _ in modules]
    for repeat in range(WARMUP + repeats):
        for module, seconds in zip(modules, times, strict=True):
            x.grad = None
            module.zero_grad()
            start = time.perf_counter()
            module(x).backward(dy)
            if repeat >= WARMUP:
                seconds.append(time.perf_counter() - start)
    return [statistics.median(seconds) for seconds in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per module")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(0)
    x = (2.0 + 3.0 * torch.randn(SHAPE, generator=gen)).requires_grad_()
    dy = torch.randn(SHAPE, generator=gen)
    ours, theirs = BatchNorm1d(SHAPE[1]), torch.nn.BatchNorm1d(SHAPE[1])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {SHAPE} float32, "
        f"forward + backward, median of {args.repeats} calls after {WARMUP} warm-up calls"
    )
    header = f"{'mode':<22}{'ours ms':>10}{'torch ms':>10}{'ours / torch':>14}"
    print(header)
    print("-" * len(header))
    for mode in ("train", "eval"):
        ours.train(mode == "train")
        theirs.train(mode == "train")
        t_ours, t_torch = median_times([ours, theirs], x, dy, args.repeats)
        label = "training (batch stats)" if mode == "train" else "eval (running stats)"
        print(f"{label:<22}{1e3 * t_ours:>10.1f}{1e3 * t_torch:>10.1f}{t_ours / t_torch:>14.2f}")


if __name__ == "__main__":
    main()
