"""The Python API on a trained model of the workflow: score windows, compare two species' windows,
mutate and explain one gene.

After the demo (``snakemake --cores 2``)::

    python docs/api_example.py results/models/rnaseq3p/plantt/fold_0 \\
        results/windows/medicago.fa results/windows/pisum.fa

It prints what it finds, then one JSON line of the figures (tests/test_api.py runs it on the
trained demo and checks them against the command line).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pyfaidx

import plantt
from plantt.encoding import encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a trained model's folder (results/models/...)")
    parser.add_argument("windows_a", help="a FASTA of 3-kb windows (results/windows/<species>.fa)")
    parser.add_argument("windows_b", help="the windows of another species")
    parser.add_argument("--genes", type=int, default=3, help="windows of each species to score")
    args = parser.parse_args()

    # Load once, then reuse: every function also takes the folder itself.
    model = plantt.load_model(args.model, device="cpu")
    length = model.info["seq_len"]
    fasta_a, fasta_b = pyfaidx.Fasta(args.windows_a), pyfaidx.Fasta(args.windows_b)
    names_a = list(fasta_a.keys())[:args.genes]
    names_b = list(fasta_b.keys())[:args.genes]
    seqs_a = [str(fasta_a[name][:]) for name in names_a]
    seqs_b = [str(fasta_b[name][:]) for name in names_b]
    print(f"{model.info['kind']} model, windows of {length} bp")

    # One score per window (a two-tower model: its tower's sum(z), expression up to an offset).
    scores_a = plantt.predict_sequences(model, seqs_a)
    for name, score in zip(names_a, scores_a, strict=True):
        print(f"  {name}: score {score:+.3f}")

    # Pairs: predicted log2 difference a - b. Strings or one-hot arrays (4, L) are accepted.
    # (codes 0-4 for A, C, G, T, N; N -> a column of zeros)
    one_hot_b = np.stack([np.eye(5, 4, dtype=np.float32)[encode(seq)].T for seq in seqs_b])
    differences = plantt.predict_pairs(model, seqs_a, one_hot_b)
    for a, b, d in zip(names_a, names_b, differences, strict=True):
        print(f"  {a} vs {b}: predicted difference {d:+.3f}")

    # Every substitution of the first window near its TSS (window position 1000).
    effects = plantt.saturation_mutagenesis(model, seqs_a[0], positions=range(900, 1100))
    base, position = np.unravel_index(np.nanargmax(np.abs(effects)), effects.shape)
    strongest = float(effects[base, position])
    print(f"  strongest substitution of {names_a[0]} near its TSS: {'ACGT'[base]} at "
          f"{position} ({strongest:+.4f})")

    # DeepLift against the other species' window: the contributions add up to the score difference.
    contributions = plantt.attribute(model, seqs_a[:1], references=seqs_b[:1])
    total = float(contributions.sum())
    print(f"  DeepLift contributions of {names_a[0]} against {names_b[0]} sum to {total:+.4f}")

    print(json.dumps({"genes_a": names_a, "genes_b": names_b, "scores_a": scores_a.tolist(),
                      "differences": differences.tolist(), "ism_base": "ACGT"[base],
                      "ism_position": int(position), "ism_effect": strongest,
                      "attribution_sum": total}))


if __name__ == "__main__":
    main()
