"""Data path: a training step with the real loader vs with pre-made tensors (a benchmark, not a test).

The real loader is what :func:`plantt.train.train_fold` uses: :class:`plantt.train.CodeBank` keeps
the encoded windows as uint8 codes (on the GPU when training there) and builds each batch's soft
one-hot on the fly from shuffled pair indices. The alternative has every batch's one-hot tensors
made beforehand and already on the device, so a step is model work only. The difference is what
the data path costs; it should stay within 5%.

    python benchmarks/data_path.py                              # paper preset, CPU: ~1-2 minutes
    python benchmarks/data_path.py --device cuda --batch-size 32 --steps 50
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from plantt.models import MODEL_KINDS, build_model
from plantt.train import CodeBank, _autocast, resolve_device


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="plantt", choices=MODEL_KINDS)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--genes", type=int, default=2000, help="encoded windows in the bank")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="pairs per step (default: 32 on a GPU, 4 on the CPU)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant (x3 rounds)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    batch = args.batch_size or (32 if device.type == "cuda" else 4)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {device} ({name}); {args.kind} preset {args.preset}, batch {batch}")

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, (args.genes, 3000), dtype=np.uint8)  # what encoded.npy holds
    bank = CodeBank(codes, device)
    torch.manual_seed(0)
    model = build_model(args.kind, args.preset, 3000).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    amp = device.type == "cuda"
    n_batches = args.steps
    idx = [rng.integers(0, args.genes, (2, batch)) for _ in range(n_batches)]
    targets = [torch.randn(batch, device=device) for _ in range(n_batches)]
    premade = [bank.pair_batch(a, b) for a, b in idx]  # on the device before timing

    def step(xa: torch.Tensor, xb: torch.Tensor, target: torch.Tensor) -> None:
        with _autocast(device, amp):
            out = model(xa, xb)
        loss = F.mse_loss(out.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def run(loader: bool) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for i in range(n_batches):
            xa, xb = bank.pair_batch(*idx[i]) if loader else premade[i]
            step(xa, xb, targets[i])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) / n_batches

    run(True)  # warm-up (allocator, kernels)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(3):  # interleaved rounds, so drifting clocks hit both alike
        for loader in (False, True):
            times[loader].append(run(loader))
    premade_s, loader_s = min(times[False]), min(times[True])
    # The loader's own time per batch, measured alone over many batches: the step-to-step noise
    # of a CPU training step (several %) hides it in the end-to-end comparison.
    repeats = 200
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for i in range(repeats):
        bank.pair_batch(*idx[i % n_batches])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    batch_s = (time.perf_counter() - start) / repeats
    spread = max(times[False]) / premade_s - 1
    print(f"pre-made tensors on the device: {premade_s * 1000:8.1f} ms/step "
          f"({batch / premade_s:.1f} pairs/s)")
    print(f"real loader (CodeBank):        {loader_s * 1000:8.1f} ms/step "
          f"({batch / loader_s:.1f} pairs/s)")
    print(f"data path overhead, end to end: {100 * (loader_s / premade_s - 1):+.1f}% "
          f"(goal: within 5%; the pre-made rounds themselves spread by {100 * spread:.1f}%)")
    print(f"loader alone: {batch_s * 1000:.3f} ms per batch of {batch} pairs, "
          f"{100 * batch_s / premade_s:.2f}% of a step")


if __name__ == "__main__":
    main()
