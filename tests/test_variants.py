"""Variant effects: REF/ALT windows on both strands, indels keep the layout, statuses, tables."""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import random_plantt_model
from plantt import model_commands
from plantt import variants as V
from plantt.annotation import Gene, read_genes
from plantt.encoding import decode, encode, reverse_complement, soft_one_hot
from plantt.io import InputError
from plantt.models import TowerSettings, TwoTower, save_model
from plantt.windows import DEFAULT_LAYOUT, extract_windows

SETTINGS = TowerSettings(stem_channels=8, stem_stride=6, stem_kernel=12, stage_kernels=(5, 3, 3),
                         blocks_per_stage=1, inner_convs=1, max_channels=16, embedding_dim=5)
MASKED = DEFAULT_LAYOUT.masked_indices()
HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def random_model(seed: int = 0) -> TwoTower:
    return random_plantt_model(SETTINGS, DEFAULT_LAYOUT.length, seed)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """chr1 (12 kb): gene P on + at [2000, 4500), gene M on - at [7000, 9500);
    chr2 (3 kb): gene Q on + at [300, 2300) (its upstream part runs off the contig start)."""
    root = tmp_path_factory.mktemp("variants")
    rng = np.random.default_rng(11)
    contigs = {"chr1": decode(rng.integers(0, 4, 12000).astype(np.uint8)),
               "chr2": decode(rng.integers(0, 4, 3000).astype(np.uint8))}
    fasta = root / "genome.fa"
    fasta.write_text("".join(f">{name}\n{seq}\n" for name, seq in contigs.items()))
    gff = root / "genes.gff3"
    gff.write_text("##gff-version 3\n"
                   "chr1\tt\tgene\t2001\t4500\t.\t+\t.\tID=P\n"
                   "chr1\tt\tgene\t7001\t9500\t.\t-\t.\tID=M\n"
                   "chr2\tt\tgene\t301\t2300\t.\t+\t.\tID=Q\n")
    model = random_model()
    save_model(root / "model", model)
    return {"root": root, "contigs": contigs, "fasta": fasta, "gff": gff,
            "genes": read_genes(gff), "model": model}


def windows_for(data: dict, gene_id: str, pos: int, ref: str, alt: str
                ) -> tuple[np.ndarray, np.ndarray, V.Edit]:
    """REF and ALT windows of a gene for one VCF allele (pos 1-based)."""
    gene = data["genes"][gene_id]
    genome = V.Genome(data["fasta"])
    try:
        edit = V.minimal_edit(pos, ref, alt)
        ref_codes = V.build_window(V.Haplotype(genome, gene.seqid), gene,
                                   V.reference_anchors(gene))
        anchors = V.alt_anchors(gene, edit)
        assert anchors is not None
        alt_codes = V.build_window(V.Haplotype(genome, gene.seqid, edit), gene, anchors)
    finally:
        genome.close()
    return ref_codes, alt_codes, edit


def masked(text: str) -> np.ndarray:
    codes = encode(text)
    codes[MASKED] = 4
    return codes


def write_vcf(path: Path, lines: list[str]) -> Path:
    text = HEADER + "".join(line + "\n" for line in lines)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def test_reference_windows_equal_extracted_windows(data: dict) -> None:
    genes = [data["genes"][g] for g in ("P", "M", "Q")]
    expected = extract_windows(data["fasta"], genes).codes
    genome = V.Genome(data["fasta"])
    try:
        for gene, row in zip(genes, expected, strict=True):
            window = V.build_window(V.Haplotype(genome, gene.seqid), gene,
                                    V.reference_anchors(gene))
            assert np.array_equal(window, row), gene.gene_id
    finally:
        genome.close()


def test_snv_lands_at_its_index_on_both_strands(data: dict) -> None:
    chr1 = data["contigs"]["chr1"]
    # plus strand: 0-based 1990 is 10 bases before the TSS (2000) -> index 990
    alt = "A" if chr1[1990] != "A" else "C"
    ref_codes, alt_codes, _ = windows_for(data, "P", 1991, chr1[1990], alt)
    assert np.nonzero(ref_codes != alt_codes)[0].tolist() == [990]
    assert decode(alt_codes[990:991]) == alt
    # minus strand: TSS at 9499, upstream runs right of it; 0-based 9510 -> index 999 - 10 = 989
    alt = "A" if chr1[9510] != "A" else "G"
    ref_codes, alt_codes, _ = windows_for(data, "M", 9511, chr1[9510], alt)
    assert np.nonzero(ref_codes != alt_codes)[0].tolist() == [989]
    assert decode(alt_codes[989:990]) == reverse_complement(alt)
    assert decode(ref_codes[989:990]) == reverse_complement(chr1[9510])


