"""Bad annotations and genome FASTA files: a clear InputError or a correct result, never a traceback.

Regression tests for the cases of the issue (genes on two contigs or strands, GFF3 children away
from their parents, dangling Parents, gzip genome FASTA, truncated/binary annotation files), then
property tests: generated GFF3, GTF and FASTA files parse to what they were generated from, and
mutated ones give the right answer or an InputError.
"""

from __future__ import annotations

import gzip
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pysam
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from plantt import cli
from plantt.annotation import Gene, read_genes
from plantt.encoding import decode
from plantt.io import InputError
from plantt.windows import extract_windows, fasta_compression, open_genome, read_gene_list

PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def gff_line(seqid: str, ftype: str, start: int, end: int, strand: str, attrs: str) -> str:
    """A GFF3/GTF feature line from 0-based half-open coordinates."""
    return f"{seqid}\tt\t{ftype}\t{start + 1}\t{end}\t.\t{strand}\t.\t{attrs}\n"


def run_windows(monkeypatch: pytest.MonkeyPatch, fasta: Path, annotation: Path, out: Path) -> int:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.windows"])
    return cli.main(["windows", "--fasta", str(fasta), "--annotation", str(annotation),
                     "--out", str(out)])


GENOME = {"chr1": "ACGTTGCA" * 40, "chr2": "TTGACCAG" * 50}


