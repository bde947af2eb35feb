"""Windows around TSS and TTS, checked base by base against a plain-Python reading of the FASTA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantt import cli
from plantt.annotation import read_genes
from plantt.encoding import decode
from plantt.windows import DEFAULT_LAYOUT, WindowLayout, extract_windows, part_intervals

COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}

# (gene id, contig, 0-based start, end, strand)
GENES = [
    ("g_plus", "chr2", 3000, 5000, "+"),
    ("g_minus", "chr2", 2000, 3300, "-"),
    ("g_near_start", "chr1", 300, 1800, "+"),  # 700 upstream bases before the contig start
    ("g_near_end", "chr1", 3500, 4800, "-"),  # upstream (right of it) passes the end by 800
    ("g_minus_start", "chr1", 100, 1400, "-"),  # downstream passes the contig start
    ("g_short", "chr2", 6000, 6300, "+"),  # shorter than one gene part: parts overlap
]
CONTIGS = {"chr1": 5000, "chr2": 8000}


def random_genome(seed: int = 3) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ACGTACGTACGTacgtNRYK"))
    return {name: "".join(rng.choice(alphabet, size=length)) for name, length in CONTIGS.items()}


def write_fasta(path: Path, genome: dict[str, str], width: int = 61) -> None:
    with open(path, "w") as handle:
        for name, seq in genome.items():
            handle.write(f">{name} some description\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i:i + width] + "\n")


def write_gff(path: Path, genes=GENES, extra: str = "") -> None:
    lines = ["##gff-version 3"]
    for gene_id, contig, start, end, strand in genes:
        lines.append(f"{contig}\ttest\tgene\t{start + 1}\t{end}\t.\t{strand}\t.\tID={gene_id}")
        lines.append(f"{contig}\ttest\tmRNA\t{start + 1}\t{end}\t.\t{strand}\t.\t"
                     f"ID={gene_id}.1;Parent={gene_id}")
        lines.append(f"{contig}\ttest\texon\t{start + 1}\t{end}\t.\t{strand}\t.\t"
                     f"Parent={gene_id}.1")
    path.write_text("\n".join(lines) + "\n" + extra)


def plain_fasta(path: Path) -> dict[str, str]:
    """FASTA read without pyfaidx: name = first word of the header."""
    records: dict[str, list[str]] = {}
    name = None
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            records[name] = []
        elif line.strip():
            records[name].append(line.strip())
    return {k: "".join(v) for k, v in records.items()}


def expected_window(seq: str, start: int, end: int, strand: str,
                    layout: WindowLayout = DEFAULT_LAYOUT) -> str:
    """The window computed position by position from the layout's definition."""
    up, part, down, mask = layout.upstream, layout.gene_part, layout.downstream, layout.mask
    out = []
    for i in range(up + 2 * part + down):
        if strand == "+":
            if i < up:
                pos = start - up + i
            elif i < up + part:
                pos = start + (i - up)
            elif i < up + 2 * part:
                pos = end - part + (i - up - part)
            else:
                pos = end + (i - up - 2 * part)
        else:
            if i < up:
                pos = end - 1 + up - i
            elif i < up + part:
                pos = end - 1 - (i - up)
            elif i < up + 2 * part:
                pos = start + part - 1 - (i - up - part)
            else:
                pos = start - 1 - (i - up - 2 * part)
        base = seq[pos].upper() if 0 <= pos < len(seq) else "N"
        base = base if base in "ACGT" else "N"
        if strand == "-":
            base = COMPLEMENT[base]
        tss, tts = up, up + 2 * part - 1
        if tss <= i < tss + mask or tts - mask < i <= tts:
            base = "N"
        out.append(base)
    return "".join(out)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    write_fasta(tmp_path / "genome.fa", random_genome())
    write_gff(tmp_path / "genes.gff3")
    return tmp_path


