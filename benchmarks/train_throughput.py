"""Training throughput of a PlanTT model on random data (a benchmark script, not a test).

Prints the device, the model's FLOPs per pair (counted with ``torch.utils.flop_counter``: the
forward pass of both towers, and a full training step, forward + backward), and the training
throughput in pairs/s over ``--steps`` timed optimizer steps after ``--warmup`` untimed ones. Each
step does what :func:`plantt.train.train_fold` does: gather uint8 codes, build the soft one-hot
batch, forward (bf16 autocast on CUDA), MSE loss, backward, AdamW step.

    python benchmarks/train_throughput.py                      # paper preset, CPU: < 2 minutes
    python benchmarks/train_throughput.py --batch-size 32 --steps 50 --device cuda
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from plantt.encoding import soft_one_hot
from plantt.models import MODEL_KINDS, build_model
from plantt.train import _autocast, resolve_device


def matmul_ceiling(device: torch.device, amp: bool, size: int | None = None, repeats: int = 5
                   ) -> tuple[float, str]:
    """FLOP/s of a large square matrix product on ``device``: what the hardware can reach (bf16 on
    CUDA when training uses bf16 autocast, float32 otherwise)."""
    dtype = torch.bfloat16 if device.type == "cuda" and amp else torch.float32
    n = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / repeats
    return 2 * n**3 / seconds, f"{n}x{n} {str(dtype).removeprefix('torch.')}"


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="plantt", choices=MODEL_KINDS)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--length", type=int, default=3000, help="bases per sequence")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="pairs per step (default: 32 on a GPU, 4 on the CPU)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    batch = args.batch_size or (32 if device.type == "cuda" else 4)
    amp = not args.no_amp
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device: {device} ({name or 'cpu'}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, bf16 autocast: {amp and device.type == 'cuda'}")

    torch.manual_seed(0)
    model = build_model(args.kind, args.preset, args.length)
    n_params = sum(p.numel() for p in model.parameters())
    one = soft_one_hot(np.random.default_rng(0).integers(0, 4, (2, args.length), np.uint8))
    model.eval()
    with torch.no_grad():
        forward_flops = count_flops(lambda: model(one[:1], one[1:]))
    model.train()
    two = soft_one_hot(np.random.default_rng(1).integers(0, 4, (4, args.length), np.uint8))
    step_flops = count_flops(lambda: model(two[:2], two[2:]).square().mean().backward()) / 2
    model.zero_grad(set_to_none=True)
    print(f"model: {args.kind} preset {args.preset}, {args.length} bases, "
          f"{n_params / 1e6:.2f} M parameters")
    print(f"FLOPs per pair: forward {forward_flops / 1e9:.2f} GFLOP, "
          f"training step (forward + backward) {step_flops / 1e9:.2f} GFLOP")

    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=8e-5, weight_decay=0.01)
    rng = np.random.default_rng(2)
    codes = torch.from_numpy(rng.integers(0, 5, (max(4 * batch, 64), args.length), np.uint8))
    codes = codes.to(device)

    def step() -> None:
        idx = torch.from_numpy(rng.integers(0, codes.shape[0], 2 * batch)).to(device)
        x = soft_one_hot(codes[idx])
        target = torch.randn(batch, device=device)
        with _autocast(device, amp):
            out = model(x[:batch], x[batch:])
        loss = F.mse_loss(out.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    pairs_per_s = args.steps * batch / seconds
    print(f"training: batch {batch}, {args.steps} timed steps in {seconds:.2f} s: "
          f"{pairs_per_s:.1f} pairs/s, {seconds / args.steps * 1000:.0f} ms/step, "
          f"{pairs_per_s * step_flops / 1e12:.3f} TFLOP/s achieved")
    ceiling, what = matmul_ceiling(device, amp)
    achieved = pairs_per_s * step_flops
    print(f"ceiling: {what} matrix product {ceiling / 1e12:.3f} TFLOP/s; training reaches "
          f"{100 * achieved / ceiling:.1f}% of it")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
