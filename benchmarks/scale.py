"""Wall time and peak memory of our genome-wide steps on generated genomes of growing size.

For each genome size (default 50, 200 and 800 Mb, in contigs of at most 400 Mb), the script writes a
random genome FASTA, a GFF3 with one gene per ``--gene-spacing`` bases (the same gene density, so
the same reads per gene, at every size), a QuantSeq-like 3'-RNA-seq BAM and two paired-end PRO-seq
BAMs (written as SAM text, sorted and indexed by samtools: STAR is not part of this), then runs each
step of ours in a process of its own and reads that process's peak resident memory (VmHWM):

    count_rnaseq3p  count_proseq  proseq_bigwig  merge_bigwig  pausing  gene_beds  windows

It prints one line per size and step, then the growth of each step's peak RSS from the smallest to
the largest genome; the last line is

    scale: peak RSS growth X.XXx (worst step NAME), largest Y.YY GB at Z Mb

    python benchmarks/scale.py                      # 50, 200, 800 Mb: about 5 minutes on 2 cores
    python benchmarks/scale.py --sizes 5 20 --reads-per-gene 50      # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

STEPS = ("count_rnaseq3p", "count_proseq", "proseq_bigwig", "merge_bigwig", "pausing", "gene_beds",
         "windows")
MAX_CONTIG = 400_000_000
READ_LENGTH = 50


def contig_lengths(size: int) -> dict[str, int]:
    n = -(-size // MAX_CONTIG)
    return {f"chr{k + 1}": size // n + (1 if k < size % n else 0) for k in range(n)}


def write_fasta(path: Path, lengths: dict[str, int], rng: np.random.Generator) -> None:
    """Random bases, 80 per line, written 8 Mb at a time (the generator's memory stays small)."""
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    piece = 100_000 * 80
    with open(path, "wb") as handle:
        for name, length in lengths.items():
            handle.write(f">{name}\n".encode())
            for start in range(0, length, piece):
                n = min(piece, length - start)
                bases = letters[rng.integers(0, 4, n, dtype=np.uint8)]
                full = n // 80
                lines = np.empty((full, 81), dtype=np.uint8)
                lines[:, :80] = bases[:full * 80].reshape(full, 80)
                lines[:, 80] = ord("\n")
                handle.write(lines.tobytes())
                if n % 80:
                    handle.write(bases[full * 80:].tobytes() + b"\n")


def make_genes(lengths: dict[str, int], spacing: int, rng: np.random.Generator
               ) -> list[tuple[str, int, int, str]]:
    """(contig, start, end, strand), 0-based half-open, one gene per ``spacing`` bases."""
    genes = []
    for name, length in lengths.items():
        for slot in range(0, length - spacing, spacing):
            gene_length = int(rng.integers(2_000, 6_000))
            start = slot + int(rng.integers(2_000, spacing - gene_length - 2_000))
            genes.append((name, start, start + gene_length, "+" if rng.random() < 0.5 else "-"))
    return genes


def write_gff(path: Path, genes: list[tuple[str, int, int, str]]) -> None:
    with open(path, "w") as handle:
        handle.write("##gff-version 3\n")
        for k, (contig, start, end, strand) in enumerate(genes):
            for kind, attributes in (("gene", f"ID=g{k}"), ("mRNA", f"ID=g{k}.1;Parent=g{k}"),
                                     ("exon", f"Parent=g{k}.1")):
                handle.write(f"{contig}\tsim\t{kind}\t{start + 1}\t{end}\t.\t{strand}\t.\t"
                             f"{attributes}\n")


def _sam_header(lengths: dict[str, int]) -> str:
    return "@HD\tVN:1.6\tSO:unsorted\n" + "".join(f"@SQ\tSN:{c}\tLN:{n}\n"
                                                  for c, n in lengths.items())


def write_bam(path: Path, lengths: dict[str, int], records: list[tuple[str, int, int, str]],
              workdir: Path) -> None:
    """Records ``(contig, leftmost 0-based, flag, mate fields)`` as a sorted, indexed BAM."""
    sam = workdir / (path.name + ".sam")
    with open(sam, "w") as handle:
        handle.write(_sam_header(lengths))
        for k, (contig, pos, flag, mate) in enumerate(records):
            handle.write(f"r{k // 2 if flag & 1 else k}\t{flag}\t{contig}\t{pos + 1}\t255\t"
                         f"{READ_LENGTH}M\t{mate}\t*\t*\n")
    subprocess.run(["samtools", "sort", "-@", "2", "-m", "500M", "-o", str(path), str(sam)],
                   check=True, capture_output=True)
    subprocess.run(["samtools", "index", "-c", str(path)], check=True, capture_output=True)
    sam.unlink()


def rnaseq_records(genes, reads_per_gene: int, rng) -> list:
    """Reads on the gene's strand, 5' ends in the last 500 bp of the gene and the 3' extension."""
    records = []
    for contig, start, end, strand in genes:
        offsets = rng.integers(0, 800, reads_per_gene)
        for offset in offsets:
            if strand == "+":
                records.append((contig, end - 500 + int(offset), 0, "*\t0\t0"))
            else:
                five = start + 500 - int(offset)
                records.append((contig, max(five - READ_LENGTH + 1, 0), 16, "*\t0\t0"))
    return records


def proseq_records(genes, reads_per_gene: int, rng) -> list:
    """Read pairs whose read 1 5' end (antisense to the gene) marks the polymerase: a third of them
    in a pause peak 30-80 bp after the TSS, the rest over the gene body."""
    records = []
    for contig, start, end, strand in genes:
        length = end - start
        paused = rng.integers(30, 80, reads_per_gene // 3)
        body = rng.integers(0, length, reads_per_gene - paused.size)
        for offset in np.concatenate([paused, body]):
            if strand == "+":  # read 1 on the minus strand, its 5' end (rightmost) at the polymerase
                polymerase = start + int(offset)
                read1 = max(polymerase - READ_LENGTH + 1, 0)
                read2 = max(read1 - 100, 0)
                records.append((contig, read1, 1 | 2 | 64 | 16, f"=\t{read2 + 1}\t0"))
                records.append((contig, read2, 1 | 2 | 128 | 32, f"=\t{read1 + 1}\t0"))
            else:  # read 1 on the plus strand, 5' end (leftmost) at the polymerase
                polymerase = end - 1 - int(offset)
                read2 = polymerase + 100
                records.append((contig, polymerase, 1 | 2 | 64 | 32, f"=\t{read2 + 1}\t0"))
                records.append((contig, read2, 1 | 2 | 128 | 16, f"=\t{polymerase + 1}\t0"))
    return records


def generate(folder: Path, size: int, spacing: int, reads_per_gene: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    lengths = contig_lengths(size)
    files = {"fasta": folder / "genome.fa", "gff": folder / "genes.gff3",
             "rnaseq": folder / "rnaseq3p.bam", "pro1": folder / "proseq_1.bam",
             "pro2": folder / "proseq_2.bam"}
    write_fasta(files["fasta"], lengths, rng)
    genes = make_genes(lengths, spacing, rng)
    write_gff(files["gff"], genes)
    write_bam(files["rnaseq"], lengths, rnaseq_records(genes, reads_per_gene, rng), folder)
    for name in ("pro1", "pro2"):
        write_bam(files[name], lengths, proseq_records(genes, reads_per_gene, rng), folder)
    return {"files": files, "genes": len(genes)}


def step_code(step: str, files: dict, out: Path, chunk_size: int) -> str:
    """The Python a step runs in its own process (the workflow's script rules call the same)."""
    f = {k: str(v) for k, v in files.items()}
    if step.startswith("count_"):
        assay = step.removeprefix("count_")
        return f"""
            from plantt.quantify import CountSettings, count_reads
            bam = {f['rnaseq'] if assay == 'rnaseq3p' else f['pro1']!r}
            table, _ = count_reads(bam, {f['gff']!r}, CountSettings({assay!r}), {chunk_size})
            assert table['count'].sum() > 0"""
    if step == "proseq_bigwig":
        return f"""
            from plantt.proseq import write_polymerase_bigwigs
            for rep in ("pro1", "pro2"):
                bam = {{"pro1": {f['pro1']!r}, "pro2": {f['pro2']!r}}}[rep]
                write_polymerase_bigwigs(bam, "{out}/" + rep + ".plus.bw",
                                         "{out}/" + rep + ".minus.bw", chunk_size={chunk_size})"""
    if step == "merge_bigwig":
        return f"""
            from plantt.proseq import merge_bigwigs
            merge_bigwigs(["{out}/pro1.plus.bw", "{out}/pro2.plus.bw"], "{out}/merged.plus.bw",
                          chunk_size={chunk_size})"""
    if step == "pausing":
        return f"""
            from plantt.annotation import read_genes
            from plantt.proseq import PauseSettings, pause_indices_from_bams
            table = pause_indices_from_bams(read_genes({f['gff']!r}), [{f['pro1']!r}, {f['pro2']!r}],
                                            PauseSettings(), chunk_size={chunk_size})
            assert table['covered'].sum() > 0"""
    if step == "gene_beds":
        return f"""
            from plantt.proseq import write_gene_beds
            write_gene_beds({f['gff']!r}, {{"plus_signal": "{out}/plus.bed",
                                             "minus_signal": "{out}/minus.bed"}})"""
    if step == "windows":
        return f"""
            from plantt.annotation import read_genes
            from plantt.windows import write_windows
            genes = list(read_genes({f['gff']!r}).values())
            write_windows({f['fasta']!r}, genes, "{out}/windows.fa", "{out}/windows.tsv")"""
    raise ValueError(step)


# The step's own peak: VmHWM of its process after exec. (wait4's ru_maxrss would not do: Linux
# carries the high-water mark over exec, so a child forked from this script starts at our size.)
_REPORT_PEAK = """
with open("/proc/self/status") as _status, open({target!r}, "w") as _out:
    _out.write(next(line for line in _status if line.startswith("VmHWM:")).split()[1])
"""


def run_step(code: str, folder: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of ``code`` run in a fresh Python process."""
    peak_file = folder / "peak_kib.txt"
    program = textwrap.dedent(code) + _REPORT_PEAK.format(target=str(peak_file))
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a full pipe would block
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", program], stderr=errors, check=False)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"step failed:\n{code}\n{errors.read()[-3000:]}")
    peak_kib = int(peak_file.read_text())
    peak_file.unlink()
    return seconds, peak_kib / 1024 ** 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[50, 200, 800],
                        help="genome sizes in Mb (default 50 200 800)")
    parser.add_argument("--gene-spacing", type=int, default=100_000,
                        help="one gene per this many bases (pea: about 1 per 100 kb)")
    parser.add_argument("--reads-per-gene", type=int, default=200,
                        help="reads (3'-RNA-seq) and read pairs (PRO-seq) per gene and BAM")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="bases per chunk (default: plantt.chunks.DEFAULT_CHUNK_SIZE)")
    parser.add_argument("--workdir", help="where to write the genomes (default: a temporary "
                                          "folder, removed afterwards)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from plantt.chunks import DEFAULT_CHUNK_SIZE

    chunk_size = args.chunk_size or DEFAULT_CHUNK_SIZE
    if shutil.which("samtools") is None:
        parser.error("samtools is needed to sort and index the generated BAMs")
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, chunk {chunk_size:,} bp")
    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="plantt-scale-"))
    peaks: dict[str, dict[int, float]] = {step: {} for step in STEPS}
    try:
        for size_mb in args.sizes:
            size = int(size_mb * 1_000_000)
            folder = base / f"{size_mb:g}Mb"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            started = time.perf_counter()
            made = generate(folder, size, args.gene_spacing, args.reads_per_gene, args.seed)
            print(f"{size_mb:g} Mb: {made['genes']} genes, generated in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            for step in STEPS:
                seconds, rss = run_step(step_code(step, made["files"], folder, chunk_size), folder)
                peaks[step][size] = rss
                print(f"  {step:<15} {seconds:7.1f} s  peak RSS {rss:6.3f} GB", flush=True)
            if not args.workdir:
                shutil.rmtree(folder)
    finally:
        if not args.workdir:
            shutil.rmtree(base, ignore_errors=True)
    smallest, largest = min(peaks[STEPS[0]]), max(peaks[STEPS[0]])
    growth = {step: values[largest] / values[smallest] for step, values in peaks.items()}
    for step in STEPS:
        print(f"growth {step:<15} {growth[step]:.2f}x")
    worst = max(growth, key=growth.get)
    top = max(values[largest] for values in peaks.values())
    print(f"scale: peak RSS growth {growth[worst]:.2f}x (worst step {worst}), largest {top:.2f} GB "
          f"at {largest / 1e6:g} Mb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