def test_insertion_pushes_bases_out_at_the_far_end(data: dict) -> None:
    chr1 = data["contigs"]["chr1"]
    g = 1500  # anchor base (0-based) in P's upstream part [1000, 2000)
    ref_codes, alt_codes, edit = windows_for(data, "P", g + 1, chr1[g], chr1[g] + "TTT")
    assert edit == V.Edit(g + 1, g + 1, "TTT") and edit.kind == "insertion"
    assert alt_codes.size == 3000
    expected_upstream = chr1[1003:g + 1] + "TTT" + chr1[g + 1:2000]
    assert decode(alt_codes[:1000]) == expected_upstream
    assert np.array_equal(alt_codes[1000:], ref_codes[1000:])
    # minus strand: insertion in M's downstream part [6000, 7000) (left of the TTS at 7000)
    g = 6500
    ref_codes, alt_codes, _ = windows_for(data, "M", g + 1, chr1[g], chr1[g] + "AC")
    haplotype = chr1[:g + 1] + "AC" + chr1[g + 1:]
    assert decode(alt_codes[2000:]) == reverse_complement(haplotype[6002:7002])
    assert decode(alt_codes[2499:2501]) == reverse_complement("AC")
    assert np.array_equal(alt_codes[:2000], ref_codes[:2000])


def test_deletion_pulls_in_the_next_bases(data: dict) -> None:
    chr1 = data["contigs"]["chr1"]
    d = 2100  # delete 0-based [2100, 2104) in P's gene_start part [2000, 2500)
    ref_codes, alt_codes, edit = windows_for(data, "P", d, chr1[d - 1:d + 4], chr1[d - 1])
    assert edit == V.Edit(d, d + 4, "") and edit.kind == "deletion"
    assert alt_codes.size == 3000
    expected = masked(chr1[1000:2000] + chr1[2000:d] + chr1[d + 4:2504] + chr1[4000:5500])
    assert np.array_equal(alt_codes, expected)
    # minus strand: delete 0-based [9200, 9202) in M's gene_start part [9000, 9500)
    ref_codes, alt_codes, _ = windows_for(data, "M", 9200, chr1[9199:9202], chr1[9199])
    haplotype = chr1[:9200] + chr1[9202:]
    expected_gene_start = reverse_complement(haplotype[8998:9498])
    assert decode(alt_codes[1003:1500]) == expected_gene_start[3:]
    assert np.array_equal(alt_codes[1500:], ref_codes[1500:])
    assert np.array_equal(alt_codes[:1000], ref_codes[:1000])


def test_insertion_at_the_tss_goes_upstream_and_spanning_deletion_is_refused(data: dict) -> None:
    chr1 = data["contigs"]["chr1"]
    ref_codes, alt_codes, _ = windows_for(data, "P", 2000, chr1[1999], chr1[1999] + "GG")
    assert decode(alt_codes[998:1000]) == "GG"
    assert np.array_equal(alt_codes[1000:], ref_codes[1000:])
    assert V.alt_anchors(data["genes"]["P"], V.minimal_edit(1998, chr1[1997:2003],
                                                            chr1[1997])) is None
    # an equal-length change across the TSS has a defined placement
    mnv = V.minimal_edit(2000, chr1[1999:2001], "".join("A" if b != "A" else "C"
                                                        for b in chr1[1999:2001]))
    assert V.alt_anchors(data["genes"]["P"], mnv) == V.Anchors(2000, 4500)


def test_minimal_edit_and_allele_problems() -> None:
    assert V.minimal_edit(10, "A", "G") == V.Edit(9, 10, "G")
    assert V.minimal_edit(10, "ACG", "A") == V.Edit(10, 12, "")
    assert V.minimal_edit(10, "A", "ATT") == V.Edit(10, 10, "TT")
    assert V.minimal_edit(10, "ACGT", "AGGA") == V.Edit(10, 13, "GGA")
    assert V.minimal_edit(10, "ACGT", "AGGA").kind == "mnv"
    assert V.minimal_edit(10, "ACG", "ATTTG") == V.Edit(10, 11, "TTT")
    assert V.minimal_edit(10, "ACG", "ATTTG").kind == "complex"
    assert V.allele_problem("A", "<DEL>") == "symbolic"
    assert V.allele_problem("A", "A[chr2:100[") == "breakend"
    assert V.allele_problem("A", ".A") == "breakend"
    assert V.allele_problem("A", "*") == "spanning_deletion"
    assert V.allele_problem("A", "R") == "invalid_allele"
    assert V.allele_problem("A", "a") == "alt_equals_ref"
    assert V.allele_problem("A", "tc") is None


