"""Shared helpers for the benchmarks: timing, environment line, and table printing."""

from __future__ import annotations

import os
import platform
import statistics
import time


def time_interleaved(fns, repeats: int, warmup: int = 1) -> list[list[float]]:
    """Wall-clock seconds of `repeats` calls of each function (each must block until done).

    The functions take turns within each repeat, so load from other processes on a shared
    machine falls on all of them alike rather than on whichever ran last.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> str:
    return f"{statistics.median(times) * 1e3:9.1f} ms (min {min(times) * 1e3:.1f}, n={len(times)})"


def environment() -> str:
    import jax

    try:
        import torch
        torch_info = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        torch_info = "torch not installed"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus; jax {jax.__version__} on "
            f"{jax.devices()[0].platform}; {torch_info}")


def print_table(title: str, header: tuple, rows: list[tuple]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    print(line)