def run_cli(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.windows"])
    return cli.main(argv)


def test_windows_match_independent_slices(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = run_cli(monkeypatch, ["windows", "--fasta", str(inputs / "genome.fa"),
                                 "--annotation", str(inputs / "genes.gff3"),
                                 "--out", str(inputs / "w.fa"), "--coords",
                                 str(inputs / "w.tsv")])
    assert code == 0
    genome = plain_fasta(inputs / "genome.fa")
    windows = plain_fasta(inputs / "w.fa")
    assert list(windows) == [g[0] for g in GENES]
    for gene_id, contig, start, end, strand in GENES:
        got = windows[gene_id]
        assert len(got) == 3000
        assert got == expected_window(genome[contig], start, end, strand), gene_id


def test_tss_and_tts_positions_and_masking(inputs: Path) -> None:
    genome = plain_fasta(inputs / "genome.fa")
    genes = read_genes(inputs / "genes.gff3")
    ws = extract_windows(inputs / "genome.fa", [genes["g_plus"], genes["g_minus"]])
    plus, minus = decode(ws.codes[0]), decode(ws.codes[1])
    assert set(plus[1000:1003]) == {"N"} and set(plus[1997:2000]) == {"N"}
    chr2 = genome["chr2"].upper()
    # First unmasked gene base: 3 after the TSS; last unmasked: 3 before the TTS.
    assert plus[1003] == (chr2[3003] if chr2[3003] in "ACGT" else "N")
    assert plus[1996] == (chr2[4996] if chr2[4996] in "ACGT" else "N")
    # Minus strand: index 999 is the base just upstream of the TSS (genomic end), complemented.
    base = chr2[3300] if chr2[3300] in "ACGT" else "N"
    assert minus[999] == COMPLEMENT[base]


def test_coordinates_table_reports_clipping(inputs: Path) -> None:
    genes = read_genes(inputs / "genes.gff3")
    coords = extract_windows(inputs / "genome.fa", list(genes.values())).coords
    near_start = coords[coords["gene_id"] == "g_near_start"].set_index("part")
    assert near_start.loc["upstream", "start"] == 0 and near_start.loc["upstream", "end"] == 300
    assert near_start.loc["upstream", "n_padded"] == 700
    assert bool(near_start.loc["upstream", "clipped_left"])
    assert not near_start["clipped_right"].any()
    assert near_start.loc["downstream", ["start", "end"]].tolist() == [1800, 2800]
    near_end = coords[coords["gene_id"] == "g_near_end"].set_index("part")
    assert near_end.loc["upstream", ["start", "end", "n_padded"]].tolist() == [4800, 5000, 800]
    assert bool(near_end.loc["upstream", "clipped_right"])
    assert near_end.loc["gene_start", ["start", "end"]].tolist() == [4300, 4800]
    assert near_end.loc["gene_end", ["start", "end"]].tolist() == [3500, 4000]
    assert near_end.loc["gene_start", ["window_start", "window_end"]].tolist() == [1000, 1500]
    plus = coords[coords["gene_id"] == "g_plus"]
    assert plus["n_padded"].sum() == 0 and not plus[["clipped_left", "clipped_right"]].any().any()


def test_other_layouts(inputs: Path) -> None:
    layout = WindowLayout(upstream=20, gene_part=7, downstream=13, mask=2)
    genome = plain_fasta(inputs / "genome.fa")
    genes = read_genes(inputs / "genes.gff3")
    ws = extract_windows(inputs / "genome.fa", list(genes.values()), layout)
    assert ws.codes.shape == (len(GENES), 47)
    for row, (_, contig, start, end, strand) in enumerate(GENES):
        assert decode(ws.codes[row]) == expected_window(genome[contig], start, end, strand, layout)
    parts = part_intervals(list(genes.values()), layout)
    assert (parts["window_end"] - parts["window_start"]).tolist()[:4] == [20, 7, 7, 13]


def test_gene_list_selects_and_orders(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (inputs / "ids.txt").write_text("g_short\n\ng_plus\ng_short\n")
    code = run_cli(monkeypatch, ["windows", "--fasta", str(inputs / "genome.fa"), "--annotation",
                                 str(inputs / "genes.gff3"), "--out", str(inputs / "w.fa"),
                                 "--genes", str(inputs / "ids.txt")])
    assert code == 0
    assert list(plain_fasta(inputs / "w.fa")) == ["g_short", "g_plus"]


def test_genes_from_pairs_table(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pd.DataFrame({"orthogroup": ["OG1", "OG2"], "label": ["{A,B}", "{A,B}"],
                  "gene_a": ["g_minus", "x1"], "species_a": ["sp1", "sp2"],
                  "gene_b": ["y1", "g_plus"], "species_b": ["sp2", "sp1"]}).to_csv(
        inputs / "pairs.tsv", sep="\t", index=False)
    code = run_cli(monkeypatch, ["windows", "--fasta", str(inputs / "genome.fa"), "--annotation",
                                 str(inputs / "genes.gff3"), "--out", str(inputs / "w.fa"),
                                 "--pairs", str(inputs / "pairs.tsv"), "--species", "sp1"])
    assert code == 0
    assert list(plain_fasta(inputs / "w.fa")) == ["g_minus", "g_plus"]


def test_unknown_gene_ids_are_named(inputs: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    (inputs / "ids.txt").write_text("g_plus\nnot_a_gene\nalso_missing\n")
    code = run_cli(monkeypatch, ["windows", "--fasta", str(inputs / "genome.fa"), "--annotation",
                                 str(inputs / "genes.gff3"), "--out", str(inputs / "w.fa"),
                                 "--genes", str(inputs / "ids.txt")])
    err = capsys.readouterr().err
    assert code == 1
    assert "ids.txt" in err and "not_a_gene" in err and "also_missing" in err
    assert not (inputs / "w.fa").exists()


def test_contig_missing_from_fasta(inputs: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture) -> None:
    write_gff(inputs / "genes.gff3", GENES + [("g_lost", "chrX", 10, 2000, "+")])
    code = run_cli(monkeypatch, ["windows", "--fasta", str(inputs / "genome.fa"), "--annotation",
                                 str(inputs / "genes.gff3"), "--out", str(inputs / "w.fa")])
    err = capsys.readouterr().err
    assert code == 1
    assert "g_lost" in err and "chrX" in err and "genome.fa" in err


def test_malformed_gff_line_is_reported(inputs: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    write_gff(inputs / "genes.gff3", extra="chr1\ttest\tgene\t10\n")
    n_lines = len((inputs / "genes.gff3").read_text().splitlines())
    code = run_cli(monkeypatch, ["windows", "--fasta", str(inputs / "genome.fa"), "--annotation",
                                 str(inputs / "genes.gff3"), "--out", str(inputs / "w.fa")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"genes.gff3, line {n_lines}" in err and "9 tab-separated columns" in err