def test_score_vcf_statuses_effects_and_gene_table(data: dict, tmp_path: Path) -> None:
    chr1, model = data["contigs"]["chr1"], data["model"]

    def other(base: str) -> str:
        return "A" if base != "A" else "C"

    lines = [
        f"chr1\t1991\tsnvP\t{chr1[1990]}\t{other(chr1[1990])}",  # P upstream, index 990
        f"chr1\t9511\tsnvM\t{chr1[9510]}\t{other(chr1[9510])}",  # M upstream, index 989
        f"chr1\t1501\tinsP\t{chr1[1500]}\t{chr1[1500]}TTT",
        f"chr1\t2100\tdelP\t{chr1[2099:2104]}\t{chr1[2099]}",
        f"chr1\t2201\tmulti\t{chr1[2200]}\t{other(chr1[2200])},{chr1[2200]}GG",
        "chrX\t100\tnocontig\tA\tG",
        f"chr1\t2301\tmismatch\t{other(chr1[2300])}\t{chr1[2300]}",
        f"chr1\t2401\tsym\t{chr1[2400]}\t<DEL>",
        f"chr1\t1998\tspan\t{chr1[1997:2003]}\t{chr1[1997]}",
        f"chr1\t2001\tmasked\t{chr1[2000]}\t{other(chr1[2000])}",  # TSS base: index 1000 is N
        f"chr1\t3000\tmidgene\t{chr1[2999]}\t{other(chr1[2999])}",  # between P's gene parts
        f"chr1\t6000\tnoalt\t{chr1[5999]}\t.",
    ]
    vcf = write_vcf(tmp_path / "calls.vcf.gz", lines)
    table, genes = V.score_vcf(model, vcf, data["fasta"], data["genes"])
    by_id = {vid: part for vid, part in table.groupby("id")}
    assert "midgene" not in by_id and "noalt" not in by_id
    assert by_id["snvP"].iloc[0][["gene", "part", "window_index", "status"]].tolist() == \
        ["P", "upstream", 990, "ok"]
    assert by_id["snvM"].iloc[0][["gene", "part", "window_index", "status"]].tolist() == \
        ["M", "upstream", 989, "ok"]
    assert by_id["insP"].iloc[0]["kind"] == "insertion"
    assert by_id["delP"].iloc[0][["kind", "part", "window_index"]].tolist() == \
        ["deletion", "gene_start", 1100]
    multi = by_id["multi"]
    assert multi["allele_index"].tolist() == [1, 2] and multi["multiallelic"].all()
    assert multi["kind"].tolist() == ["snv", "insertion"] and (multi["status"] == "ok").all()
    assert by_id["nocontig"].iloc[0][["gene", "status"]].tolist() == ["", "unknown_contig"]
    assert by_id["mismatch"].iloc[0]["status"] == "ref_mismatch"
    assert by_id["sym"].iloc[0]["status"] == "symbolic"
    assert by_id["span"].iloc[0]["status"] == "spans_anchor"
    assert by_id["masked"].iloc[0][["status", "effect"]].tolist() == ["no_change", 0.0]
    assert not by_id["snvP"]["multiallelic"].any()
    not_ok = table[~table["status"].isin(["ok", "no_change"])]
    assert not_ok["effect"].isna().all()

    # the effect is f(ALT window, REF window) of the pair model
    for vid, pos, ref, alt, gene in [("snvM", 9511, chr1[9510], other(chr1[9510]), "M"),
                                     ("delP", 2100, chr1[2099:2104], chr1[2099], "P")]:
        ref_codes, alt_codes, _ = windows_for(data, gene, pos, ref, alt)
        with torch.no_grad():
            expected = float(model(soft_one_hot(alt_codes), soft_one_hot(ref_codes))[0])
        assert by_id[vid].iloc[0]["effect"] == pytest.approx(expected, abs=1e-5)
    assert abs(by_id["snvM"].iloc[0]["effect"]) > 0

    p_row = genes.set_index("gene").loc["P"]
    scored = table[(table["gene"] == "P") & table["status"].isin(["ok", "no_change"])]
    assert p_row["sum_effect"] == pytest.approx(scored["effect"].sum())
    assert p_row["n_variants"] == int((table["gene"] == "P").sum())
    strongest = scored.loc[scored["effect"].abs().idxmax()]
    assert p_row["strongest_variant"] == f"chr1:{strongest['pos']}:{strongest['ref']}>" \
                                         f"{strongest['alt']}"


