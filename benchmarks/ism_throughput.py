"""Throughput of in-silico mutagenesis: the straightforward batched approach vs the sliced one.

The straightforward approach is what a user of the pair model would write: every mutant and the
reference go through the two-tower forward (``model(mutants, reference)``), so each mutant costs
two tower passes. The sliced approach (:mod:`plantt.fastism`) runs the reference once and then
only the receptive field of each group of mutated positions. Prints the device, mutants/s of
each, the speed-up and the largest absolute difference between their predicted effects. It also
times scattered single-base edits of one sequence, as ``plantt variants`` scores a gene's SNVs:
one full tower pass per edit vs the sliced path (each row of a batch with its own range).

    PYTHONPATH=src python benchmarks/ism_throughput.py --preset paper --seq-len 3000 --mutants 300
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from plantt import fastism, ism
from plantt.encoding import soft_one_hot
from plantt.models import build_model


def naive_effects(model: torch.nn.Module, codes: np.ndarray, positions: np.ndarray,
                  alts: np.ndarray, batch_size: int) -> np.ndarray:
    """f(mutant, reference) through the pair forward, ``batch_size`` mutants at a time."""
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    reference = soft_one_hot(torch.as_tensor(codes)[None].to(device), dtype=dtype)
    out = []
    with torch.inference_mode():
        for start in range(0, positions.size, batch_size):
            batch = ism.mutant_batch(codes, positions[start:start + batch_size],
                                     alts[start:start + batch_size]).to(device)
            mutants = soft_one_hot(batch, dtype=dtype)
            out.append(model(mutants, reference.expand(len(batch), -1, -1)).double().cpu())
    return torch.cat(out).numpy()


def fast_effects(model: torch.nn.Module, codes: np.ndarray, positions: np.ndarray,
                 alts: np.ndarray, batch_size: int, group_width: int) -> np.ndarray:
    reference, sums = fastism.mutant_scores(model, codes, positions, alts, group_width,
                                            batch_size)
    return sums - reference


def scattered_edits(model: torch.nn.Module, codes: np.ndarray, n: int, batch_size: int,
                    rng: np.random.Generator) -> tuple[float, float, float]:
    """(full-pass edits/s, sliced edits/s incl. the recorded reference pass, max |difference|)
    for ``n`` SNVs at random positions of ``codes``."""
    positions = np.sort(rng.choice(codes.size, n, replace=False))
    alts = ((codes[positions] + rng.integers(1, 4, n)) % 4).astype(np.uint8)
    edited = ism.mutant_batch(codes, positions, alts).numpy()
    full, full_s = timed(ism.sequence_scores, model, edited, batch_size)

    def sliced() -> np.ndarray:
        compiled = fastism.fast_ism_scorer(model)
        assert compiled is not None
        fast = fastism.FastIsm(compiled, codes)
        return fast.edited_scores([(int(p), a[None]) for p, a in zip(positions, alts, strict=True)],
                                  batch_size)

    fast, fast_s = timed(sliced)
    return n / full_s, n / fast_s, float(np.abs(full - fast).max())


def calibrate_batch_norm(model: torch.nn.Module, seq_len: int, seed: int) -> None:
    """Random batch-norm scales and shifts, statistics measured on random sequences.

    A fresh model's residual branches are zeroed (zero-init) and its batch-norm statistics are
    the identity, so single-base effects would be ~1e-5: any error would pass a 1e-4 check. With
    statistics measured on data, effects are of order 1, like a trained model's.
    """
    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    with torch.no_grad():
        for norm in norms:
            shape = norm.weight.shape
            norm.weight.copy_(torch.rand(shape, generator=gen) + 0.5)
            norm.bias.copy_(torch.randn(shape, generator=gen) * 0.1)
            norm.reset_running_stats()
            norm.momentum = None  # a plain average over the calibration batches
        model.train()
        codes = torch.randint(0, 4, (16, seq_len), generator=gen, dtype=torch.uint8)
        model.tower(soft_one_hot(codes))
    model.eval()


def timed_positions(seq_len: int, n_positions: int, blocks: int, rng: np.random.Generator
                    ) -> np.ndarray:
    """``blocks`` runs of contiguous positions: one in the middle of the sequence (the worst case:
    the whole receptive field lies inside) or spread evenly from the first to the last base (the
    average over a whole-sequence ISM, ends included)."""
    per_block = -(-n_positions // blocks)
    if blocks == 1:
        starts = [seq_len // 2 - per_block // 2]
    else:
        starts = np.linspace(0, seq_len - per_block, blocks).round().astype(int).tolist()
    return np.unique(np.concatenate([np.arange(s, s + per_block) for s in starts]))


def convolution_macs(ops: list, lo: int, hi: int, length: int) -> tuple[int, int, int, int]:
    """Multiply-adds of the convolutions on the slice a change of input ``[lo, hi)`` can reach,
    and of a full pass: ``(sliced, full, lo, hi)`` (the last two: the final changed range)."""
    sliced = full = 0
    for op in ops:
        if isinstance(op, fastism.WindowOp):
            new_length = op.out_length(length)
            lo, hi = op.changed_outputs(lo, hi, length)
            sliced, full, length = sliced + (hi - lo) * op.macs, full + new_length * op.macs, \
                new_length
        elif isinstance(op, fastism.PointwiseOp) and isinstance(op.module, torch.nn.Conv1d):
            sliced += (hi - lo) * op.module.weight.numel()
            full += length * op.module.weight.numel()
        elif isinstance(op, fastism.ResidualOp):
            b_sliced, b_full, b_lo, b_hi = convolution_macs(op.branch, lo, hi, length)
            sliced, full, lo, hi = sliced + b_sliced, full + b_full, min(lo, b_lo), max(hi, b_hi)
        elif isinstance(op, fastism.DenseOp):
            raise ValueError("dense blocks are not counted (the paper tower has none)")
    return sliced, full, lo, hi


def sliced_fraction(model: torch.nn.Module, positions: np.ndarray, group_width: int) -> float:
    """Mean fraction of a tower pass's convolution work that the sliced path does per mutant,
    groups of ``group_width`` positions sharing a slice as in :class:`fastism.FastIsm`."""
    compiled = fastism.compile_tower(model.tower)
    assert compiled is not None
    fractions = []
    for start in np.unique(positions // group_width) * group_width:
        sliced, full, _, _ = convolution_macs(compiled.ops, int(start), int(start) + group_width,
                                              model.tower.seq_len)
        fractions.append(sliced / full)
    return float(np.mean(fractions))


def timed(fn, *args) -> tuple[np.ndarray, float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--seq-len", type=int, default=3000)
    parser.add_argument("--mutants", type=int, default=300, help="mutants timed (3 per position)")
    parser.add_argument("--batch-size", type=int, default=72,
                        help="mutants per batch of the sliced approach")
    parser.add_argument("--naive-batch-size", type=int, default=32,
                        help="mutants per batch of the straightforward approach (32 was its best "
                             "rate on a 2-core CPU: larger batches leave the caches)")
    parser.add_argument("--group-width", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-check", type=int, default=6, metavar="N",
                        help="also run both approaches in float64 on N mutants (0: skip)")
    parser.add_argument("--blocks", type=int, default=1,
                        help="1: positions in the middle (worst case); more: spread end to end")
    parser.add_argument("--scattered", type=int, default=64, metavar="N",
                        help="also time N scattered SNVs of one sequence (0: skip)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_model("plantt", args.preset, args.seq_len)
    calibrate_batch_norm(model, args.seq_len, args.seed)
    model = model.to(args.device).eval()
    rng = np.random.default_rng(args.seed)
    codes = rng.integers(0, 4, size=args.seq_len).astype(np.uint8)
    scored = timed_positions(args.seq_len, -(-args.mutants // 3), args.blocks, rng)
    positions, alts = ism.substitutions(codes, scored)

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {device_name}; preset {args.preset}, {args.seq_len} bases, "
          f"{positions.size} mutants at {scored.size} positions in {args.blocks} block(s) "
          f"({'middle' if args.blocks == 1 else 'spread end to end'})")
    fast_effects(model, codes, positions[:6], alts[:6], args.batch_size, args.group_width)  # warm
    naive, naive_s = timed(naive_effects, model, codes, positions, alts, args.naive_batch_size)
    fast, fast_s = timed(fast_effects, model, codes, positions, alts, args.batch_size,
                         args.group_width)
    print(f"straightforward (two towers per mutant): {positions.size / naive_s:10.1f} mutants/s")
    print(f"sliced (fastism):                        {positions.size / fast_s:10.1f} mutants/s")
    print(f"speed-up: {naive_s / fast_s:.1f}x")
    fraction = sliced_fraction(model, positions, args.group_width)
    print(f"convolution work per mutant: sliced {fraction:.3f} tower passes, straightforward 2; "
          f"the speed-up at equal FLOP/s would be {2 / fraction:.1f}x")
    print(f"max |effect difference|: {np.abs(naive - fast).max():.3g} "
          f"(largest |effect| {np.abs(naive).max():.3g})")
    if args.scattered:
        full_rate, fast_rate, diff = scattered_edits(model, codes, args.scattered,
                                                     args.naive_batch_size, rng)
        print(f"{args.scattered} scattered SNVs (plantt variants): full passes {full_rate:.1f} "
              f"edits/s, sliced {fast_rate:.1f} edits/s (one recorded reference pass included): "
              f"{fast_rate / full_rate:.1f}x; max |score difference| {diff:.3g}")
    if args.exact_check:
        # Exactness of the slicing itself: both approaches in float64 (goal: within 1e-4). The
        # float32 difference above also holds float32 rounding, which the straightforward
        # approach has as much as the sliced one (printed against float64 too).
        n = min(args.exact_check, positions.size)
        picked = np.linspace(0, positions.size - 1, n).round().astype(int)
        model = model.double()
        naive64 = naive_effects(model, codes, positions[picked], alts[picked], n)
        fast64 = fast_effects(model, codes, positions[picked], alts[picked], args.batch_size,
                              args.group_width)
        print(f"float64, {n} mutants: max |sliced - straightforward| "
              f"{np.abs(fast64 - naive64).max():.3g} (goal: 1e-4)")
        print(f"float32 rounding vs float64: straightforward {np.abs(naive[picked] - naive64).max():.3g}"
              f", sliced {np.abs(fast[picked] - naive64).max():.3g}")


if __name__ == "__main__":
    main()
