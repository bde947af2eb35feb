"""Bad input to `plantt variants` (VCF, FASTA) and to model directories: a clear InputError or a
correct result, never a traceback and never a silent wrong answer."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pysam
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import random_plantt_model
from plantt import model_commands
from plantt import variants as V
from plantt.annotation import Gene
from plantt.encoding import decode
from plantt.io import InputError
from plantt.legacy import read_published_state_dict
from plantt.models import (
    MODEL_JSON,
    WEIGHTS,
    TowerSettings,
    build_model,
    load_model,
    load_torch_file,
    save_ensemble,
    save_model,
)
from plantt.windows import DEFAULT_LAYOUT

PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
TINY = TowerSettings(stem_channels=4, stem_stride=3, stem_kernel=3, stage_kernels=(3,),
                     blocks_per_stage=1, inner_convs=1, max_channels=4, embedding_dim=2)
WINDOW_SETTINGS = TowerSettings(stem_channels=8, stem_stride=6, stem_kernel=12,
                                stage_kernels=(5, 3, 3), blocks_per_stage=1, inner_convs=1,
                                max_channels=16, embedding_dim=5)


def other(base: str) -> str:
    return "A" if base != "A" else "C"


# ----------------------------------------------------------------------------------------------
# A small genome
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("genome")
    rng = np.random.default_rng(3)
    contigs = {"chr1": decode(rng.integers(0, 4, 6000).astype(np.uint8)),
               "chr2": decode(rng.integers(0, 4, 500).astype(np.uint8))}
    text = "".join(f">{name}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60))
                   for name, seq in contigs.items())
    fasta = root / "genome.fa"
    fasta.write_text(text)
    return {"root": root, "contigs": contigs, "fasta": fasta, "text": text}


def write_vcf(path: Path, lines: list[str]) -> Path:
    text = HEADER + "".join(line + "\n" for line in lines)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def snv_lines(contigs: dict[str, str], n: int, n_wrong: int, chrom: str = "chr1") -> list[str]:
    """``n`` SNV records on chr1 every 50 bases from 600; the first ``n_wrong`` with a REF the
    genome does not have."""
    lines = []
    for k in range(n):
        pos = 600 + 50 * k
        base = contigs["chr1"][pos - 1]
        ref = other(base) if k < n_wrong else base
        lines.append(f"{chrom}\t{pos}\tv{k}\t{ref}\t{'G' if ref != 'G' else 'T'}\t.\tPASS\t.")
    return lines


def check(vcf: Path, fasta: Path, **kwargs: float) -> None:
    g = V.Genome(fasta)
    try:
        V.check_vcf_against_genome(vcf, g, **kwargs)
    finally:
        g.close()


# ----------------------------------------------------------------------------------------------
# 1. A VCF of another genome: REF mismatches, contig naming
# ----------------------------------------------------------------------------------------------
def test_ref_mismatch_above_the_share_is_an_error(genome: dict, tmp_path: Path) -> None:
    vcf = write_vcf(tmp_path / "other.vcf", snv_lines(genome["contigs"], 20, 10))
    with pytest.raises(InputError, match=r"other\.vcf: REF differs from the FASTA .*genome\.fa "
                                         r"in 10 of 20 record\(s\) \(50%, more than the 5% "
                                         r"allowed\).*First: line 3 chr1:600 REF"):
        check(vcf, genome["fasta"])
    # configurable: half the records may mismatch when asked for
    check(vcf, genome["fasta"], max_ref_mismatch=0.5)
    with pytest.raises(ValueError, match="share in"):
        check(vcf, genome["fasta"], max_ref_mismatch=5)


def test_ref_mismatch_never_matching_is_an_error_even_for_one_record(genome: dict,
                                                                     tmp_path: Path) -> None:
    vcf = write_vcf(tmp_path / "one.vcf", snv_lines(genome["contigs"], 1, 1))
    with pytest.raises(InputError, match=r"in 1 of 1 record"):
        check(vcf, genome["fasta"])
    # past the contig end: nothing to compare with, a mismatch too
    vcf = write_vcf(tmp_path / "far.vcf", ["chr2\t900\t.\tA\tG"])
    with pytest.raises(InputError, match=r"chr2:900 REF A but the FASTA has nothing"):
        check(vcf, genome["fasta"])


def test_ref_mismatch_below_the_share_is_a_warning_naming_the_records(
        genome: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vcf = write_vcf(tmp_path / "few.vcf", snv_lines(genome["contigs"], 60, 2))
    with caplog.at_level(logging.WARNING, logger="plantt.variants"):
        check(vcf, genome["fasta"])
    text = caplog.text
    assert "REF differs from the FASTA in 2 of 60 record(s) (3.3%)" in text
    assert "line 3 chr1:600" in text and "line 4 chr1:650" in text and "chr1:700" not in text


def test_score_vcf_stops_on_a_vcf_of_another_genome_and_keeps_few_mismatches(
        genome: dict, tmp_path: Path) -> None:
    model = random_plantt_model(WINDOW_SETTINGS, DEFAULT_LAYOUT.length)
    genes = {"G": Gene("G", "chr1", 1500, 4000, "+")}
    bad = write_vcf(tmp_path / "bad.vcf.gz", snv_lines(genome["contigs"], 20, 20))
    with pytest.raises(InputError, match="bad.vcf.gz: REF differs from the FASTA"):
        V.score_vcf(model, bad, genome["fasta"], genes)
    lines = snv_lines(genome["contigs"], 40, 1)
    table, _ = V.score_vcf(model, write_vcf(tmp_path / "ok.vcf", lines), genome["fasta"], genes)
    by_id = table.set_index("id")
    assert by_id.loc["v0", "status"] == "ref_mismatch" and np.isnan(by_id.loc["v0", "effect"])
    assert set(by_id.drop(index="v0")["status"]) <= {"ok", "no_change"}


@pytest.mark.parametrize(("vcf_chroms", "hint"), [
    (["1", "2"], r"none of the VCF's contigs \(1, 2\) is in the FASTA .*genome\.fa \(chr1, "
                 r"chr2\) -- the names differ only by a 'chr' prefix, which the FASTA uses and "
                 r"the VCF does not"),
    (["scaffold_9"], r"none of the VCF's contigs \(scaffold_9\) is in the FASTA .*\(chr1, "
                     r"chr2\)$"),
])
def test_no_vcf_contig_in_the_genome_is_an_error(genome: dict, tmp_path: Path,
                                                 vcf_chroms: list[str], hint: str) -> None:
    lines = [f"{c}\t{10 + k}\t.\tA\tG" for k, c in enumerate(vcf_chroms)]
    vcf = write_vcf(tmp_path / "names.vcf", lines)
    with pytest.raises(InputError, match=hint):
        check(vcf, genome["fasta"])


def test_genome_with_prefix_missing_and_partly_absent_contigs(
        genome: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bare = tmp_path / "bare.fa"
    bare.write_text(genome["text"].replace(">chr", ">"))
    vcf = write_vcf(tmp_path / "chr.vcf", ["chr1\t10\t.\tA\tG"])
    with pytest.raises(InputError, match="which the VCF uses and the FASTA does not"):
        check(vcf, bare)
    # some contigs known: the others are a warning naming them (rows get unknown_contig)
    base = genome["contigs"]["chr1"][9]
    vcf = write_vcf(tmp_path / "mixed.vcf", [f"chr1\t10\t.\t{base}\t{other(base)}",
                                            "chrUn\t5\t.\tA\tG"])
    with caplog.at_level(logging.WARNING, logger="plantt.variants"):
        check(vcf, genome["fasta"])
    assert "1 record(s) on 1 contig(s) absent from the FASTA" in caplog.text
    assert "chrUn" in caplog.text


def test_cli_option_for_the_share() -> None:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    model_commands.register_cli(subparsers)
    base = ["variants", "--model", "m", "--vcf", "v", "--fasta", "f", "--annotation", "a",
            "--out", "o"]
    assert parser.parse_args(base).max_ref_mismatch == V.DEFAULT_MAX_REF_MISMATCH == 0.05
    assert parser.parse_args([*base, "--max-ref-mismatch", "0.2"]).max_ref_mismatch == 0.2
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--max-ref-mismatch", "1.5"])
    helps = {a.dest: a.help for a in subparsers.choices["variants"]._actions}
    assert "share" in helps["max_ref_mismatch"] and "%(default)s" in helps["max_ref_mismatch"]


# ----------------------------------------------------------------------------------------------
# 2. Compressed FASTA
# ----------------------------------------------------------------------------------------------
def test_plain_gzip_fasta_is_an_input_error(genome: dict, tmp_path: Path) -> None:
    packed = tmp_path / "genome.fa.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write(genome["text"])
    with pytest.raises(InputError, match=r"genome\.fa\.gz: plain gzip-compressed FASTA cannot be "
                                         r"read by position; decompress it \(gunzip\), or "
                                         r"compress it with `bgzip` and index it with "
                                         r"`samtools faidx`"):
        V.Genome(packed)
    # by content, not by name
    shutil.copy(packed, tmp_path / "named.fa")
    with pytest.raises(InputError, match="plain gzip"):
        V.Genome(tmp_path / "named.fa")


def test_bgzip_fasta_reads_like_the_plain_one(genome: dict, tmp_path: Path) -> None:
    packed = tmp_path / "genome.fa.bgz"
    pysam.tabix_compress(str(genome["fasta"]), str(packed))
    plain, blocked = V.Genome(genome["fasta"]), V.Genome(packed)
    try:
        assert blocked.lengths == plain.lengths == {"chr1": 6000, "chr2": 500}
        for seqid, start, end in [("chr1", -5, 20), ("chr1", 2990, 3100), ("chr2", 480, 520)]:
            assert blocked.fetch(seqid, start, end) == plain.fetch(seqid, start, end)
        assert blocked.fetch("chr1", 0, 60) == genome["contigs"]["chr1"][:60]
    finally:
        plain.close()
        blocked.close()


def test_binary_fasta_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "bin.fa").write_bytes(b">a\n\xff\xfe\x00ACGT\n")
    with pytest.raises(InputError, match=r"bin\.fa: not a text FASTA"):
        V.Genome(tmp_path / "bin.fa")


# ----------------------------------------------------------------------------------------------
# 3. Damaged VCFs
# ----------------------------------------------------------------------------------------------
def test_truncated_gzip_vcf_names_the_line(genome: dict, tmp_path: Path) -> None:
    lines = snv_lines(genome["contigs"], 100, 0)
    whole = write_vcf(tmp_path / "whole.vcf.gz", lines).read_bytes()
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(whole[:len(whole) - 40])
    with pytest.raises(InputError, match=r"cut\.vcf\.gz, line \d+: gzip data truncated or "
                                         r"corrupt"):
        list(V.read_vcf(cut))
    with pytest.raises(InputError, match="gzip data truncated"):
        check(cut, genome["fasta"])


def test_bgzip_vcf_without_its_end_marker_warns(genome: dict, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    plain = write_vcf(tmp_path / "a.vcf", snv_lines(genome["contigs"], 5, 0))
    packed = tmp_path / "a.vcf.gz"
    pysam.tabix_compress(str(plain), str(packed))
    assert V.is_bgzf(packed)
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(packed.read_bytes()[:-len(V.BGZF_EOF)])
    with caplog.at_level(logging.WARNING, logger="plantt.variants"):
        assert list(V.read_vcf(cut)) == list(V.read_vcf(plain))
    assert "without its end-of-file marker" in caplog.text


@pytest.mark.parametrize(("body", "error"), [
    (b"", r"bad\.vcf: empty file, expected a VCF"),
    (b"##fileformat=VCFv4.2\n", r"bad\.vcf: no #CHROM header line"),
    (b"#CHROM\tPOS\tREF\n", r"bad\.vcf, line 1: header line must start with #CHROM POS ID"),
    (b"chr1\t5\t.\tA\tG\n", r"bad\.vcf, line 1: data line before the #CHROM header"),
    (b"chr1\t5\t.\tA\t\n", r"bad\.vcf, line 3: ALT is empty"),
    (b"chr1\t5\t.\tA\tG,\n", r"bad\.vcf, line 3: empty allele in ALT 'G,'"),
    (b"chr1\t+5\t.\tA\tG\n", r"bad\.vcf, line 3: POS must be an integer \(digits only\), "
                             r"got '\+5'"),
    (b"chr1\t5_0\t.\tA\tG\n", r"bad\.vcf, line 3: POS must be an integer"),
    (b"chr1\t0\t.\tA\tG\n", r"bad\.vcf, line 3: POS must be >= 1"),
    (b"\t5\t.\tA\tG\n", r"bad\.vcf, line 3: CHROM is empty"),
    (b"chr1\t5\t.\t.\tG\n", r"bad\.vcf, line 3: REF is empty"),
    (b"chr1\t5\t.\tA\n", r"bad\.vcf, line 3: expected at least 5 tab-separated columns"),
    (b"chr1\t5\t.\tA\tG\n" + HEADER.encode(),
     r"bad\.vcf, line 4: header line after the #CHROM header"),
    # (the line of a decoding error is where the text decoder's buffer starts: plantt.io)
    (b"chr1\t5\t.\tA\tG\n\xff\xfe\n", r"bad\.vcf, line \d+: not a text file"),
])
def test_malformed_vcf_lines(tmp_path: Path, body: bytes, error: str) -> None:
    path = tmp_path / "bad.vcf"
    # bodies that do not start a header get the standard header first
    path.write_bytes(body if not body or body.startswith(b"#") or b"before" in error.encode()
                     else HEADER.encode() + body)
    with pytest.raises(InputError, match=error):
        list(V.read_vcf(path))


def test_vcf_last_line_without_line_end_is_read_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "short.vcf"
    path.write_text(HEADER + "chr1\t5\t.\tA\tG\nchr1\t9\t.\tC\tT")
    with caplog.at_level(logging.WARNING, logger="plantt.variants"):
        records = list(V.read_vcf(path))
    assert [(r.pos, r.ref, r.alts) for r in records] == [(5, "A", ("G",)), (9, "C", ("T",))]
    assert "line 4: the last line has no line end" in caplog.text


# ----------------------------------------------------------------------------------------------
# 4. Weights files that are not plain weights
# ----------------------------------------------------------------------------------------------
class Payload:
    """Unpickling this object would create the directory ``target`` (a harmless stand-in for
    any code a malicious file could run)."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny") / "model"
    save_model(directory, random_plantt_model(TINY, 30))
    return directory


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model of four tensors (the `motif` tower with 4 detectors): quick to load 200 times."""
    directory = tmp_path_factory.mktemp("small") / "model"
    torch.manual_seed(0)
    save_model(directory, build_model("plantt", "motif", 300, overrides={"stem_channels": 4}))
    return directory


def copy_model(model_dir: Path, to: Path) -> Path:
    shutil.copytree(model_dir, to)
    return to


def test_malicious_weights_are_refused_and_never_run(model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "was_run"
    # the payload is live: an unrestricted unpickler runs it
    pickle.loads(pickle.dumps(Payload(str(tmp_path / "live"))))
    assert (tmp_path / "live").is_dir()

    directory = copy_model(model_dir, tmp_path / "m")
    state = torch.load(directory / WEIGHTS, weights_only=True)
    for name, write in [("zip", lambda p: torch.save({**state, "x": Payload(str(target))}, p)),
                        ("raw pickle", lambda p: p.write_bytes(pickle.dumps(Payload(str(target)))))]:
        write(directory / WEIGHTS)
        for load in (lambda: load_model(directory), lambda: load_torch_file(directory / WEIGHTS),
                     lambda: read_published_state_dict(directory / WEIGHTS)):
            with pytest.raises(InputError, match=r"weights\.pt: not a plain weights file: .*it "
                                                 r"must not be loaded") as err:
                load()
            assert "weights_only" not in str(err.value), name
        assert not target.exists(), name


@pytest.mark.parametrize(("damage", "error"), [
    (lambda data: b"", r"weights\.pt: empty file \(0 bytes\), expected a weights file"),
    (lambda data: data[: len(data) // 2], r"weights\.pt: not a readable weights file \(truncated"),
    (lambda data: bytes(range(256)) * 4, r"weights\.pt: not a readable weights file"),
    (lambda data: b"hello\n", r"weights\.pt: not a readable weights file"),
])
def test_damaged_weights_files(model_dir: Path, tmp_path: Path, damage, error: str) -> None:
    directory = copy_model(model_dir, tmp_path / "m")
    path = directory / WEIGHTS
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(InputError, match=error) as err:
        load_model(directory)
    assert "weights_only" not in str(err.value)


def test_weights_file_that_is_not_a_state_dict(model_dir: Path, tmp_path: Path) -> None:
    directory = copy_model(model_dir, tmp_path / "m")
    torch.save([torch.ones(2)], directory / WEIGHTS)
    with pytest.raises(InputError, match=r"weights\.pt: expected a state_dict .*found a list"):
        load_model(directory)
    torch.save({"a": 3}, directory / WEIGHTS)
    with pytest.raises(InputError, match=r"found str key 'a' -> int"):
        load_model(directory)
    (directory / WEIGHTS).unlink()
    with pytest.raises(InputError, match=r"m: weights\.pt not found"):
        load_model(directory)


def test_training_checkpoint_role_in_messages(tmp_path: Path) -> None:
    (tmp_path / "ckpt.pt").write_bytes(b"not a checkpoint\n")
    with pytest.raises(InputError, match=r"ckpt\.pt: not a readable training checkpoint"):
        load_torch_file(tmp_path / "ckpt.pt", "training checkpoint")
    with pytest.raises(InputError, match=r"nothing\.pt: training checkpoint not found"):
        load_torch_file(tmp_path / "nothing.pt", "training checkpoint")


# ----------------------------------------------------------------------------------------------
# 5. Model directories
# ----------------------------------------------------------------------------------------------
def edit_info(directory: Path, change) -> None:
    info = json.loads((directory / MODEL_JSON).read_text())
    change(info)
    (directory / MODEL_JSON).write_text(json.dumps(info))


@pytest.mark.parametrize(("change", "error"), [
    (lambda i: i.update(format_version=2), r"model\.json: format_version 2; this plantt reads "
                                           r"model directories of format_version 1"),
    (lambda i: i.pop("kind"), r"model\.json: missing key 'kind'"),
    (lambda i: i.update(kind="forest"), r"model\.json: unknown model kind 'forest'"),
    (lambda i: i.update(kind=["plantt"]), r"model\.json: 'kind' must be a string"),
    (lambda i: i.update(seq_len="30"), r"model\.json: 'seq_len' must be a positive whole number"),
    (lambda i: i.update(seq_len=30.5), r"'seq_len' must be a positive whole number, found 30\.5"),
    (lambda i: i.update(seq_len=True), r"'seq_len' must be a positive whole number, found True"),
    (lambda i: i.update(seq_len=0), r"'seq_len' must be a positive whole number, found 0"),
    (lambda i: i.update(settings=[1, 2]), r"model\.json: 'settings' must be an object"),
    (lambda i: i.update(input="pad"), r"model\.json: 'input' must be an object or null"),
    (lambda i: i["settings"].update(colour="red"), r"model\.json: settings do not describe a "
                                                   r"model that can be built: unknown plantt "
                                                   r"model setting\(s\) colour"),
    (lambda i: i["settings"].update(stem_channels=-4), r"model\.json: settings do not describe"),
    (lambda i: i["settings"].update(stem_channels="4"), r"model\.json: settings do not describe"),
    (lambda i: i.update(tower="legacy"), r"model\.json: settings do not describe a model that "
                                         r"can be built"),
])
def test_bad_model_json_fields(model_dir: Path, tmp_path: Path, change, error: str) -> None:
    directory = copy_model(model_dir, tmp_path / "m")
    edit_info(directory, change)
    with pytest.raises(InputError, match=error):
        load_model(directory)


def test_missing_and_unreadable_model_json(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere: model directory not found"):
        load_model(tmp_path / "nowhere")
    directory = copy_model(model_dir, tmp_path / "m")
    with pytest.raises(InputError, match=r"weights\.pt: not a model directory \(a file"):
        load_model(directory / WEIGHTS)
    (directory / MODEL_JSON).write_text('{"kind": "plantt",\n  "seq_len": }')
    with pytest.raises(InputError, match=r"model\.json, line 2: invalid JSON"):
        load_model(directory)
    (directory / MODEL_JSON).write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(InputError, match=r"model\.json: not a text file"):
        load_model(directory)
    (directory / MODEL_JSON).write_text("[1, 2]")
    with pytest.raises(InputError, match=r"model\.json: expected a JSON object, found a list"):
        load_model(directory)
    (directory / MODEL_JSON).unlink()
    with pytest.raises(InputError, match=r"m: not a model directory: neither model\.json"):
        load_model(directory)


def test_weights_that_do_not_fit_the_architecture(model_dir: Path, tmp_path: Path) -> None:
    directory = copy_model(model_dir, tmp_path / "m")
    state = torch.load(directory / WEIGHTS, weights_only=True)
    first = next(iter(state))

    torch.save({k: v for k, v in state.items() if k != first}, directory / WEIGHTS)
    with pytest.raises(InputError, match=rf"weights\.pt: weights do not match .*model\.json: 1 "
                                         rf"missing parameter\(s\) \({first}\)"):
        load_model(directory)
    torch.save({**state, "extra.weight": torch.zeros(2)}, directory / WEIGHTS)
    with pytest.raises(InputError, match=r"1 unexpected parameter\(s\) \(extra\.weight\)"):
        load_model(directory)
    torch.save({**state, first: torch.zeros(1, 2, 3)}, directory / WEIGHTS)
    with pytest.raises(InputError, match=rf"1 shape mismatch\(es\) \({first}: \[1, 2, 3\] in "
                                         r"the file, \[.*\] in the model\)"):
        load_model(directory)
    bad = {**state, first: torch.full_like(state[first], float("nan"))}
    torch.save(bad, directory / WEIGHTS)
    with pytest.raises(InputError, match=rf"parameter '{first}' holds NaN or infinite values"):
        load_model(directory)


def test_huge_settings_fail_on_the_weights_without_allocating(model_dir: Path,
                                                              tmp_path: Path) -> None:
    """A damaged model.json asking for 10^8 stem channels (gigabytes of weights) is found out
    against the weights file before anything is allocated."""
    directory = copy_model(model_dir, tmp_path / "m")
    edit_info(directory, lambda i: i["settings"].update(stem_channels=10 ** 8,
                                                        max_channels=10 ** 8))
    with pytest.raises(InputError, match=r"weights\.pt: weights do not match .*shape mismatch"):
        load_model(directory)


def test_ensemble_listing_itself_is_an_error(model_dir: Path, tmp_path: Path) -> None:
    ensemble = save_ensemble(tmp_path / "ens", [model_dir])
    (ensemble / "ensemble.json").write_text(json.dumps({"format_version": 1, "members": ["."]}))
    with pytest.raises(InputError, match=r"ensemble\.json: member .* is itself an ensemble"):
        load_model(ensemble)


def test_intact_model_still_loads(model_dir: Path) -> None:
    model = load_model(model_dir)
    expected = random_plantt_model(TINY, 30)
    x = torch.rand(2, 4, 30)
    with torch.no_grad():
        assert torch.equal(model.score(x), expected.score(x))


# ----------------------------------------------------------------------------------------------
# Property tests: the VCF reader
# ----------------------------------------------------------------------------------------------
BASES = st.text("ACGT", min_size=1, max_size=4)
ALT = st.one_of(BASES, st.sampled_from(["<DEL>", "*", "N"]))
RECORD = st.tuples(st.sampled_from(["chr1", "chr2", "1", "scaffold_7"]),
                   st.integers(1, 10 ** 7), st.sampled_from([".", "rs1", "id_2"]), BASES,
                   st.one_of(st.just(()), st.lists(ALT, min_size=1, max_size=3).map(tuple)))


def vcf_text(records: list[tuple]) -> str:
    lines = [f"{c}\t{p}\t{i}\t{r}\t{','.join(a) if a else '.'}\t50\tPASS\tDP=3"
             for c, p, i, r, a in records]
    return HEADER + "".join(line + "\n" for line in lines)


def read_records(data: bytes, name: str) -> list[tuple]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return [(r.chrom, r.pos, r.id, r.ref, r.alts) for r in V.read_vcf(path)]


@PROPERTY
@given(records=st.lists(RECORD, max_size=8), packing=st.sampled_from(["plain", "gz", "gz-noname"]))
def test_property_valid_vcfs_parse_to_their_records(records: list[tuple], packing: str) -> None:
    data = vcf_text(records).encode()
    if packing != "plain":
        data = gzip.compress(data)
    name = "calls.vcf.gz" if packing == "gz" else "calls.vcf"
    assert read_records(data, name) == records


@PROPERTY
@given(records=st.lists(RECORD, min_size=1, max_size=6), data=st.data())
def test_property_mutated_vcfs_give_their_records_or_an_input_error(records: list[tuple],
                                                                    data: st.DataObject) -> None:
    text = vcf_text(records)
    lines = text.splitlines(keepends=True)
    n_head = HEADER.count("\n")
    mutation = data.draw(st.sampled_from(["truncate", "truncate-gz", "drop-column", "swap-columns",
                                          "text-pos", "noise", "noise-gz"]))
    row = data.draw(st.integers(0, len(records) - 1))
    line_no = n_head + row + 1
    fields = lines[line_no - 1].rstrip("\n").split("\t")
    expected_error_line = None
    if mutation == "drop-column":
        del fields[data.draw(st.integers(0, len(fields) - 1))]
    elif mutation == "swap-columns":
        i, j = data.draw(st.permutations(range(len(fields))))[:2]
        fields[i], fields[j] = fields[j], fields[i]
    elif mutation == "text-pos":
        fields[1] = data.draw(st.sampled_from(["five", "1e3", "-3", "", "4.0", " 7", "0x10"]))
        expected_error_line = line_no
    lines[line_no - 1] = "\t".join(fields) + "\n"
    raw = "".join(lines).encode()
    if mutation in ("truncate", "truncate-gz"):
        packed = gzip.compress(raw) if mutation == "truncate-gz" else raw
        raw = packed[:data.draw(st.integers(0, len(packed) - 1))]
    elif mutation in ("noise", "noise-gz"):
        packed = gzip.compress(raw) if mutation == "noise-gz" else raw
        at = data.draw(st.integers(0, len(packed)))
        raw = packed[:at] + data.draw(st.binary(min_size=1, max_size=8)) + packed[at:]
    name = data.draw(st.sampled_from(["v.vcf", "v.vcf.gz"]))
    try:
        got = read_records(raw, name)
    except InputError as err:
        assert err.path is not None and str(err).startswith(str(err.path))
        if expected_error_line is not None:
            assert err.line == expected_error_line
        return
    assert mutation not in ("truncate-gz", "text-pos"), "damage read as a valid VCF"
    if mutation == "truncate":
        # a plain file cut short: the complete lines, then possibly the cut last line
        assert len(got) <= len(records) and got[:-1] == records[:max(len(got) - 1, 0)]
    elif mutation in ("drop-column", "swap-columns"):
        assert len(got) == len(records)
        assert got[:row] == records[:row] and got[row + 1:] == records[row + 1:]
    else:
        assert isinstance(got, list)


# ----------------------------------------------------------------------------------------------
# Property tests: model directories
# ----------------------------------------------------------------------------------------------
def mutate(data: bytes, draw: st.DataObject) -> bytes:
    kind = draw.draw(st.sampled_from(["truncate", "flip", "noise", "digit"]))
    if kind == "truncate":
        return data[:draw.draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        at = draw.draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw.draw(st.integers(1, 255))]) + data[at + 1:]
    if kind == "noise":
        at = draw.draw(st.integers(0, len(data)))
        return data[:at] + draw.draw(st.binary(min_size=1, max_size=16)) + data[at:]
    digits = [k for k, b in enumerate(data) if chr(b).isdigit()]
    if not digits:
        return data
    at = draw.draw(st.sampled_from(digits))
    return data[:at] + draw.draw(st.sampled_from([b"0", b"9", b"99", b"-1", b".5", b"e9"])) + \
        data[at + 1:]


@PROPERTY
@given(data=st.data())
def test_property_mutated_model_directories_load_or_fail_clearly(small_model_dir: Path,
                                                                 data: st.DataObject) -> None:
    model_dir = small_model_dir
    files = {name: (model_dir / name).read_bytes() for name in (MODEL_JSON, WEIGHTS)}
    target = data.draw(st.sampled_from([MODEL_JSON, WEIGHTS, WEIGHTS + "-entry"]))
    if target == WEIGHTS + "-entry":
        # damage inside the zip container (whose CRCs then still hold): the pickle or a tensor
        with zipfile.ZipFile(model_dir / WEIGHTS) as archive:
            entries = {i.filename: archive.read(i.filename) for i in archive.infolist()}
        name = data.draw(st.sampled_from(sorted(entries)))
        entries[name] = mutate(entries[name], data)
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as archive:
            for entry, content in entries.items():
                archive.writestr(entry, content)
        files[WEIGHTS] = packed.getvalue()
    else:
        files[target] = mutate(files[target], data)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "m"
        directory.mkdir()
        for name, content in files.items():
            (directory / name).write_bytes(content)
        try:
            model = load_model(directory)
        except InputError as err:
            assert str(err).startswith(str(directory))
            assert "weights_only" not in str(err)
            return
        # loaded: then with exactly the tensors the (possibly damaged) file holds
        state = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value.to(loaded[key].dtype)), key
