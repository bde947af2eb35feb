"""Time the known-motif scan of the ``pwm`` baseline (:func:`plantt.pwm.matrix_scan`).

Scans random windows (A, C, G, T drawn evenly, three Ns in the middle as at a masked TSS) for every
matrix of a JASPAR collection on both strands, and prints the wall and CPU time and the time per
10,000 windows for each thread count::

    python benchmarks/pwm_scan.py --windows 2000 --threads 1 2
    python benchmarks/pwm_scan.py --windows 500 --length 3000 --block-length 250 --feature max_score
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from plantt.jaspar import DEFAULT_RELEASE, load_jaspar
from plantt.pwm import FEATURES, matrix_scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--length", type=int, default=3000)
    parser.add_argument("--block-length", type=int, default=250)
    parser.add_argument("--feature", choices=FEATURES, default="occupancy")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--release", default=DEFAULT_RELEASE)
    parser.add_argument("--repeats", type=int, default=2, help="runs per thread count (best kept)")
    args = parser.parse_args()

    matrices = load_jaspar(args.release)
    codes = np.random.default_rng(0).integers(0, 4, size=(args.windows, args.length))
    codes = codes.astype(np.uint8)
    middle = args.length // 2
    codes[:, middle - 3:middle] = 4
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}; load average {os.getloadavg()[0]:.2f}")
    print(f"{len(matrices)} matrices ({args.release}), widths {min(m.width for m in matrices)}-"
          f"{max(m.width for m in matrices)}, both strands; {args.windows} windows of "
          f"{args.length} bases, blocks of {args.block_length}, {args.feature}")
    for threads in args.threads:
        best = None
        for _ in range(args.repeats):
            started, cpu = time.perf_counter(), time.process_time()
            matrix_scan(codes, matrices, args.block_length, feature=args.feature, threads=threads)
            run = (time.perf_counter() - started, time.process_time() - cpu)
            best = run if best is None or run[0] < best[0] else best
        wall, cpu = best
        print(f"threads {threads}: {wall:.1f} s wall, {cpu:.1f} s CPU; "
              f"{wall / args.windows * 1e4:.0f} s per 10,000 windows "
              f"(load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