def write_genome(path: Path, genome: dict[str, str] = GENOME, width: int = 60) -> Path:
    with open(path, "w") as handle:
        for name, seq in genome.items():
            handle.write(f">{name} description\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i:i + width] + "\n")
    return path


# ----------------------------------------------------------------------------------------------
# Case 1: GTF genes on two contigs or strands
# ----------------------------------------------------------------------------------------------
GTF_OK = (gff_line("chr1", "exon", 10, 50, "+", 'gene_id "g1"; transcript_id "t1";')
          + gff_line("chr1", "exon", 80, 120, "+", 'gene_id "g1"; transcript_id "t1";'))


@pytest.mark.parametrize("seqid,strand", [("chr2", "+"), ("chr1", "-")])
def test_gtf_gene_on_two_contigs_or_strands_is_refused(tmp_path: Path, seqid: str,
                                                       strand: str) -> None:
    gtf = tmp_path / "a.gtf"
    gtf.write_text(GTF_OK + gff_line(seqid, "exon", 150, 200, strand,
                                     'gene_id "g1"; transcript_id "t1";'))
    with pytest.raises(InputError, match=r"a\.gtf, line 3, record 'g1': exon of gene 'g1' is on "
                                         rf"'{seqid}' strand \{strand}, but the gene's first "
                                         r"feature \(line 1\) is on 'chr1' strand \+; expected "
                                         "every feature of a gene on one contig and strand"):
        read_genes(gtf)


def test_gtf_conflicting_gene_line_and_cli_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    gtf = tmp_path / "a.gtf"
    # The gene line comes last and puts the gene on chr2: the TTS would have come from there.
    gtf.write_text(GTF_OK + gff_line("chr2", "gene", 5, 300, "+", 'gene_id "g1";'))
    code = run_windows(monkeypatch, write_genome(tmp_path / "g.fa"), gtf, tmp_path / "w.fa")
    err = capsys.readouterr().err
    assert code == 1
    assert "a.gtf, line 3, record 'g1': gene of gene 'g1' is on 'chr2'" in err
    assert "Traceback" not in err and not (tmp_path / "w.fa").exists()


def test_gtf_transcript_under_two_genes_is_refused(tmp_path: Path) -> None:
    gtf = tmp_path / "a.gtf"
    gtf.write_text(GTF_OK + gff_line("chr1", "exon", 300, 320, "+",
                                     'gene_id "g2"; transcript_id "t1";'))
    with pytest.raises(InputError, match=r"line 3, record 't1': transcript 't1' is given gene_id "
                                         r"'g2' here but 'g1' on line 1"):
        read_genes(gtf)


def test_gtf_second_gene_line_is_refused(tmp_path: Path) -> None:
    gtf = tmp_path / "a.gtf"
    gtf.write_text(gff_line("chr1", "gene", 10, 50, "+", 'gene_id "g1";') * 2)
    with pytest.raises(InputError, match=r"line 2, record 'g1': second gene line"):
        read_genes(gtf)


def test_gtf_unstranded_extra_feature_is_accepted(tmp_path: Path) -> None:
    gtf = tmp_path / "a.gtf"
    gtf.write_text(GTF_OK + gff_line("chr1", "start_codon", 10, 13, ".", 'gene_id "g1";'))
    gene = read_genes(gtf)["g1"]
    assert (gene.seqid, gene.start, gene.end, gene.strand) == ("chr1", 10, 120, "+")
    assert gene.transcripts["t1"].exons == [(10, 50), (80, 120)]


# ----------------------------------------------------------------------------------------------
# Case 2: GFF3 child features on another contig or strand than their parent
# ----------------------------------------------------------------------------------------------
def gff3_gene(child_type: str = "exon", seqid: str = "chr1", strand: str = "+") -> str:
    """A gene g1 > mRNA g1.t1 > exon, CDS, UTR; the ``child_type`` line gets ``seqid``/``strand``."""
    def line(ftype: str, start: int, end: int, attrs: str) -> str:
        where = (seqid, strand) if ftype == child_type else ("chr1", "+")
        return gff_line(where[0], ftype, start, end, where[1], attrs)
    return ("##gff-version 3\n" + line("gene", 10, 200, "ID=g1")
            + line("mRNA", 10, 200, "ID=g1.t1;Parent=g1") + line("exon", 10, 200, "Parent=g1.t1")
            + line("CDS", 30, 150, "ID=c1;Parent=g1.t1")
            + line("five_prime_UTR", 10, 30, "Parent=g1.t1"))


@pytest.mark.parametrize("child_type,line,record,parent", [
    ("mRNA", 3, "g1.t1", "gene 'g1' (line 2)"), ("exon", 4, "g1.t1", "mRNA 'g1.t1' (line 3)"),
    ("CDS", 5, "c1", "mRNA 'g1.t1' (line 3)"),
    ("five_prime_UTR", 6, "g1.t1", "mRNA 'g1.t1' (line 3)")])
@pytest.mark.parametrize("seqid,strand", [("chr2", "+"), ("chr1", "-")])
def test_gff3_child_away_from_parent_is_refused(tmp_path: Path, child_type: str, line: int,
                                                record: str, parent: str, seqid: str,
                                                strand: str) -> None:
    gff = tmp_path / "a.gff3"
    gff.write_text(gff3_gene(child_type, seqid, strand))
    with pytest.raises(InputError) as err:
        read_genes(gff)
    message = str(err.value)
    assert message.startswith(f"{gff}, line {line}, record {record!r}: {child_type} ")
    assert f"is on '{seqid}' strand {strand} but its parent {parent} is on 'chr1' strand +" in message
    assert "expected every feature of a gene on the gene's contig and strand" in message


def test_gff3_unstranded_child_and_consistent_file_are_accepted(tmp_path: Path) -> None:
    gff = tmp_path / "a.gff3"
    gff.write_text(gff3_gene("five_prime_UTR", "chr1", "."))
    gene = read_genes(gff)["g1"]
    assert (gene.seqid, gene.start, gene.end, gene.strand) == ("chr1", 10, 200, "+")
    assert gene.transcripts["g1.t1"].exons == [(10, 200)]
    assert gene.transcripts["g1.t1"].cds == [(30, 150)]


def test_gff3_lines_of_one_id_on_two_strands_are_refused(tmp_path: Path) -> None:
    gff = tmp_path / "a.gff3"
    gff.write_text(gff3_gene() + gff_line("chr1", "CDS", 160, 190, "-", "ID=c1;Parent=g1.t1"))
    with pytest.raises(InputError, match=r"line 7, record 'c1': CDS 'c1' is on 'chr1' strand - "
                                         r"but its line 5 is on 'chr1' strand \+"):
        read_genes(gff)


# ----------------------------------------------------------------------------------------------
# Case 3: a GFF3 Parent that is not in the file
# ----------------------------------------------------------------------------------------------
def test_gff3_missing_parent_is_refused_with_count(tmp_path: Path) -> None:
    gff = tmp_path / "a.gff3"
    gff.write_text(gff3_gene() + gff_line("chr1", "CDS", 30, 60, "+", "ID=c9;Parent=gone.t1")
                   + gff_line("chr1", "exon", 30, 60, "+", "Parent=gone.t1"))
    with pytest.raises(InputError, match=r"a\.gff3, line 7, record 'c9': 2 feature\(s\) name a "
                                         r"Parent that is not the ID of any feature in the file: "
                                         r"CDS c9 -> 'gone\.t1' \(line 7\), exon \(no ID\) -> "
                                         r"'gone\.t1' \(line 8\); expected every Parent"):
        read_genes(gff)


def test_gff3_mrna_with_missing_gene_is_refused(tmp_path: Path) -> None:
    gff = tmp_path / "a.gff3"
    gff.write_text(gff3_gene() + gff_line("chr1", "mRNA", 30, 60, "+", "ID=t9;Parent=g9"))
    with pytest.raises(InputError, match=r"line 7, record 't9': 1 feature\(s\) name a Parent"):
        read_genes(gff)


def test_gff3_children_of_unread_types_and_out_of_order_lines(tmp_path: Path) -> None:
    gff = tmp_path / "a.gff3"
    lines = gff3_gene().splitlines(keepends=True)
    # Children before their parents (allowed in GFF3), a tRNA with its exon (not read), and
    # exons whose Parent is the gene itself (one transcript named after the gene).
    gff.write_text("".join(lines[:1] + lines[:0:-1])
                   + gff_line("chr2", "tRNA", 5, 80, "-", "ID=tr1;Parent=g2")
                   + gff_line("chr2", "exon", 5, 80, "-", "Parent=tr1")
                   + gff_line("chr2", "gene", 5, 80, "-", "ID=g2")
                   + gff_line("chr2", "exon", 100, 150, "+", "Parent=g3")
                   + gff_line("chr2", "exon", 200, 250, "+", "Parent=g3")
                   + gff_line("chr2", "gene", 100, 250, "+", "ID=g3"))
    genes = read_genes(gff)
    assert sorted(genes) == ["g1", "g2", "g3"]
    assert genes["g1"].transcripts["g1.t1"].exons == [(10, 200)]
    assert genes["g2"].transcripts == {}
    assert genes["g3"].transcripts["g3"].exons == [(100, 150), (200, 250)]
    assert genes["g3"].transcript_length == 100


def test_annotation_without_genes_is_refused(tmp_path: Path) -> None:
    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\n")
    with pytest.raises(InputError, match=r"a\.gff3: no genes found; expected 'gene' feature lines"):
        read_genes(gff)


@pytest.mark.parametrize("value", ["1_0", " 10", "+10", "1e3", "10.0"])
def test_coordinates_must_be_plain_digits(tmp_path: Path, value: str) -> None:
    gff = tmp_path / "a.gff3"
    gff.write_text(f"chr1\tt\tgene\t{value}\t200\t.\t+\t.\tID=g1\n")
    with pytest.raises(InputError, match=r"line 1: start and end must be integers"):
        read_genes(gff)


# ----------------------------------------------------------------------------------------------
# Case 4: compressed genome FASTA
# ----------------------------------------------------------------------------------------------
def test_gzip_genome_fasta_is_refused_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    plain = write_genome(tmp_path / "g.fa")
    packed = tmp_path / "g.fa.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    gff = tmp_path / "a.gff3"
    gff.write_text(gff3_gene())
    assert run_windows(monkeypatch, packed, gff, tmp_path / "w.fa") == 1
    err = capsys.readouterr().err
    assert (f"{packed}: plain gzip-compressed FASTA cannot be read by position; decompress it "
            "(gunzip), or compress it with `bgzip` and index it with `samtools faidx`") in err
    assert "BioPython" not in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["g.fa.gz", "g.fa.bgz", "g.fa"])
