"""Cluster resources from input sizes (plantt.resources, called by the rules' resources:)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from plantt import resources


def test_star_memory_follows_the_manual_and_the_sparsity() -> None:
    human = 3_100_000_000
    dense = resources.star_index_mem_mb(human)
    assert 31_000 <= dense <= 40_000  # "about 32 GB for the human genome"
    assert dense / human * 1e6 == pytest.approx(11, abs=1.5)  # ~10 bytes per base
    sparse = resources.star_index_mem_mb(human, sa_sparsity=2)
    assert 0.5 * dense < sparse < 0.7 * dense  # the suffix array is most of it
    pea, faba = resources.star_index_mem_mb(4_500_000_000), resources.star_index_mem_mb(13e9)
    assert dense < pea < faba
    assert resources.star_index_mem_mb(5_000_000) == 4000  # a demo genome: the floor
    assert resources.star_index_mem_mb(human, attempt=2) == 2 * dense
    assert resources.star_align_mem_mb(human) > resources.star_index_bytes(human) / 1e6
    with pytest.raises(ValueError, match="genomeSAsparseD"):
        resources.star_index_bytes(human, 0)


def test_sa_index_bases_as_the_manual_advises() -> None:
    assert resources.star_sa_index_bases(3_000_000_000) == 14
    assert resources.star_sa_index_bases(4_000_000) == 9  # log2(4e6) / 2 - 1 = 9.97
    assert resources.star_sa_index_bases(10) == 4


def test_genome_length_from_index_file_or_compressed_original(tmp_path: Path) -> None:
    plain = tmp_path / "g.fa"
    assert resources.genome_length(plain) == 0
    packed = tmp_path / "g.fa.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write(">c\n" + "ACGT" * 20_000 + "\n")
    assert resources.genome_length(plain, compressed=packed) == int(packed.stat().st_size * 3.5)
    plain.write_text(">c\n" + ("A" * 80 + "\n") * 1000)
    assert abs(resources.genome_length(plain, compressed=packed) - 80_000) < 100
    (tmp_path / "g.fa.fai").write_text("c\t80000\t3\t80\t81\nd\t5\t84000\t80\t81\n")
    assert resources.genome_length(plain) == 80_005


def test_runtime_and_chunk_memory_grow_with_inputs(tmp_path: Path) -> None:
    assert resources.chunked_mem_mb(10_000_000) < resources.chunked_mem_mb(100_000_000)
    assert resources.windows_mem_mb(0) == 2000 < resources.windows_mem_mb(3000 * 300_000)
    assert resources.chunked_mem_mb(10_000_000, attempt=3) == 3 * resources.chunked_mem_mb(10**7)
    big = resources.bam_runtime(30 * 50_000_000)  # 50 million alignments
    assert resources.bam_runtime(1000) == 10 < big
    assert resources.star_align_runtime(2_000_000_000) > resources.star_align_runtime(0) == 30
    files = [tmp_path / "a", tmp_path / "b", tmp_path / "missing"]
    files[0].write_bytes(b"x" * 10)
    files[1].write_bytes(b"x" * 5)
    assert resources.files_bytes(files) == 15


def test_star_chr_bin_nbits_as_the_manual_advises() -> None:
    # min(18, log2(max(genome length / number of references, read length)))
    assert resources.star_chr_bin_nbits(4_500_000_000, 7) == 18  # pea: 7 chromosomes of ~650 Mb
    assert resources.star_chr_bin_nbits(13_000_000_000, 6) == 18  # faba bean: 1-3 Gb chromosomes
    assert resources.star_chr_bin_nbits(3_000_000_000, 100_000) == 14  # 30-kb scaffolds: 14.9
    assert resources.star_chr_bin_nbits(20_000, 20) == 9  # 1-kb scaffolds: log2(1000) = 9.97
    assert resources.star_chr_bin_nbits(5_000, 100) == 7  # 50-bp sequences: the read length, 150
    assert resources.star_chr_bin_nbits(5_000, 100, read_length=300) == 8
    with pytest.raises(ValueError, match="at least one sequence"):
        resources.star_chr_bin_nbits(1000, 0)


def test_star_sa_sparsity_keeps_the_suffix_array_within_32_gb() -> None:
    assert resources.star_sa_sparsity(3_100_000_000) == 1  # human: STAR's default
    assert resources.star_sa_sparsity(4_000_000_000) == 1  # 32 GB exactly
    assert resources.star_sa_sparsity(4_500_000_000) == 2  # pea
    assert resources.star_sa_sparsity(13_000_000_000) == 4  # faba bean
    assert resources.star_sa_sparsity(0) == 1
    for length in (4.5e9, 13e9, 17e9):  # the suffix array, 8 bytes per base / sparsity
        assert 8 * length / resources.star_sa_sparsity(int(length)) <= 32e9
    # pea's index job: 34 GB instead of 54 (config/README.md, "Memory and large genomes")
    pea = 4_500_000_000
    assert resources.star_index_mem_mb(pea, resources.star_sa_sparsity(pea)) == 34_062
    # star.index_extra's own value wins
    assert resources.star_sa_sparsity(13_000_000_000, "--genomeSAsparseD 2") == 2
    assert resources.star_sa_sparsity(100, "--sjdbOverhang 99 --genomeSAsparseD=3") == 3
    with pytest.raises(ValueError, match="--genomeSAsparseD must be an integer >= 1"):
        resources.star_sa_sparsity(100, "--genomeSAsparseD 0")


def test_star_genome_options_follow_the_fai_and_leave_index_extra_alone() -> None:
    pea = {f"chr{k}": 650_000_000 for k in range(1, 8)}  # 4.55 Gb
    assert resources.star_genome_options(pea) == (
        "--genomeSAindexNbases 14 --genomeChrBinNbits 18 --genomeSAsparseD 2")
    scaffolds = {f"s{k}": 1000 for k in range(20)}
    assert resources.star_genome_options(scaffolds) == (
        "--genomeSAindexNbases 6 --genomeChrBinNbits 9 --genomeSAsparseD 1")
    # an option given in star.index_extra is left to it (STAR refuses a repeated option)
    assert resources.star_genome_options(pea, "--genomeSAsparseD 3 --genomeChrBinNbits=16") == (
        "--genomeSAindexNbases 14")
    assert resources.star_genome_options(pea, "--genomeSAindexNbases 12") == (
        "--genomeChrBinNbits 18 --genomeSAsparseD 2")