def test_plain_and_gzipped_vcf_read_alike_and_bad_vcf_is_reported(tmp_path: Path) -> None:
    lines = ["chr1\t5\t.\tA\tG,T", "chr2\t7\trs1\tac\tA"]
    plain = list(V.read_vcf(write_vcf(tmp_path / "a.vcf", lines)))
    packed = list(V.read_vcf(write_vcf(tmp_path / "a.vcf.gz", lines)))
    assert [(r.chrom, r.pos, r.ref, r.alts) for r in plain] == \
        [(r.chrom, r.pos, r.ref, r.alts) for r in packed] == \
        [("chr1", 5, "A", ("G", "T")), ("chr2", 7, "AC", ("A",))]
    (tmp_path / "bad.vcf").write_text(HEADER + "chr1\tfive\t.\tA\tG\n")
    with pytest.raises(InputError, match="line 3.*POS must be an integer"):
        list(V.read_vcf(tmp_path / "bad.vcf"))
    (tmp_path / "nohead.vcf").write_text("chr1\t5\t.\tA\tG\n")
    with pytest.raises(InputError, match="before the #CHROM header"):
        list(V.read_vcf(tmp_path / "nohead.vcf"))


def test_cli_writes_both_tables(data: dict, tmp_path: Path) -> None:
    chr1 = data["contigs"]["chr1"]
    vcf = write_vcf(tmp_path / "one.vcf", [f"chr1\t4301\tv\t{chr1[4300]}\t{chr1[4300]}A"])
    parser = argparse.ArgumentParser()
    model_commands.register_cli(parser.add_subparsers())
    args = parser.parse_args(["variants", "--model", str(data["root"] / "model"), "--vcf",
                              str(vcf), "--fasta", str(data["fasta"]), "--annotation",
                              str(data["gff"]), "--out", str(tmp_path / "v.tsv"),
                              "--gene-table", str(tmp_path / "g.tsv")])
    assert args.func(args) == 0
    table = pd.read_csv(tmp_path / "v.tsv", sep="\t", keep_default_na=False)
    assert list(table.columns) == V.VARIANT_COLUMNS
    assert table[["gene", "part", "status"]].values.tolist() == [["P", "gene_end", "ok"]]
    genes = pd.read_csv(tmp_path / "g.tsv", sep="\t")
    assert genes["gene"].tolist() == ["P"] and genes["n_scored"].tolist() == [1]


def test_short_gene_variant_changes_both_gene_parts(tmp_path: Path) -> None:
    """A gene shorter than two gene parts: its parts overlap, and one SNV appears in both."""
    seq = decode(np.random.default_rng(5).integers(0, 4, 4000).astype(np.uint8))
    (tmp_path / "g.fa").write_text(f">c\n{seq}\n")
    gene = Gene("S", "c", 1200, 1800, "+")
    genome = V.Genome(tmp_path / "g.fa")
    try:
        alt = "A" if seq[1400] != "A" else "C"
        edit = V.minimal_edit(1401, seq[1400], alt)
        ref_codes = V.build_window(V.Haplotype(genome, "c"), gene, V.reference_anchors(gene))
        alt_codes = V.build_window(V.Haplotype(genome, "c", edit), gene, V.alt_anchors(gene, edit))
    finally:
        genome.close()
    assert np.nonzero(ref_codes != alt_codes)[0].tolist() == [1200, 1600]
    assert V.window_indices(gene, V.reference_anchors(gene), [1400]) == \
        [(1200, "gene_start"), (1600, "gene_end")]