def test_bgzip_genome_fasta_gives_the_same_windows(tmp_path: Path, name: str) -> None:
    plain = write_genome(tmp_path / "plain.fa")
    packed = tmp_path / name
    pysam.tabix_compress(str(plain), str(tmp_path / "tmp.bgz"), force=True)
    (tmp_path / "tmp.bgz").rename(packed)
    assert fasta_compression(packed) == "bgzip" and fasta_compression(plain) == "none"
    gff = tmp_path / "a.gff3"
    gff.write_text(gff3_gene() + gff_line("chr2", "gene", 100, 300, "-", "ID=g2"))
    genes = list(read_genes(gff).values())
    want = extract_windows(plain, genes)
    got = extract_windows(packed, genes)
    assert [decode(c) for c in got.codes] == [decode(c) for c in want.codes]
    assert got.coords.equals(want.coords)


def test_plain_fasta_named_gz_is_read(tmp_path: Path) -> None:
    fasta = write_genome(tmp_path / "g.fa.gz")
    with open_genome(fasta) as genome:
        assert genome.fetch("chr2", 396, 404) == GENOME["chr2"][396:] + "NNNN"


@pytest.mark.parametrize("data,problem", [
    (b">chr1\nAC\xffGT\n", "not a text FASTA"),
    (b">chr1\nAC\x00GT\n", r"unexpected character '\\x00' in chr1:1-5"),
    (b">chr1\nACGT\nAC\nACGT\n", "cannot index this FASTA: Line length"),
    (b"ACGT\n", "cannot index this FASTA: Unexpected text before the first"),
    (b"", "cannot index this FASTA"),
    (b">chr1\nACGT\n>chr1\nACGT\n", "Duplicate key"),
])
def test_bad_genome_fasta(tmp_path: Path, data: bytes, problem: str) -> None:
    fasta = tmp_path / "g.fa"
    fasta.write_bytes(data)
    with pytest.raises(InputError, match=rf"g\.fa(, record 'chr1')?: .*{problem}"):
        with open_genome(fasta) as genome:
            genome.fetch("chr1", 0, 5)


