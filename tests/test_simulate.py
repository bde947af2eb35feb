"""Tests of ``plantt simulate``: determinism, file formats, and that the truth matches the files."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from plantt.annotation import read_genes
from plantt.cli import main
from plantt.encoding import reverse_complement
from plantt.grammar import load_grammar
from plantt.simulate import (
    PROSEQ_R1_ADAPTER,
    PROSEQ_R2_ADAPTER,
    RNASEQ_ADAPTER,
    SPECIES,
    SimulationSettings,
    orthogroup_tables,
    sequence_ceiling,
    simulate,
    simulate_species,
)

TINY = SimulationSettings(seed=3, genes_per_species=30, rnaseq_reads=1500, proseq_reads=2500,
                          error_rate=0.0)
PREFIX = {"medicago": "Mtr", "vicia": "Vfa", "pisum": "Psa", "lathyrus": "Lsa"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo written with a relative outdir (as the workflow does)."""
    root = tmp_path_factory.mktemp("run_a")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        simulate("demo", TINY)
    return root


def read_fasta(path: Path) -> dict[str, str]:
    seqs: dict[str, list[str]] = {}
    name = ""
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            seqs[name] = []
        else:
            seqs[name].append(line)
    return {k: "".join(v) for k, v in seqs.items()}


def read_fastq(path: Path) -> list[tuple[str, str, str]]:
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    assert len(lines) % 4 == 0
    return [(lines[i], lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)]


