"""Our ISM and variant effects against tangermeme's, on the same model and inputs, in one run.

A user who does not know this package would take a PlanTT tower as a single-sequence model
(:class:`plantt.interop.SequenceScore`, ``(N, 4, L) -> (N, 1)``) and call tangermeme:
``saturation_mutagenesis`` (its default ``fast=True`` applies fastISM through ``torch.export``;
``fast=False`` is one full pass per mutant) and ``substitution_effect`` (one pass before and one
after each variant, indels written as the substitutions they amount to in the window). This script
times both against ``plantt ism``'s path (:func:`plantt.ism.ism_scores`) and ``plantt variants``'
path (:func:`plantt.variants.score_alt_windows`), on

* ``paper``: the paper's PlanTT-CNN tower (3,000 bases; random weights, random batch-norm
  statistics so that effects are not degenerate: speed does not depend on the values),
* ``motif``: the demo's preset, likewise,
* ``legacy``: the published PlanTT-CNN when ``--legacy-weights`` names its ``planttcnn.pt``.

ISM: every substitution at ``--positions`` contiguous positions in the middle of each of
``--genes`` random windows. Variants: ``--snvs`` SNVs scattered over ``--variant-genes`` windows
(as a VCF spreads them) and ``--indels`` short deletions (a part of the window shifts, as
``plantt variants`` builds it: every changed base is a substitution for tangermeme). Effects are
compared in float64 (``--check-positions`` positions and the first ``--check-variants`` variants,
every method again in float64). Last line per model:
``vs-tangermeme MODEL: ism X.Xx, variants Y.Yx, max |diff| Z`` (ISM against the faster of
tangermeme's ``fast=True`` and ``fast=False`` on the workload, variants against its
``substitution_effect`` on the SNVs).

    python benchmarks/vs_tangermeme.py --threads 2
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from plantt import fastism, ism, variants
from plantt.interop import SequenceScore
from plantt.models import TwoTower, build_model, load_model


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def random_statistics(model: nn.Module, seed: int) -> nn.Module:
    """Random batch-norm scales, shifts and running statistics (the residual branches would
    otherwise start as zeros and most effects be tiny), in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                shape = module.weight.shape
                module.weight.copy_(torch.rand(shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(shape, generator=gen) * 0.2)
                module.running_mean.copy_(torch.randn(shape, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(shape, generator=gen) + 0.5)
    return model.eval()


def models(args: argparse.Namespace) -> dict[str, TwoTower]:
    out = {}
    for name in args.models:
        if name == "legacy":
            if args.legacy_weights is None or not Path(args.legacy_weights).is_file():
                print("legacy: skipped (give --legacy-weights planttcnn.pt)")
                continue
            from plantt.legacy import import_weights

            directory = import_weights(args.legacy_weights, Path(args.work) / "legacy")
            out[name] = load_model(directory).eval()
        else:
            torch.manual_seed(args.seed)
            out[name] = random_statistics(build_model("plantt", name, args.seq_len), args.seed)
    return out


def one_hot(codes: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """(n, L) codes without N -> (n, 4, L) one-hot, tangermeme's input."""
    x = torch.nn.functional.one_hot(torch.as_tensor(codes, dtype=torch.long), 4)
    return x.permute(0, 2, 1).to(dtype).contiguous()


# ----------------------------------------------------------------------------------------------
# ISM
# ----------------------------------------------------------------------------------------------
def ours_ism(model: TwoTower, windows: np.ndarray, start: int, end: int, batch_size: int
             ) -> np.ndarray:
    """(n, 4, end - start) effects by plantt ism's path."""
    positions = np.arange(start, end)
    return np.stack([ism.ism_scores(model, row, batch_size, positions=positions).effect
                     [start:end].T for row in windows])


def tangermeme_ism(model: TwoTower, windows: np.ndarray, start: int, end: int, batch_size: int,
                   fast: bool, dtype: torch.dtype) -> np.ndarray:
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y0, y_hat = saturation_mutagenesis(SequenceScore(model).eval(), one_hot(windows, dtype),
                                           start=start, end=end, batch_size=batch_size,
                                           raw_outputs=True, fast=fast, dtype=dtype)
    for warning in caught:
        if "fast=False" in str(warning.message):
            print(f"    tangermeme: {warning.message}")
    effects = (y_hat[..., 0] - y0[:, None, None, 0]).double().numpy()  # (n, 4, window)
    # tangermeme's window is [start, end) too; the reference base's own column is 0 in both
    return effects


# ----------------------------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------------------------
def variant_windows(windows: np.ndarray, n_snvs: int, n_indels: int, rng: np.random.Generator
                    ) -> list[tuple[int, np.ndarray]]:
    """(gene index, ALT window) of scattered SNVs and of deletions of 1-5 bases; a deletion at
    position p pulls the window's bases up from upstream (as the 1 kb upstream part moves when a
    promoter loses bases), so everything before p shifts by its length."""
    n_genes, length = windows.shape
    out = []
    for _ in range(n_snvs):
        gene, pos = int(rng.integers(n_genes)), int(rng.integers(length))
        alt = windows[gene].copy()
        alt[pos] = (alt[pos] + rng.integers(1, 4)) % 4
        out.append((gene, alt))
    for _ in range(n_indels):
        gene, size = int(rng.integers(n_genes)), int(rng.integers(1, 6))
        pos = int(rng.integers(200, length // 3))
        upstream = rng.integers(0, 4, size).astype(np.uint8)  # the bases the window gains
        alt = np.concatenate([upstream, windows[gene][:pos], windows[gene][pos + size:]])
        out.append((gene, alt.astype(np.uint8)))
    return out


def ours_variants(model: TwoTower, windows: np.ndarray, alts: list[tuple[int, np.ndarray]],
                  batch_size: int) -> np.ndarray:
    ref_windows = {str(g): windows[g] for g in range(windows.shape[0])}
    ref_scores: dict[str, float] = {}
    compiled = fastism.fast_ism_scorer(model)
    alt_scores = variants.score_alt_windows(model, ref_windows, [(str(g), a) for g, a in alts],
                                            ref_scores, batch_size, compiled)
    return alt_scores - np.array([ref_scores[str(g)] for g, _ in alts])


def tangermeme_variants(model: TwoTower, windows: np.ndarray, alts: list[tuple[int, np.ndarray]],
                        batch_size: int, dtype: torch.dtype) -> np.ndarray:
    from tangermeme.variant_effect import substitution_effect

    refs = np.stack([windows[g] for g, _ in alts])
    rows = [(i, pos, int(alt[pos])) for i, (g, alt) in enumerate(alts)
            for pos in np.flatnonzero(alt != windows[g])]
    before, after = substitution_effect(SequenceScore(model).eval(), one_hot(refs, dtype),
                                        torch.tensor(rows, dtype=torch.long),
                                        batch_size=batch_size, dtype=dtype)
    return (after[:, 0] - before[:, 0]).double().numpy()


# ----------------------------------------------------------------------------------------------
def compare(name: str, model: TwoTower, args: argparse.Namespace, rng: np.random.Generator
            ) -> None:
    length = model.seq_len
    windows = rng.integers(0, 4, size=(args.genes, length)).astype(np.uint8)
    start = (length - args.positions) // 2
    end = start + args.positions
    n_mutants = 3 * args.positions * args.genes
    print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
          f"{length} bases")

    # warm-up: the first call of each path pays for allocations and kernel selection
    ours_ism(model, windows[:1], start, start + 2, args.batch_size)
    tangermeme_ism(model, windows[:1], start, start + 2, args.batch_size, False, torch.float32)
    ours, t_ours = timed(ours_ism, model, windows, start, end, args.batch_size)
    tm_fast, t_fast = timed(tangermeme_ism, model, windows, start, end, args.batch_size, True,
                            torch.float32)
    t_full = None
    if not args.skip_full:
        _, t_full = timed(tangermeme_ism, model, windows, start, end, args.batch_size, False,
                          torch.float32)
    print(f"  ISM, {args.genes} window(s) x {args.positions} positions ({n_mutants} mutants): "
          f"plantt {n_mutants / t_ours:.1f} mutants/s, tangermeme fast=True "
          f"{n_mutants / t_fast:.1f}" + ("" if t_full is None else
                                         f", fast=False {n_mutants / t_full:.1f}") + " mutants/s")
    # against tangermeme's faster setting on this workload (fast=True pays for torch.export)
    ism_ratio = min(t_fast, t_full or t_fast) / t_ours
    float32_diff = float(np.nanmax(np.abs(ours - tm_fast)))

    var_windows = np.stack([rng.integers(0, 4, size=length).astype(np.uint8)
                            for _ in range(args.variant_genes)])
    alts = variant_windows(var_windows, args.snvs, args.indels, rng)
    n_var = len(alts)
    ours_variants(model, var_windows, alts[:2], args.batch_size)
    tangermeme_variants(model, var_windows, alts[:2], args.batch_size, torch.float32)
    ours_v, t_ours_v = timed(ours_variants, model, var_windows, alts, args.batch_size)
    tm_v, t_tm_v = timed(tangermeme_variants, model, var_windows, alts, args.batch_size,
                         torch.float32)
    snvs_only = alts[:args.snvs]
    _, t_ours_snv = timed(ours_variants, model, var_windows, snvs_only, args.batch_size)
    _, t_tm_snv = timed(tangermeme_variants, model, var_windows, snvs_only, args.batch_size,
                        torch.float32)
    print(f"  variants, {args.snvs} SNVs + {args.indels} deletions over {args.variant_genes} "
          f"windows: plantt {n_var / t_ours_v:.1f} variants/s, tangermeme {n_var / t_tm_v:.1f} "
          f"({t_tm_v / t_ours_v:.1f}x); SNVs alone: plantt {args.snvs / t_ours_snv:.1f}, "
          f"tangermeme {args.snvs / t_tm_snv:.1f} variants/s ({t_tm_snv / t_ours_snv:.1f}x)")
    float32_diff = max(float32_diff, float(np.max(np.abs(ours_v - tm_v))))

    # float64: the same computations, fewer of them
    model64 = model.double()
    c_end = start + args.check_positions
    ours64 = ours_ism(model64, windows[:1], start, c_end, args.batch_size)
    d_ism = np.nanmax(np.abs(ours64 - tangermeme_ism(model64, windows[:1], start, c_end,
                                                     args.batch_size, False, torch.float64)))
    d_ism_fast = np.nanmax(np.abs(ours64 - tangermeme_ism(model64, windows[:1], start, c_end,
                                                          args.batch_size, True, torch.float64)))
    check = alts[:args.check_variants] + alts[args.snvs:args.snvs + 2]
    d_var = np.max(np.abs(ours_variants(model64, var_windows, check, args.batch_size)
                          - tangermeme_variants(model64, var_windows, check, args.batch_size,
                                                torch.float64)))
    model.float()
    max_diff = float(max(d_ism, d_ism_fast, d_var))
    print(f"  float64: max |diff| ISM {d_ism:.2g} (tangermeme fast=False), {d_ism_fast:.2g} "
          f"(fast=True), variants {d_var:.2g}; float32: {float32_diff:.2g}")
    print(f"vs-tangermeme {name}: ism {ism_ratio:.1f}x, variants {t_tm_snv / t_ours_snv:.1f}x, "
          f"max |diff| {max_diff:.1g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["paper", "motif", "legacy"],
                        choices=["paper", "motif", "legacy"])
    parser.add_argument("--legacy-weights", default=str(Path(__file__).resolve().parents[2]
                                                        / "shared/plantt_published/planttcnn.pt"))
    parser.add_argument("--seq-len", type=int, default=3000)
    parser.add_argument("--genes", type=int, default=2, help="windows of the ISM")
    parser.add_argument("--positions", type=int, default=100, help="ISM positions per window")
    parser.add_argument("--variant-genes", type=int, default=16)
    parser.add_argument("--snvs", type=int, default=64)
    parser.add_argument("--indels", type=int, default=8)
    parser.add_argument("--check-positions", type=int, default=10)
    parser.add_argument("--check-variants", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-full", action="store_true",
                        help="do not time tangermeme's fast=False ISM (one pass per mutant)")
    parser.add_argument("--work", default="/tmp/vs_tangermeme", help="scratch folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import tangermeme

    print(f"device: cpu, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"tangermeme {getattr(tangermeme, '__version__', '?')}")
    rng = np.random.default_rng(args.seed)
    for name, model in models(args).items():
        compare(name, model, args, rng)


if __name__ == "__main__":
    main()