def test_missing_genome_fasta(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.fa: file not found"):
        open_genome(tmp_path / "nope.fa")


# ----------------------------------------------------------------------------------------------
# Case 5: truncated gzip, binary and non-UTF-8 annotation files (and gene lists)
# ----------------------------------------------------------------------------------------------
def test_truncated_gzip_annotation(tmp_path: Path) -> None:
    text = gff3_gene() + "".join(gff_line("chr1", "gene", i, i + 50, "+", f"ID=x{i}")
                                     for i in range(2000))
    gff = tmp_path / "a.gff3.gz"
    data = gzip.compress(text.encode())
    gff.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match=r"a\.gff3\.gz, line \d+: gzip data truncated or corrupt"):
        read_genes(gff)


@pytest.mark.parametrize("noise", [b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "chr1\tt\tgéne".encode("latin-1")])
def test_binary_or_non_utf8_annotation(tmp_path: Path, noise: bytes) -> None:
    gff = tmp_path / "a.gtf"
    gff.write_bytes(GTF_OK.encode() + noise + b"\n")
    # (The line is where decoding failed: text is decoded in blocks, so in a file this small that is
    # line 1, not 3.)
    with pytest.raises(InputError, match=r"a\.gtf, line \d+: not a text file"):
        read_genes(gff)


def test_binary_gene_list(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"g1\n\xff\xfe\n")
    with pytest.raises(InputError, match=r"ids\.txt, line \d+: not a text file"):
        read_gene_list(ids)


# ----------------------------------------------------------------------------------------------
# Property tests
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Model:
    """A generated gene: transcripts as ``{id: (exons, cds)}``, 0-based half-open."""

    gene_id: str
    seqid: str
    strand: str
    transcripts: tuple[tuple[str, tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]], ...]

    @property
    def span(self) -> tuple[int, int]:
        coords = [c for _, exons, _ in self.transcripts for iv in exons for c in iv]
        return min(coords), max(coords)