def test_snvs_and_mnvs_take_the_sliced_path_with_full_pass_effects(
        data: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gene P's four SNVs and MNV are scored on slices of a recorded REF pass, and so is gene M's
    lone SNV (the recorded pass also gives the REF score, so one allele already gains; both genes'
    REF windows are recorded in one batch); P's deletion takes a full pass. The effects equal
    those of full passes for every allele."""
    chr1 = data["contigs"]["chr1"]

    def other(text: str) -> str:
        return "".join("A" if base != "A" else "C" for base in text)

    lines = [f"chr1\t1991\tsnv1\t{chr1[1990]}\t{other(chr1[1990])}",
             f"chr1\t2100\tdel\t{chr1[2099:2104]}\t{chr1[2099]}",
             f"chr1\t2101\tsnv2\t{chr1[2100]}\t{other(chr1[2100])}",
             f"chr1\t2202\tsnv3\t{chr1[2201]}\t{other(chr1[2201])}",
             f"chr1\t4302\tsnv4\t{chr1[4301]}\t{other(chr1[4301])}",
             f"chr1\t4401\tmnv\t{chr1[4400:4403]}\t{other(chr1[4400:4403])}",
             f"chr1\t9511\tlone\t{chr1[9510]}\t{other(chr1[9510])}"]
    vcf = write_vcf(tmp_path / "calls.vcf", lines)
    sliced_edits: list[list[tuple[int, np.ndarray]]] = []
    edited_scores = V.fastism.FastIsm.edited_scores

    def spy(self, edits, *args, **kwargs):
        sliced_edits.append(edits)
        return edited_scores(self, edits, *args, **kwargs)

    monkeypatch.setattr(V.fastism.FastIsm, "edited_scores", spy)
    model = random_model(seed=3)
    with torch.no_grad():  # larger single-base effects than the default initialisation's
        for module in model.modules():
            if isinstance(module, torch.nn.Conv1d):
                module.weight.mul_(2.0)
    table, _ = V.score_vcf(model, vcf, data["fasta"], data["genes"])
    # one batched pass over both genes' REF windows, their alleles in one list
    assert [[(start, len(codes)) for start, codes in edits] for edits in sliced_edits] == \
        [[(990, 1), (1100, 1), (1201, 1), (1801, 1), (1900, 3), (989, 1)]]
    assert (table["status"] == "ok").all() and len(table) == len(lines)

    full, _ = V.score_vcf(model, vcf, data["fasta"], data["genes"], sliced=False)
    assert len(sliced_edits) == 1  # the full-pass run never slices
    np.testing.assert_allclose(table["effect"], full["effect"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(table["ref_score"], full["ref_score"], atol=1e-6, rtol=0)
    assert table["effect"].abs().min() > 1e-3  # large enough for the comparison to fail


def test_filter_multiallelic_records_and_the_tabix_index(data: dict, tmp_path: Path) -> None:
    """FILTER honoured by a setting; records read as pysam.VariantFile reads them; an indexed
    bgzip VCF read through its index gives the table of the whole-file read."""
    import pysam

    chr1, chr2, model = data["contigs"]["chr1"], data["contigs"]["chr2"], data["model"]

    def other(base: str) -> str:
        return "A" if base != "A" else "C"

    lines = [
        f"chr1\t1201\tpassed\t{chr1[1200]}\t{other(chr1[1200])}\t50\tPASS\t.",
        f"chr1\t1301\tmissing\t{chr1[1300]}\t{other(chr1[1300])}\t50\t.\t.",
        f"chr1\t1401\tlowq\t{chr1[1400]}\t{other(chr1[1400])}\t5\tq10\t.",
        f"chr1\t1501\ttwo\t{chr1[1500]}\t{other(chr1[1500])},{chr1[1500]}TT\t5\tq10;lowDP\t.",
        f"chr1\t2201\tmulti\t{chr1[2200]}\t{other(chr1[2200])},{chr1[2200]}GG,<DEL>\t50\tPASS\t.",
        f"chr1\t5801\tbetween\t{chr1[5800]}\t{other(chr1[5800])}\t50\tPASS\t.",  # in no window
        f"chr1\t6000\tdelM\t{chr1[5999:6012]}\t{chr1[5999]}\t50\tPASS\t.",  # M's upstream edge
        f"chr2\t501\tonQ\t{chr2[500]}\t{other(chr2[500])}\t50\tPASS\t.",
    ]
    header = ("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=12000>\n"
              "##contig=<ID=chr2,length=3000>\n##FILTER=<ID=q10,Description=\"low quality\">\n"
              "##FILTER=<ID=lowDP,Description=\"low depth\">\n"
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    plain = tmp_path / "calls.vcf"
    plain.write_text(header + "".join(line + "\n" for line in lines))

    ours = list(V.read_vcf(plain))
    with pysam.VariantFile(str(plain)) as theirs:
        expected = [(r.chrom, r.pos, r.id, r.ref, r.alts,
                     tuple(k for k in r.filter.keys() if k != "PASS")) for r in theirs]
    assert [(r.chrom, r.pos, r.id, r.ref, r.alts, r.filters) for r in ours] == expected

    passing, _ = V.score_vcf(model, plain, data["fasta"], data["genes"])
    every, _ = V.score_vcf(model, plain, data["fasta"], data["genes"], filters="all")
    by_id = {vid: part for vid, part in passing.groupby("id")}
    assert (by_id["lowq"]["status"] == "filtered").all() and by_id["lowq"]["effect"].isna().all()
    assert by_id["two"]["filter"].tolist() == ["q10;lowDP", "q10;lowDP"]
    assert (by_id["two"]["status"] == "filtered").all()
    assert set(by_id["passed"]["status"]) == set(by_id["missing"]["status"]) == {"ok"}
    assert by_id["multi"].sort_values("allele_index")["status"].tolist() == ["ok", "ok", "symbolic"]
    assert "between" not in by_id
    everything = {vid: part for vid, part in every.groupby("id")}
    assert (everything["lowq"]["status"] == "ok").all()
    assert (everything["two"]["status"] == "ok").all()
    shared = passing[passing["status"] != "filtered"].reset_index(drop=True)
    # (equal up to float32 rounding: which path scores an allele depends on its gene's batch)
    pd.testing.assert_frame_equal(
        shared, every[every["id"].isin(shared["id"])].reset_index(drop=True),
        check_exact=False, rtol=1e-3, atol=1e-6)

    # bgzip + tabix: read through the index over the gene windows only, same table
    indexed = Path(pysam.tabix_index(str(plain), preset="vcf", keep_original=True))
    assert V.tabix_index(indexed) is not None
    regions = V.window_regions(list(data["genes"].values()))
    fetched = [r.id for r in V.read_vcf_regions(indexed, regions)]
    assert "between" not in fetched and "delM" in fetched and len(fetched) == len(set(fetched))
    through_index, _ = V.score_vcf(model, indexed, data["fasta"], data["genes"])
    whole_file, _ = V.score_vcf(model, indexed, data["fasta"], data["genes"], use_index=False)
    pd.testing.assert_frame_equal(through_index, whole_file)
    pd.testing.assert_frame_equal(through_index, passing, check_exact=False, rtol=1e-3, atol=1e-6)


def test_indexed_vcf_of_another_naming_is_still_refused(data: dict, tmp_path: Path) -> None:
    import pysam

    plain = tmp_path / "renamed.vcf"
    plain.write_text(HEADER + "1\t1201\tv\tA\tG\t50\tPASS\t.\n")
    indexed = pysam.tabix_index(str(plain), preset="vcf")
    with pytest.raises(InputError, match=r"none of the VCF's contigs \(1\) is in the FASTA"):
        V.score_vcf(data["model"], indexed, data["fasta"], data["genes"])


@pytest.mark.parametrize("genes_per_pass", [1, 3, 64])
def test_alt_scores_do_not_depend_on_genes_per_recorded_pass(genes_per_pass: int) -> None:
    from plantt import fastism
    from plantt.ism import sequence_scores

    model = random_model(3).double()
    rng = np.random.default_rng(4)
    length = DEFAULT_LAYOUT.length
    refs = {f"g{i}": rng.integers(0, 4, length).astype(np.uint8) for i in range(5)}
    alts = []
    for _ in range(12):
        gene = f"g{int(rng.integers(5))}"
        alt = refs[gene].copy()
        pos = int(rng.integers(length))
        alt[pos] = (alt[pos] + 1) % 4
        alts.append((gene, alt))
    ref_scores: dict[str, float] = {}
    scores = V.score_alt_windows(model, refs, alts, ref_scores, batch_size=5,
                                 compiled=fastism.fast_ism_scorer(model),
                                 genes_per_pass=genes_per_pass)
    full = sequence_scores(model, np.stack([a for _, a in alts]))
    np.testing.assert_allclose(scores, full, rtol=0, atol=1e-9)
    assert set(ref_scores) == {g for g, _ in alts}
    # the command's default batch size follows the device
    assert V.default_batch_size(torch.device("cuda")) > V.default_batch_size(torch.device("cpu"))
    assert V.sliced_genes(torch.device("cuda")) > V.sliced_genes(torch.device("cpu"))
