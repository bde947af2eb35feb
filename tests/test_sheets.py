"""Bad species and sample sheets stop the run with a message naming the row and the problem."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SCHEMAS
from plantt.sheets import SheetError, load_sample_sheet, load_species_sheet

SPECIES_HEADER = "species\tcode\tgenome\tannotation\tproteome\n"
SAMPLES_HEADER = "sample\tspecies\tassay\treplicate\tfq1\tfq2\n"


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    for name in ["a.fa", "a.gff3", "b.fa", "b.gff3", "r1.fastq.gz", "r2.fastq.gz", "r3.fastq.gz"]:
        (tmp_path / name).write_text("x\n")
    (tmp_path / "species.tsv").write_text(
        SPECIES_HEADER + "alpha\tA\ta.fa\ta.gff3\talpha_pep\nbeta\tB\tb.fa\tb.gff3\t\n"
    )
    return tmp_path


def species(d: Path):
    return load_species_sheet(d / "species.tsv", SCHEMAS / "species.schema.yaml", base=d)


def samples(d: Path, rows: str):
    (d / "samples.tsv").write_text(SAMPLES_HEADER + rows)
    return load_sample_sheet(d / "samples.tsv", SCHEMAS / "samples.schema.yaml",
                             species=species(d).index, base=d)


def test_valid_sheets_load(inputs: Path) -> None:
    sp = species(inputs)
    assert list(sp.index) == ["alpha", "beta"]
    assert sp.loc["beta", "proteome"] == "beta"  # defaults to the species id
    df = samples(inputs, "s1\talpha\trnaseq3p\t1\tr1.fastq.gz\t\n"
                         "s2\tbeta\tproseq\t1\tr2.fastq.gz\tr3.fastq.gz\n")
    assert list(df.index) == ["s1", "s2"]
    assert df.loc["s1", "replicate"] == 1


@pytest.mark.parametrize(
    ("rows", "line", "expected"),
    [
        ("s1\talpha\trnaseq3p\t1\tmissing.fastq.gz\t\n", 2, "'missing.fastq.gz' does not exist"),
        ("s1\talpha\trnaseq3p\t1\tr1.fastq.gz\t\ns2\tgamma\trnaseq3p\t1\tr2.fastq.gz\t\n", 3,
         "unknown species 'gamma'"),
        ("s1\talpha\trnaseq\t1\tr1.fastq.gz\t\n", 2, "'rnaseq' is not one of"),
        ("s1\talpha\trnaseq3p\t1\tr1.fastq.gz\t\ns1\talpha\trnaseq3p\t2\tr2.fastq.gz\t\n", 3,
         "duplicate sample 's1' (first on line 2)"),
        ("s1\talpha\tproseq\t1\tr1.fastq.gz\t\n", 2, "'fq2' (read 2) is required"),
        ("bad/name\talpha\trnaseq3p\t1\tr1.fastq.gz\t\n", 2, "characters unsafe in file paths"),
        ("s 1\talpha\trnaseq3p\t1\tr1.fastq.gz\t\n", 2, "characters unsafe in file paths"),
        ("s1\talpha\trnaseq3p\t1\tr1.fastq.gz\t\ns2\talpha\trnaseq3p\t1\tr2.fastq.gz\t\n", 3,
         "replicate 1 of alpha/rnaseq3p appears twice"),
        ("s1\talpha\trnaseq3p\tone\tr1.fastq.gz\t\n", 2, "column 'replicate'"),
    ],
    ids=["missing-file", "unknown-species", "unknown-assay", "duplicate-sample",
         "paired-without-fq2", "slash-in-name", "space-in-name", "duplicate-replicate",
         "non-integer-replicate"],
)
def test_bad_sample_sheet(inputs: Path, rows: str, line: int, expected: str) -> None:
    with pytest.raises(SheetError) as info:
        samples(inputs, rows)
    message = str(info.value)
    assert "samples.tsv" in message
    assert f"line {line}" in message
    assert expected in message


def test_bad_species_sheet(inputs: Path) -> None:
    (inputs / "species.tsv").write_text(SPECIES_HEADER + "alpha\tA\tnothere.fa\ta.gff3\t\n")
    with pytest.raises(SheetError, match=r"line 2, record 'alpha'.*'nothere.fa' does not exist"):
        species(inputs)
    (inputs / "species.tsv").write_text(SPECIES_HEADER + "alpha\tA\ta.fa\ta.gff3\t\n"
                                        "beta\tA\tb.fa\tb.gff3\t\n")
    with pytest.raises(SheetError, match=r"line 3.*duplicate one-letter code 'A'"):
        species(inputs)
    (inputs / "species.tsv").write_text(SPECIES_HEADER + "alpha\tA\ta.fa.bz2\ta.gff3\t\n")
    with pytest.raises(SheetError, match=r"column 'genome'.*gzip/bgzip"):
        species(inputs)


def test_generated_files_are_exempt(inputs: Path) -> None:
    (inputs / "species.tsv").write_text(SPECIES_HEADER + "alpha\tA\tlater.fa\ta.gff3\t\n")
    sp = load_species_sheet(inputs / "species.tsv", SCHEMAS / "species.schema.yaml", base=inputs,
                            generated=[inputs / "later.fa"])
    assert list(sp.index) == ["alpha"]


def test_workflow_stops_before_any_job(inputs: Path) -> None:
    """A bad sheet makes `snakemake -n` fail at parse time with the row and the problem."""
    (inputs / "samples.tsv").write_text(SAMPLES_HEADER + "s1\tgamma\trnaseq3p\t1\tr1.fastq.gz\t\n")
    (inputs / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", inputs / "config" / "config.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(REPO / "Snakefile"),
         "-d", str(inputs), "--config", "demo=False",
         f"species_sheet={inputs / 'species.tsv'}", f"sample_sheet={inputs / 'samples.tsv'}"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "Invalid sheet" in output
    assert "line 2, record 's1': unknown species 'gamma'" in output
    assert "rule " not in proc.stdout  # no job was scheduled


def test_compressed_genome_is_decompressed_once_for_every_job(inputs: Path) -> None:
    """A gzip genome in the sheet: one decompress_genome job, whose output STAR and the windows
    read; the plain genome of the other species is read where it is."""
    with gzip.open(inputs / "a.fa.gz", "wt") as handle:
        handle.write(">c1\nACGT\n")
    (inputs / "species.tsv").write_text(
        SPECIES_HEADER + "alpha\tA\ta.fa.gz\ta.gff3\t\nbeta\tB\tb.fa\tb.gff3\t\n")
    (inputs / "samples.tsv").write_text(SAMPLES_HEADER + "s1\talpha\trnaseq3p\t1\tr1.fastq.gz\t\n"
                                        "s2\talpha\trnaseq3p\t2\tr2.fastq.gz\t\n"
                                        "s3\tbeta\trnaseq3p\t1\tr3.fastq.gz\t\n")
    (inputs / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", inputs / "config" / "config.yaml")
    targets = [f"results/star/{s}/{s}.bam" for s in ("s1", "s2", "s3")]
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(REPO / "Snakefile"),
         "-d", str(inputs), *targets, "--config", "demo=False",
         f"species_sheet={inputs / 'species.tsv'}", f"sample_sheet={inputs / 'samples.tsv'}"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = re.split(r"^rule (\w+):$", proc.stdout, flags=re.MULTILINE)
    rules = jobs[1::2]
    assert rules.count("decompress_genome") == 1
    decompress = jobs[2 + 2 * rules.index("decompress_genome")]
    assert "output: resources/genomes/alpha.fa" in decompress
    index_inputs = [re.search(r"input: (.*)", body).group(1)
                    for rule, body in zip(jobs[1::2], jobs[2::2], strict=True)
                    if rule == "star_index"]
    assert sorted(i.split(",")[0] for i in index_inputs) == ["b.fa", "resources/genomes/alpha.fa"]