@st.composite
def models(draw: st.DrawFn) -> list[Model]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        transcripts = []
        for j in range(draw(st.integers(1, 2))):
            # exons: increasing, non-overlapping intervals (bounds = running sums of gaps)
            gaps = draw(st.lists(st.tuples(st.integers(1, 80), st.integers(1, 80)), min_size=1,
                                 max_size=3))  # (intron before, exon) lengths
            bounds = []
            for intron, exon in gaps:
                bounds += [(bounds[-1] if bounds else -1) + intron, 0]
                bounds[-1] = bounds[-2] + exon
            exons = tuple((bounds[k], bounds[k + 1]) for k in range(0, len(bounds), 2))
            cds = exons[:1] if draw(st.booleans()) else ()
            transcripts.append((f"g{i}x.t{j}x", exons, cds))
        out.append(Model(f"g{i}x", draw(st.sampled_from(["chr1", "chr2", "Scaffold_3"])),
                         draw(st.sampled_from("+-")), tuple(transcripts)))
    return out


def model_lines(genes: list[Model], gtf: bool, gene_lines: bool = True) -> list[tuple[str, str]]:
    """(gene id, line) pairs of a GFF3 or GTF file of ``genes``, in the usual order."""
    lines = []
    for g in genes:
        start, end = g.span
        if not gtf:
            lines.append((g.gene_id, gff_line(g.seqid, "gene", start, end, g.strand,
                                              f"ID={g.gene_id};Name=n%3B{g.gene_id}")))
        elif gene_lines:
            lines.append((g.gene_id, gff_line(g.seqid, "gene", start, end, g.strand,
                                              f'gene_id "{g.gene_id}";')))
        for tid, exons, cds in g.transcripts:
            if not gtf:
                lines.append((g.gene_id, gff_line(g.seqid, "mRNA", exons[0][0], exons[-1][1],
                                                  g.strand, f"ID={tid};Parent={g.gene_id}")))
            for ftype, ivs in (("exon", exons), ("CDS", cds)):
                for s, e in ivs:
                    attrs = (f'gene_id "{g.gene_id}"; transcript_id "{tid}";' if gtf
                             else f"Parent={tid}")
                    lines.append((g.gene_id, gff_line(g.seqid, ftype, s, e, g.strand, attrs)))
        if gtf:
            s = g.transcripts[0][1][0][0]
            lines.append((g.gene_id, gff_line(g.seqid, "start_codon", s, s + 1, ".",
                                              f'gene_id "{g.gene_id}";')))
    return lines


Summary = dict[str, tuple[str, int, int, str, dict[str, tuple[list, list]]]]


def summary(genes: dict[str, Gene]) -> Summary:
    return {gid: (g.seqid, g.start, g.end, g.strand,
                  {tid: (sorted(t.exons), sorted(t.cds)) for tid, t in g.transcripts.items()})
            for gid, g in genes.items()}


def oracle(lines: list[str], gtf: bool) -> Summary:
    """Genes of a prefix of the lines :func:`model_lines` writes, read without plantt."""
    out: Summary = {}
    gene_lines: set[str] = set()
    for line in lines:
        seqid, _, ftype, s, e, _, strand, _, attrs = line.rstrip("\n").split("\t")
        start, end = int(s) - 1, int(e)
        fields = dict(a.strip().replace('"', "").split(" " if gtf else "=", 1)
                      for a in attrs.strip(";").split(";"))
        if gtf:
            if ftype not in ("gene", "exon", "CDS"):
                continue
            gid = fields["gene_id"]
            got = out.setdefault(gid, (seqid, start, end, strand, {}))
            if ftype == "gene":
                gene_lines.add(gid)
                got = (seqid, start, end, strand, got[4])
            elif gid not in gene_lines:
                got = (seqid, min(got[1], start), max(got[2], end), strand, got[4])
            out[gid] = got
            if ftype != "gene":
                exons, cds = got[4].setdefault(fields["transcript_id"], ([], []))
                (exons if ftype == "exon" else cds).append((start, end))
        elif ftype == "gene":
            out[fields["ID"]] = (seqid, start, end, strand, {})
        elif ftype != "mRNA":  # plantt keeps the transcripts that have exons or CDS
            tid = fields["Parent"]
            exons, cds = out[tid.rsplit(".", 1)[0]][4].setdefault(tid, ([], []))
            (exons if ftype == "exon" else cds).append((start, end))
    for g in out.values():
        for exons, cds in g[4].values():
            exons.sort()
            cds.sort()
    return out


