"""Window extraction rate (genes/s) on a generated genome (a benchmark script, not a test).

Writes a random genome (``--contigs`` contigs) with ``--genes`` multi-exon genes on both strands
(GFF3), then times the two steps of ``plantt windows``: reading the annotation and extracting the
3000 bp windows with pyfaidx (strand-aware, masked, encoded). Prints the device line and genes/s.

    python benchmarks/window_extraction.py                 # 20,000 genes, ~1 minute on 2 cores
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from plantt.annotation import read_genes
from plantt.windows import extract_windows


def write_genome(folder: Path, n_genes: int, n_contigs: int, seed: int) -> tuple[Path, Path]:
    """A FASTA of random contigs and a GFF3 with ``n_genes`` genes spread over them."""
    rng = np.random.default_rng(seed)
    per_contig = -(-n_genes // n_contigs)
    spacing = 5000  # gene + intergenic; genes 1-3 kb
    fasta, gff = folder / "genome.fa", folder / "genes.gff3"
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    made = 0
    with open(fasta, "w") as fa, open(gff, "w") as gf:
        gf.write("##gff-version 3\n")
        for c in range(n_contigs):
            name = f"chr{c + 1}"
            length = per_contig * spacing + 2000
            fa.write(f">{name}\n")
            seq = bases[rng.integers(0, 4, length)].tobytes().decode()
            fa.write("\n".join(seq[i:i + 80] for i in range(0, length, 80)) + "\n")
            for g in range(per_contig):
                if made == n_genes:
                    break
                made += 1
                start = 1000 + g * spacing + int(rng.integers(0, 500))  # 0-based
                size = int(rng.integers(1000, 3000))
                strand = "+" if rng.random() < 0.5 else "-"
                gid = f"g{made:06d}"
                end = start + size
                split = start + size // 2
                gf.write(f"{name}\tbench\tgene\t{start + 1}\t{end}\t.\t{strand}\t.\tID={gid}\n")
                gf.write(f"{name}\tbench\tmRNA\t{start + 1}\t{end}\t.\t{strand}\t.\t"
                         f"ID={gid}.1;Parent={gid}\n")
                for k, (a, b) in enumerate(((start, split - 100), (split, end))):
                    gf.write(f"{name}\tbench\texon\t{a + 1}\t{b}\t.\t{strand}\t.\t"
                             f"ID={gid}.1.exon{k + 1};Parent={gid}.1\n")
    return fasta, gff


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--contigs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"device: cpu ({platform.processor() or platform.machine()}); window extraction is "
          "CPU and disk work")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fasta, gff = write_genome(Path(tmp), args.genes, args.contigs, args.seed)
        print(f"generated {args.genes} genes on {args.contigs} contigs "
              f"({fasta.stat().st_size / 1e6:.0f} MB FASTA) in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        genes = list(read_genes(gff).values())
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        windows = extract_windows(fasta, genes, annotation=gff)
        extract_s = time.perf_counter() - start
    assert windows.codes.shape == (args.genes, 3000)
    print(f"annotation: {len(genes)} genes read in {read_s:.2f} s ({len(genes) / read_s:,.0f} genes/s)")
    print(f"windows: {len(genes)} extracted in {extract_s:.2f} s "
          f"({len(genes) / extract_s:,.0f} genes/s, incl. pyfaidx index build)")
    total = read_s + extract_s
    print(f"total: {len(genes) / total:,.0f} genes/s")


if __name__ == "__main__":
    main()