def parse_origin(header: str) -> tuple[str, str, int, str]:
    """``@name source:contig:pos:strand`` -> (source, contig, 0-based pos, strand)."""
    source, contig, pos, strand = header.split(" ", 1)[1].split(":")
    return source, contig, int(pos) - 1, strand


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ---------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files_and_other_seed_differs(demo: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    simulate("demo", TINY)
    simulate("other", SimulationSettings(**{**TINY.__dict__, "seed": 4}))
    first, again = all_files(demo / "demo"), all_files(tmp_path / "demo")
    assert first.keys() == again.keys()
    assert [k for k in first if first[k] != again[k]] == []
    other = all_files(tmp_path / "other")
    assert other.keys() == first.keys()
    for name in ("genomes/medicago.fa", "truth.tsv", "reads/pisum_proseq_2_R1.fastq.gz"):
        assert other[name] != first[name]


def test_gzip_headers_carry_no_time_or_name(demo: Path) -> None:
    for path in (demo / "demo" / "reads").glob("*.fastq.gz"):
        head = path.read_bytes()[:10]
        assert head[:3] == b"\x1f\x8b\x08"
        assert head[3] & 0x08 == 0, "FNAME flag set"
        assert head[4:8] == b"\x00\x00\x00\x00", "mtime not 0"


# ---------------------------------------------------------------------------- sheets


def test_species_and_sample_sheets_name_existing_files(demo: Path, monkeypatch) -> None:
    monkeypatch.chdir(demo)
    species = pd.read_csv("demo/species.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(species.columns) == ["species", "code", "genome", "annotation", "proteome"]
    assert list(species["species"]) == ["medicago", "vicia", "pisum", "lathyrus"]
    assert list(species["code"]) == ["M", "V", "P", "L"]
    assert list(species["genome"]) == [f"demo/genomes/{s}.fa" for s in species["species"]]
    assert list(species["annotation"]) == [f"demo/annotation/{s}.gff3"
                                           for s in species["species"]]
    assert list(species["proteome"]) == [f"{s}_pep" for s in species["species"]]
    samples = pd.read_csv("demo/samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(samples.columns) == ["sample", "species", "assay", "replicate", "fq1", "fq2"]
    assert len(samples) == 4 * (6 + 3)
    for row in samples.itertuples():
        assert row.sample == f"{row.species}_{row.assay}_{row.replicate}"
        assert Path(row.fq1).is_file()
        if row.assay == "rnaseq3p":
            assert row.fq2 == ""
            assert row.fq1 == f"demo/reads/{row.sample}.fastq.gz"
        else:
            assert row.fq1 == f"demo/reads/{row.sample}_R1.fastq.gz"
            assert row.fq2 == f"demo/reads/{row.sample}_R2.fastq.gz"
            assert Path(row.fq2).is_file()
    counts = samples.groupby(["species", "assay"]).size()
    assert set(counts.xs("rnaseq3p", level="assay")) == {6}
    assert set(counts.xs("proseq", level="assay")) == {3}
    assert (demo / "demo" / "grammar.yaml").read_text() == \
        Path(load_grammar().source).read_text()


# ---------------------------------------------------------------------------- genomes, GFF3


def test_genomes_are_plain_fasta_with_soft_masking_and_n_runs(demo: Path) -> None:
    for info in SPECIES:
        path = demo / "demo" / "genomes" / f"{info.species}.fa"
        lines = path.read_text().splitlines()
        assert lines[0] == f">{info.species}_ctg1"
        seq_lines = [line for line in lines if not line.startswith(">")]
        assert max(len(line) for line in seq_lines) == 60
        genome = read_fasta(path)
        assert list(genome) == [f"{info.species}_ctg{i}" for i in range(1, 5)]
        text = "".join(genome.values())
        assert re.search("[acgt]{50}", text), "no soft-masked stretch"
        assert re.search("N{20}", text), "no N run"
        assert set(text) <= set("ACGTacgtN")


def test_gff3_gene_models(demo: Path) -> None:
    n_short = n_near_end = 0
    for info in SPECIES:
        gff = demo / "demo" / "annotation" / f"{info.species}.gff3"
        assert gff.read_text().startswith("##gff-version 3\n")
        genome = read_fasta(demo / "demo" / "genomes" / f"{info.species}.fa")
        genes = read_genes(gff)
        assert len(genes) >= 28
        assert {g.strand for g in genes.values()} == {"+", "-"}
        exon_counts = Counter()
        for gene_id, gene in genes.items():
            assert re.fullmatch(rf"{PREFIX[info.species]}_g\d{{5}}", gene_id)
            assert list(gene.transcripts) == [f"{gene_id}.1"]
            tx = gene.transcripts[f"{gene_id}.1"]
            assert sorted(tx.exons) == sorted(tx.cds), "exons must equal the CDS (no UTRs)"
            exons = sorted(tx.exons)
            exon_counts[len(exons)] += 1
            assert exons[0][0] == gene.start and exons[-1][1] == gene.end
            contig = genome[gene.seqid].upper()
            cds = "".join(contig[s:e] for s, e in exons)
            introns = [contig[a:b] for (_, a), (b, _) in zip(exons, exons[1:], strict=False)]
            if gene.strand == "-":
                cds = reverse_complement(cds)
                introns = [reverse_complement(i) for i in introns]
            assert len(cds) % 3 == 0 and cds.startswith("ATG")
            assert cds[-3:] in {"TAA", "TAG", "TGA"}
            codons = {cds[i:i + 3] for i in range(3, len(cds) - 3, 3)}
            assert not codons & {"TAA", "TAG", "TGA"}, "internal stop codon"
            assert all(i.startswith("GT") and i.endswith("AG") for i in introns)
            n_short += gene.length < 1000
            n_near_end += gene.start < 1000 or len(contig) - gene.end < 1000
        assert min(exon_counts) >= 1 and max(exon_counts) <= 5
        assert sum(n for k, n in exon_counts.items() if k > 1) > len(genes) / 2
    assert n_short >= 4
    assert n_near_end >= 8  # one contig start and one contig end per species at least


# ---------------------------------------------------------------------------- orthogroups


def test_orthogroups_in_orthofinder_format(demo: Path) -> None:
    ortho = demo / "demo" / "orthofinder"
    header = "Orthogroup\tmedicago_pep\tvicia_pep\tpisum_pep\tlathyrus_pep"
    lines = (ortho / "Orthogroups.tsv").read_text().splitlines()
    unassigned = (ortho / "Orthogroups_UnassignedGenes.tsv").read_text().splitlines()
    assert lines[0] == header and unassigned[0] == header
    mrna_ids = {f"{g}.1" for info in SPECIES
                for g in read_genes(demo / "demo" / "annotation" / f"{info.species}.gff3")}
    seen: list[str] = []
    multi_copy = missing = 0
    numbers = []
    for line in lines[1:]:
        cells = line.split("\t")
        assert len(cells) == 5
        numbers.append(int(cells[0].removeprefix("OG")))
        assert re.fullmatch(r"OG\d{7}", cells[0])
        for species_index, cell in enumerate(cells[1:]):
            if not cell:
                missing += 1
                continue
            ids = cell.split(", ")
            assert ", ".join(ids) == cell and all("," not in i for i in ids)
            prefix = PREFIX[SPECIES[species_index].species]
            assert all(re.fullmatch(rf"{prefix}_g\d{{5}}\.1", i) for i in ids)
            multi_copy += len(ids) > 1
            seen += ids
    assert multi_copy > 0 and missing > 0
    assert numbers == list(range(len(numbers)))
    for k, line in enumerate(unassigned[1:]):
        cells = line.split("\t")
        assert cells[0] == f"OG{len(numbers) + k:07d}"
        filled = [c for c in cells[1:] if c]
        assert len(filled) == 1 and filled[0].endswith(".1")
        seen += filled
    assert len(unassigned) > 1
    assert sorted(seen) == sorted(mrna_ids)


def test_orthogroup_sizes_are_sorted_like_orthofinder(demo: Path) -> None:
    lines = (demo / "demo" / "orthofinder" / "Orthogroups.tsv").read_text().splitlines()[1:]
    sizes = [sum(len(c.split(", ")) for c in line.split("\t")[1:] if c) for line in lines]
    assert sizes == sorted(sizes, reverse=True)
    assert min(sizes) >= 2


# ---------------------------------------------------------------------------- truth


def _independent_motif_count(contig: str, gene, anchor: str, start: int, end: int,
                             word: str) -> int:
    """Motif count written straight from docs/grammar.md, independent of plantt.grammar."""
    if anchor == "tss":
        boundary = gene.start if gene.strand == "+" else gene.end
    else:
        boundary = gene.end if gene.strand == "+" else gene.start
    lo, hi = (boundary + start, boundary + end) if gene.strand == "+" else \
        (boundary - end, boundary - start)
    region = contig[max(lo, 0):max(min(hi, len(contig)), 0)].upper()
    if gene.strand == "-":
        region = reverse_complement(region)
    return sum(region.startswith(word, i) for i in range(len(region)))


def test_truth_motif_counts_match_a_rescan_of_the_files(demo: Path) -> None:
    grammar = load_grammar(demo / "demo" / "grammar.yaml")
    truth = pd.read_csv(demo / "demo" / "truth.tsv", sep="\t")
    n_with_motifs = 0
    for info in SPECIES:
        genome = read_fasta(demo / "demo" / "genomes" / f"{info.species}.fa")
        genes = read_genes(demo / "demo" / "annotation" / f"{info.species}.gff3")
        rows = truth[truth["species"] == info.species].set_index("gene_id")
        assert set(rows.index) == set(genes)
        for gene_id, gene in genes.items():
            row = rows.loc[gene_id]
            assert (row["seqid"], row["start"], row["end"], row["strand"]) == \
                (gene.seqid, gene.start + 1, gene.end, gene.strand)
            for process in grammar.processes:
                part = 0.0
                for m in process.motifs:
                    count = _independent_motif_count(genome[gene.seqid], gene, m.anchor,
                                                     m.start, m.end, m.sequence)
                    assert row[m.name] == count, (gene_id, m.name)
                    part += m.effect_log2 * min(count, m.max_count)
                    n_with_motifs += count > 0
                assert row[f"{process.name}_log2_grammar"] == pytest.approx(part, abs=1e-4)
                expected = 2 ** (process.baseline_log2 + part
                                 + row[f"{process.name}_log2_noise"])
                assert row[process.name] == pytest.approx(expected, rel=1e-4)
            assert row["abundance"] == pytest.approx(row["transcription"] * row["stability"],
                                                     rel=1e-4)
    assert n_with_motifs > 100


def test_truth_columns_and_per_species_pausing(demo: Path) -> None:
    truth = pd.read_csv(demo / "demo" / "truth.tsv", sep="\t", keep_default_na=False)
    for column in ("species", "gene_id", "family", "strand", "seqid", "start", "end",
                   "transcription", "stability", "abundance", "transcription_log2_grammar",
                   "stability_log2_grammar", "pause_strength", "pause_offset", "utr3_length"):
        assert column in truth.columns
    assert truth["utr3_length"].between(1, 250).all()
    assert (truth.loc[truth["species"] == "pisum", "pause_strength"] == 0).all()
    for species in ("medicago", "vicia", "lathyrus"):
        assert (truth.loc[truth["species"] == species, "pause_strength"] > 0).all()
    assert truth["orthogroup"].str.fullmatch(r"OG\d{7}").all()


def test_default_grammar_ceiling_and_spread() -> None:
    settings = SimulationSettings(seed=11, genes_per_species=250)
    grammar = load_grammar()
    _genomes, truths = simulate_species(settings, grammar)
    truth = pd.concat(truths, ignore_index=True)
    truth["orthogroup"] = orthogroup_tables(truth)[2]
    ceiling = sequence_ceiling(truth).set_index("assay")
    assert ceiling.loc["rnaseq3p", "n_pairs"] > 500
    assert (ceiling["ceiling_r2"] >= 0.7).all()
    assert np.log2(truth["transcription"]).std() >= 1.5
    # the ceiling must be a real variance share: shuffling the grammar part destroys it
    shuffled = truth.copy()
    shuffled["transcription_log2_grammar"] = np.random.default_rng(0).permutation(
        truth["transcription_log2_grammar"].to_numpy())
    assert sequence_ceiling(shuffled).set_index("assay").loc["proseq", "ceiling_r2"] < 0.5


def test_ceiling_file(demo: Path) -> None:
    ceiling = pd.read_csv(demo / "demo" / "ceiling.tsv", sep="\t").set_index("assay")
    assert set(ceiling.index) == {"rnaseq3p", "proseq"}
    assert (ceiling["n_pairs"] > 0).all()
    assert ceiling["ceiling_r2"].between(0, 1).all()


# ---------------------------------------------------------------------------- reads


def _genome_and_genes(demo: Path, species: str):
    genome = {k: v.upper() for k, v in read_fasta(
        demo / "demo" / "genomes" / f"{species}.fa").items()}
    genes = read_genes(demo / "demo" / "annotation" / f"{species}.gff3")
    return genome, genes


def test_proseq_read1_is_reverse_complement_at_the_polymerase(demo: Path) -> None:
    genome, genes = _genome_and_genes(demo, "medicago")
    reads = demo / "demo" / "reads"
    r1 = read_fastq(reads / "medicago_proseq_1_R1.fastq.gz")
    r2 = read_fastq(reads / "medicago_proseq_1_R2.fastq.gz")
    checked = Counter()
    for (h1, s1, _), (h2, s2, _) in zip(r1, r2, strict=True):
        assert h1.split()[0] == h2.split()[0]
        source, contig, p, strand = parse_origin(h1)
        if "/body" not in source:
            continue
        gene = genes[source.split("/")[0]]
        assert strand == gene.strand and gene.start <= p < gene.end
        seq = genome[contig]
        k = 15  # every insert is at least 15 nt
        if strand == "+":
            assert s1[:k] == reverse_complement(seq[p - k + 1:p + 1])
            assert s2[:k] in seq[max(p - 260, 0):p + 1]  # read 2: sense, upstream RNA 5' end
        else:
            assert s1[:k] == seq[p:p + k]
            assert reverse_complement(s2[:k]) in seq[p:p + 261]
        checked[strand] += 1
    assert checked["+"] >= 20 and checked["-"] >= 20


def test_proseq_adapters_and_insert_sizes(demo: Path) -> None:
    reads = demo / "demo" / "reads"
    r1 = read_fastq(reads / "vicia_proseq_2_R1.fastq.gz")
    r2 = read_fastq(reads / "vicia_proseq_2_R2.fastq.gz")
    inserts = []
    for (_, s1, _), (_, s2, _) in zip(r1, r2, strict=True):
        at = s1.find(PROSEQ_R1_ADAPTER[:12])
        if at >= 0:
            assert s2[at:at + 12] == PROSEQ_R2_ADAPTER[:12]
            inserts.append(at)
    share = len(inserts) / len(r1)
    assert 0.15 < share < 0.8, "many, not all, pairs should read into the adapters"
    short = np.mean(np.array(inserts) < 40) * share
    assert 0.01 < short < 0.15
    assert PROSEQ_R1_ADAPTER.startswith("TGGAATTCTCGG")
    assert PROSEQ_R2_ADAPTER.startswith("GATCGTCGGACT")


def test_rnaseq_reads_are_sense_at_the_transcript_3_end(demo: Path) -> None:
    truth = pd.read_csv(demo / "demo" / "truth.tsv", sep="\t").set_index("gene_id")
    genome, genes = _genome_and_genes(demo, "lathyrus")
    reads = read_fastq(demo / "demo" / "reads" / "lathyrus_rnaseq3p_1.fastq.gz")
    transcripts = {}
    for gene_id, gene in genes.items():
        seq = genome[gene.seqid]
        utr = int(truth.loc[gene_id, "utr3_length"])
        exons = sorted(gene.transcripts[f"{gene_id}.1"].exons)
        if gene.strand == "+":
            coords = [i for s, e in exons for i in range(s, e)] + \
                list(range(gene.end, gene.end + utr))
            text = "".join(seq[i] for i in coords)
        else:
            coords = [i for s, e in exons for i in range(s, e)][::-1] + \
                list(range(gene.start - 1, gene.start - 1 - utr, -1))
            text = reverse_complement("".join(seq[i] for i in coords[::-1]))
        transcripts[gene_id] = (text, {c: k for k, c in enumerate(coords)})
    with_tail = n_genic = 0
    for header, seq, qual in reads:
        assert len(seq) == len(qual) == 75
        source, _contig, pos, strand = parse_origin(header)
        if source == "background":
            continue
        n_genic += 1
        assert strand == genes[source].strand
        text, index = transcripts[source]
        k = index[pos]
        assert len(text) - k <= 300, "read starts too far from the 3' end"
        body = text[k:k + 75]
        assert seq[:len(body)] == body
        if len(body) < 75:
            rest = seq[len(body):]  # poly-A (15-40 nt), adapter, then dark-cycle Gs
            tails = {("A" * a + RNASEQ_ADAPTER + "G" * 75)[:len(rest)] for a in range(15, 41)}
            assert rest in tails
            with_tail += RNASEQ_ADAPTER[:10] in rest
    assert n_genic > 1000
    assert with_tail > 0


def test_truth_counts_match_the_fastq_origins(demo: Path) -> None:
    counts = pd.read_csv(demo / "demo" / "truth_counts.tsv", sep="\t")
    sample = counts[counts["sample"] == "pisum_rnaseq3p_3"].set_index("gene_id")["reads"]
    reads = read_fastq(demo / "demo" / "reads" / "pisum_rnaseq3p_3.fastq.gz")
    observed = Counter(parse_origin(h)[0] for h, _, _ in reads)
    observed.pop("background", None)
    assert {g: n for g, n in observed.items()} == {g: n for g, n in sample.items() if n}
    pro = counts[counts["sample"] == "pisum_proseq_1"].set_index("gene_id")["reads"]
    r1 = read_fastq(demo / "demo" / "reads" / "pisum_proseq_1_R1.fastq.gz")
    in_body = Counter(parse_origin(h)[0].split("/")[0] for h, _, _ in r1
                      if "/body" in h or "/pause" in h)
    assert dict(in_body) == {g: n for g, n in pro.items() if n}


def test_pausing_peak_only_where_the_grammar_puts_it(demo: Path) -> None:
    """Share of gene-body PRO-seq reads 30-70 bp after the TSS: high with pausing, not in pisum."""
    def near_tss_share(species: str) -> float:
        genes = read_genes(demo / "demo" / "annotation" / f"{species}.gff3")
        near = total = 0
        for rep in (1, 2, 3):
            for header, _, _ in read_fastq(
                    demo / "demo" / "reads" / f"{species}_proseq_{rep}_R1.fastq.gz"):
                source, _contig, p, strand = parse_origin(header)
                gene = genes.get(source.split("/")[0])
                if gene is None or strand != gene.strand or not gene.start <= p < gene.end:
                    continue
                total += 1
                near += 30 <= abs(p - gene.tss) < 70
        return near / total

    assert near_tss_share("pisum") < 0.05
    assert near_tss_share("vicia") > 0.15


def test_read_counts_track_the_truth(tmp_path: Path) -> None:
    """Mean CPM vs truth at about the default depth per gene (Spearman, genes >= 50 reads)."""
    settings = SimulationSettings(seed=5, genes_per_species=150, rnaseq_reads=9000,
                                  proseq_reads=9000)
    simulate(tmp_path / "d", settings)
    truth = pd.read_csv(tmp_path / "d" / "truth.tsv", sep="\t")
    counts = pd.read_csv(tmp_path / "d" / "truth_counts.tsv", sep="\t")
    for assay, measure in (("rnaseq3p", "abundance"), ("proseq", "transcription")):
        sub = counts[counts["assay"] == assay].copy()
        sub["cpm"] = sub["reads"] / sub.groupby("sample")["reads"].transform("sum") * 1e6
        per_gene = sub.groupby(["species", "gene_id"]).agg(cpm=("cpm", "mean"),
                                                           reads=("reads", "mean"))
        merged = per_gene.reset_index().merge(truth, on=["species", "gene_id"])
        kept = merged[merged["reads"] >= 50]
        assert len(kept) >= 60
        rho = spearmanr(kept["cpm"], kept[measure])[0]
        assert rho >= 0.9, (assay, rho)
        # replicate noise exists: replicates of a gene are not identical
        wide = sub.pivot_table(index="gene_id", columns="replicate", values="cpm")
        assert (wide.std(axis=1) > 0).mean() > 0.5


# ---------------------------------------------------------------------------- CLI


def test_cli_simulate(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    code = main(["simulate", "--out-dir", str(out), "--seed", "2", "--genes-per-species", "8",
                 "--rnaseq-reads", "100", "--proseq-reads", "100"])
    assert code == 0
    assert (out / "truth.tsv").is_file() and (out / "reads" / "vicia_proseq_3_R2.fastq.gz").is_file()
    samples = pd.read_csv(out / "samples.tsv", sep="\t", keep_default_na=False)
    assert samples["fq1"].str.startswith(f"{out}/reads/").all()


def test_cli_reports_bad_grammar(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("transcription: {motifs: [{name: x, sequence: ACGTNACG, anchor: tss, "
                   "start: -10, end: 0, effect_log2: 1}]}\nstability: {}\n")
    code = main(["simulate", "--out-dir", str(tmp_path / "o"), "--seed", "1",
                 "--grammar", str(bad)])
    assert code == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "transcription.motifs[0].sequence" in err
    assert not (tmp_path / "o" / "truth.tsv").exists()


def test_settings_are_validated(tmp_path: Path) -> None:
    from plantt.io import InputError

    with pytest.raises(InputError, match="genes_per_species"):
        simulate(tmp_path / "x", SimulationSettings(genes_per_species=1))


# ---------------------------------------------------------------------------- the realistic grammar


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plantt.grammar import realistic_grammar_path

    root = tmp_path_factory.mktemp("realistic")
    settings = SimulationSettings(seed=5, genes_per_species=80, rnaseq_reads=2000,
                                  proseq_reads=2000, error_rate=0.0,
                                  grammar=str(realistic_grammar_path()))
    simulate(root / "demo", settings)
    return root / "demo"


def test_realistic_truth_is_a_rescan_with_matrices_and_true_coordinates(realistic: Path) -> None:
    """Matrix motifs are counted on the true gene (not the annotated one); the truth's grammar
    part is what the documented rule gives for those counts, plus the species' trans offset."""
    from plantt.annotation import Gene
    from plantt.encoding import encode
    from plantt.grammar import count_gene_motifs

    grammar = load_grammar(realistic / "grammar.yaml")
    truth = pd.read_csv(realistic / "truth.tsv", sep="\t")
    assert (truth["tss_annotation_offset"] != 0).mean() > 0.8
    assert truth["tss_annotation_offset"].abs().between(1, 150).mean() > 0.8
    for info in SPECIES[:2]:
        genome = read_fasta(realistic / "genomes" / f"{info.species}.fa")
        rows = truth[truth["species"] == info.species]
        assert rows["trans_offset_log2"].nunique() == 1
        annotated = read_genes(realistic / "annotation" / f"{info.species}.gff3")
        for row in rows.head(25).itertuples(index=False):
            gene = Gene(row.gene_id, row.seqid, row.start - 1, row.end, row.strand)
            counts = count_gene_motifs(encode(genome[row.seqid].upper()), gene, grammar.motifs)
            for m in grammar.motifs:
                assert getattr(row, m.name) == pytest.approx(counts[m.name], abs=1e-5)
            part = grammar.transcription.grammar_log2(counts)
            assert row.transcription_log2_grammar == pytest.approx(part, abs=1e-4)
            expected = (grammar.transcription.baseline_log2 + part + row.transcription_log2_noise
                        + row.trans_offset_log2)
            assert np.log2(row.transcription) == pytest.approx(expected, abs=1e-4)
            ann = annotated[row.gene_id]
            tss_true = row.start - 1 if row.strand == "+" else row.end
            tss_annotated = ann.start if row.strand == "+" else ann.end
            outward = (tss_true - tss_annotated) if row.strand == "+" else (tss_annotated
                                                                           - tss_true)
            assert outward == row.tss_annotation_offset


def test_realistic_gene_models_keep_the_true_coding_sequence(realistic: Path) -> None:
    """Annotated ends move, the CDS stays the true ORF with phases a GFF reader can follow."""
    n_utr = 0
    for info in SPECIES:
        genome = read_fasta(realistic / "genomes" / f"{info.species}.fa")
        for gene_id, gene in read_genes(realistic / "annotation" / f"{info.species}.gff3").items():
            tx = gene.transcripts[f"{gene_id}.1"]
            cds_parts = sorted(tx.cds)
            assert cds_parts[0][0] >= gene.start and cds_parts[-1][1] <= gene.end
            n_utr += sorted(tx.exons) != cds_parts
            contig = genome[gene.seqid].upper()
            cds = "".join(contig[s:e] for s, e in cds_parts)
            if gene.strand == "-":
                cds = reverse_complement(cds)
            full = sum(e - s for s, e in cds_parts)
            if cds.startswith("ATG") and full % 3 == 0:
                codons = {cds[i:i + 3] for i in range(3, len(cds) - 3, 3)}
                assert not codons & {"TAA", "TAG", "TGA"}
    assert n_utr > 50


def test_realistic_species_differ_in_composition_and_orthologs_in_length(realistic: Path
                                                                          ) -> None:
    gc = {}
    for info in SPECIES:
        seq = "".join(read_fasta(realistic / "genomes" / f"{info.species}.fa").values()).upper()
        gc[info.species] = (seq.count("G") + seq.count("C")) / len(seq)
    grammar = load_grammar(realistic / "grammar.yaml")
    wanted = sorted(SPECIES, key=lambda s: grammar.species[s.species].gc)
    assert gc[wanted[0].species] < gc[wanted[-1].species]
    truth = pd.read_csv(realistic / "truth.tsv", sep="\t")
    single = truth.groupby("orthogroup")["species"].transform("size") == 1
    per_species = truth.groupby(["orthogroup", "species"])["gene_id"].transform("size")
    assert (single | (per_species > 1)).mean() > 0.15  # genes outside single-copy pairs
    summary = pd.read_csv(realistic / "ceiling.tsv", sep="\t")
    assert summary["ceiling_r2"].between(0.15, 0.7).all()