def check_invariants(genes: dict[str, Gene]) -> None:
    """What any successful read must satisfy, whatever the file said."""
    assert isinstance(genes, dict) and genes
    for gid, g in genes.items():
        assert isinstance(g, Gene) and g.gene_id == gid and gid
        assert g.seqid and 0 <= g.start < g.end and g.strand in ("+", "-")
        for tid, t in g.transcripts.items():
            assert t.transcript_id == tid
            assert all(0 <= s < e for s, e in t.exons + t.cds)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inputs")


def new_file(scratch: Path, suffix: str, data: bytes) -> Path:
    """``data`` in a new folder of its own (so that no index file of an earlier example is found)."""
    path = Path(tempfile.mkdtemp(dir=scratch)) / f"a{suffix}"
    path.write_bytes(data)
    return path


def read(scratch: Path, suffix: str, data: bytes) -> dict[str, Gene] | InputError:
    try:
        return read_genes(new_file(scratch, suffix, data))
    except InputError as err:
        return err


@PROPERTY
@given(genes=models(), gtf=st.booleans(), gene_lines=st.booleans(), seed=st.integers(0, 2**16),
       form=st.sampled_from(["plain", "gzip", "gzip_no_gz_name", "crlf", "shuffled", "comments"]))
def test_valid_annotations_parse_to_their_genes(scratch: Path, genes: list[Model], gtf: bool,
                                                gene_lines: bool, seed: int, form: str) -> None:
    lines = [line for _, line in model_lines(genes, gtf, gene_lines)]
    rng = random.Random(seed)
    if form == "shuffled":
        rng.shuffle(lines)  # both formats allow features in any order
    if form == "comments":
        for _ in range(3):
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(["# note\n", "\n", "  \n"]))
    text = "".join(lines)
    if form == "crlf":
        text = text.replace("\n", "\r\n")
    data = text.encode()
    suffix = ".gtf" if gtf else ".gff3"
    if form.startswith("gzip"):
        data = gzip.compress(data)
        suffix += ".gz" if form == "gzip" else ""
    got = read(scratch, suffix, data)
    assert not isinstance(got, InputError), got
    want = {}
    for g in genes:
        start, end = g.span
        want[g.gene_id] = (g.seqid, start, end, g.strand,
                           {tid: (sorted(exons), sorted(cds)) for tid, exons, cds in g.transcripts})
    assert summary(got) == want


MUTATIONS = ["drop_column", "add_column", "swap_columns", "text_for_number", "binary_noise",
             "non_utf8", "truncate_gzip", "wrong_format_suffix"]


@PROPERTY
@given(genes=models(), gtf=st.booleans(), mutation=st.sampled_from(MUTATIONS),
       seed=st.integers(0, 2**16), noise=st.binary(min_size=1, max_size=8))
def test_mutated_annotations_are_read_or_refused(scratch: Path, genes: list[Model], gtf: bool,
                                                 mutation: str, seed: int, noise: bytes) -> None:
    rng = random.Random(seed)
    lines = [line for _, line in model_lines(genes, gtf)]
    k = rng.randrange(len(lines))
    cols = lines[k].rstrip("\n").split("\t")
    suffix = ".gtf" if gtf else ".gff3"
    always_refused = mutation in ("drop_column", "add_column", "text_for_number", "non_utf8",
                                  "truncate_gzip")
    if mutation == "drop_column":
        del cols[rng.randrange(9)]
    elif mutation == "add_column":
        cols.insert(rng.randrange(10), "extra")
    elif mutation == "swap_columns":
        i, j = rng.sample(range(9), 2)
        cols[i], cols[j] = cols[j], cols[i]
    elif mutation == "text_for_number":
        cols[rng.choice([3, 4])] = rng.choice(["", "abc", "1.5", "-3", "1_0", "12a", "NA"])
    lines[k] = "\t".join(cols) + "\n"
    data = "".join(lines).encode()
    if mutation == "binary_noise":
        at = rng.randrange(len(data) + 1)
        data = data[:at] + noise + data[at:]
    elif mutation == "non_utf8":
        at = rng.randrange(len(data) + 1)
        data = data[:at] + b"\xff" + data[at:]
    elif mutation == "truncate_gzip":
        packed = gzip.compress(data)
        data = packed[:rng.randrange(len(packed))]
    elif mutation == "wrong_format_suffix":
        suffix = ".gff3" if gtf else ".gtf"
    got = read(scratch, suffix, data)
    event(f"{mutation}: {'refused' if isinstance(got, InputError) else 'read'}")
    if always_refused:
        assert isinstance(got, InputError), mutation
    if not isinstance(got, InputError):
        check_invariants(got)


@PROPERTY
@given(genes=models(), gtf=st.booleans(), gene_lines=st.booleans(), cut=st.floats(0, 1),
       packed=st.booleans(), at_line_end=st.booleans())
def test_truncated_annotations_are_read_as_far_as_they_go_or_refused(
        scratch: Path, genes: list[Model], gtf: bool, gene_lines: bool, cut: float, packed: bool,
        at_line_end: bool) -> None:
    owned = model_lines(genes, gtf, gene_lines)
    data = "".join(line for _, line in owned).encode()
    at = int(cut * len(data))
    if at_line_end:  # half the cuts fall after a newline, where the exact answer is known
        at = data.find(b"\n", at) + 1 or len(data)
    suffix = ".gtf" if gtf else ".gff3"
    got = read(scratch, suffix, gzip.compress(data[:at]) if packed else data[:at])
    event("refused" if isinstance(got, InputError) else "read")
    if isinstance(got, InputError):
        return
    check_invariants(got)
    # Line k is the one cut (or the first one left out, when the cut falls after a newline).
    k = data[:at].count(b"\n")
    lines = [line for _, line in owned]
    before = oracle(lines[:k], gtf)
    if k == len(lines) or at == 0 or data[at - 1:at] == b"\n":
        assert summary(got) == before
        return
    cut_gene = owned[k][0]
    with_line = oracle(lines[:k + 1], gtf)
    result = summary(got)
    others = {gid: v for gid, v in result.items() if gid != cut_gene}
    # A cut inside the last column can shorten an ID on that line into a new one.
    extra = [gid for gid in others if gid not in before]
    assert all(cut_gene.startswith(gid) for gid in extra), extra
    assert {gid: v for gid, v in others.items() if gid not in extra} == {
        gid: v for gid, v in before.items() if gid != cut_gene}
    if cut_gene in result:
        spans = [v[:4] for v in (before.get(cut_gene), with_line.get(cut_gene)) if v]
        assert result[cut_gene][:4] in spans


# ---- genome FASTA ----------------------------------------------------------------------------
def plain_records(data: bytes) -> dict[str, str] | None:
    """Records of FASTA text read line by line, name = first word of the header. Lines end at
    ``\n`` only, as FASTA readers (pyfaidx, htslib) split them: ``str.splitlines`` would also end
    one at a vertical tab or a form feed inside a header."""
    records: dict[str, list[str]] = {}
    name = None
    for line in data.decode().split("\n"):
        if not line:
            continue
        if line.startswith(">"):
            if not line[1:].split():
                return None  # a header without a name: readers differ, no claim here
            name = line[1:].split()[0]
            records[name] = []
        elif name is not None:
            records[name].append(line.strip("\r"))
    return {k: "".join(v) for k, v in records.items()}


genomes = st.dictionaries(st.text(alphabet="abcXYZ019_", max_size=6).map(lambda s: "c" + s),
                          st.text(alphabet="ACGTNacgtRY", min_size=1, max_size=150),
                          min_size=1, max_size=3)


def fasta_bytes(genome: dict[str, str], width: int) -> bytes:
    out = []
    for name, seq in genome.items():
        out.append(f">{name} some text\n")
        out.extend(seq[i:i + width] + "\n" for i in range(0, len(seq), width))
    return "".join(out).encode()


def read_genome(path: Path, intervals: list[tuple[float, float]]) -> dict | InputError:
    """Whole records plus some intervals past the ends, or the InputError."""
    try:
        with open_genome(path) as genome:
            whole = {name: genome.fetch(name, 0, n) for name, n in genome.lengths.items()}
            parts = {}
            for name, n in genome.lengths.items():
                for a, b in intervals:
                    lo = int(a * (n + 40)) - 20
                    hi = lo + int(b * 40)
                    parts[name, lo, hi] = genome.fetch(name, lo, hi)
            return {"whole": whole, "parts": parts}
    except InputError as err:
        return err


def expected_part(seq: str, lo: int, hi: int) -> str:
    return "".join(seq[i] if 0 <= i < len(seq) else "N" for i in range(lo, hi))


@PROPERTY
@given(genome=genomes, width=st.integers(1, 80),
       form=st.sampled_from(["plain", "bgzip", "bgzip_no_gz_name", "gzip", "plain_gz_name"]),
       intervals=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=3))
def test_valid_genome_fasta_reads_its_sequences(scratch: Path, genome: dict[str, str], width: int,
                                                form: str, intervals: list[tuple[float, float]]) -> None:
    data = fasta_bytes(genome, width)
    path = new_file(scratch, ".fa.gz" if form in ("bgzip", "gzip", "plain_gz_name") else ".fa", data)
    if form.startswith("bgzip"):
        pysam.tabix_compress(str(path), str(path) + ".tmp", force=True)
        Path(str(path) + ".tmp").replace(path)
    elif form == "gzip":
        path.write_bytes(gzip.compress(data))
    got = read_genome(path, intervals)
    if form == "gzip":
        assert isinstance(got, InputError) and "samtools faidx" in str(got)
        return
    assert not isinstance(got, InputError), got
    assert got["whole"] == genome
    for (name, lo, hi), bases in got["parts"].items():
        assert bases == expected_part(genome[name], lo, hi)


@PROPERTY
@given(genome=genomes, width=st.integers(1, 80), seed=st.integers(0, 2**16),
       mutation=st.sampled_from(["truncate", "noise", "ragged", "truncate_bgzip", "noise_bgzip"]),
       noise=st.binary(min_size=1, max_size=4))
def test_mutated_genome_fasta_is_read_correctly_or_refused(scratch: Path, genome: dict[str, str],
                                                           width: int, seed: int, mutation: str,
                                                           noise: bytes) -> None:
    rng = random.Random(seed)
    data = fasta_bytes(genome, width)
    if mutation == "truncate":
        data = data[:rng.randrange(len(data))]
    elif mutation == "noise":
        at = rng.randrange(len(data) + 1)
        data = data[:at] + noise + data[at:]
    elif mutation == "ragged":
        lines = data.split(b"\n")
        k = rng.randrange(len(lines))
        if not lines[k].startswith(b">"):
            lines[k] = lines[k] + b"ACG"
        data = b"\n".join(lines)
    path = new_file(scratch, ".fa", data)
    if mutation.endswith("bgzip"):
        pysam.tabix_compress(str(path), str(path) + ".bgz", force=True)
        packed = Path(str(path) + ".bgz").read_bytes()
        if mutation == "truncate_bgzip":
            packed = packed[:rng.randrange(len(packed))]
        else:
            at = rng.randrange(len(packed) + 1)
            packed = packed[:at] + noise + packed[at:]
        path.write_bytes(packed)
    got = read_genome(path, [(0.5, 0.5)])
    event(f"{mutation}: {'refused' if isinstance(got, InputError) else 'read'}")
    if isinstance(got, InputError):
        return
    whole = got["whole"]
    if mutation.endswith("bgzip"):
        # What could be read is a prefix of the original: records as they were, the last cut.
        names = list(genome)
        assert list(whole) == names[:len(whole)]
        for name, seq in whole.items():
            assert genome[name].startswith(seq)
            assert seq == genome[name] or name == list(whole)[-1]
    else:
        records = plain_records(data)
        if records is None:
            return
        assert whole == {name: records[name] for name in whole}
        assert set(whole) == set(records)
