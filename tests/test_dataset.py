"""Encoded dataset: windows stored once per gene, pairs as index arrays, one-hot on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from plantt import cli
from plantt.dataset import (
    EncodedWindows,
    batch_tensors,
    pair_arrays,
    read_fasta_codes,
    read_splits,
    write_encoded_windows,
)
from plantt.encoding import decode, encode
from plantt.io import InputError

LENGTH = 30


def random_windows(seed: int, ids: list[str]) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    return {g: "".join(rng.choice(list("ACGTNacgt"), size=LENGTH)) for g in ids}


def write_fasta(path: Path, records: dict[str, str], width: int = 0) -> None:
    with open(path, "w") as handle:
        for name, seq in records.items():
            handle.write(f">{name}\n")
            step = width or len(seq)
            handle.write("".join(seq[i:i + step] + "\n" for i in range(0, len(seq), step)))


@pytest.fixture
def encoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    records = {"medicago": random_windows(1, ["g1", "g2", "shared"]),
               "vicia": random_windows(2, ["v1", "shared"])}
    write_fasta(tmp_path / "medicago.fa", records["medicago"])
    write_fasta(tmp_path / "vicia.fa", records["vicia"], width=7)  # wrapped lines are fine
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.dataset"])
    code = cli.main(["encode", "--windows", f"medicago={tmp_path / 'medicago.fa'}",
                     f"vicia={tmp_path / 'vicia.fa'}", "--out-npy", str(tmp_path / "codes.npy"),
                     "--out-genes", str(tmp_path / "genes.tsv")])
    assert code == 0
    return tmp_path, records


def splits_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["orthogroup", "label", "gene_a", "species_a", "gene_b",
                                       "species_b", "d", "fold", "set"])


def test_windows_stored_once_per_gene(encoded: tuple[Path, dict]) -> None:
    d, records = encoded
    windows = EncodedWindows.load(d / "codes.npy", d / "genes.tsv")
    assert isinstance(windows.codes, np.memmap)
    assert windows.codes.dtype == np.uint8 and windows.codes.shape == (5, LENGTH)
    genes = pd.read_csv(d / "genes.tsv", sep="\t")
    assert list(genes.columns) == ["index", "species", "gene_id"]
    assert genes["gene_id"].tolist() == ["g1", "g2", "shared", "v1", "shared"]
    for species, recs in records.items():
        for gene_id, seq in recs.items():
            row = windows.index_of(species, gene_id)
            assert np.array_equal(windows.codes[row], encode(seq))
            assert decode(windows.codes[row]) == seq.upper()
    assert windows.index_of("medicago", "shared") != windows.index_of("vicia", "shared")
    with pytest.raises(KeyError):
        windows.index_of("vicia", "g1")
    in_memory = EncodedWindows.load(d / "codes.npy", d / "genes.tsv", mmap=False)
    assert not isinstance(in_memory.codes, np.memmap)


def test_pair_arrays_select_fold_and_set(encoded: tuple[Path, dict]) -> None:
    d, _ = encoded
    windows = EncodedWindows.load(d / "codes.npy", d / "genes.tsv")
    splits = splits_frame([
        ("OG1", "{M,V}", "g1", "medicago", "v1", "vicia", 1.5, 0, "train"),
        ("OG2", "{M,V}", "shared", "vicia", "shared", "medicago", -0.5, 0, "train"),
        ("OG1", "{M,V}", "g1", "medicago", "v1", "vicia", 1.5, 0, "test"),
        ("OG3", "{M,V}", "g2", "medicago", "v1", "vicia", 2.0, 1, "train"),
    ])
    pairs = pair_arrays(splits, windows, fold=0, set_name="train")
    assert len(pairs) == 2
    assert pairs.idx_a.dtype == np.int64 and pairs.idx_b.dtype == np.int64
    assert pairs.idx_a.tolist() == [0, 4] and pairs.idx_b.tolist() == [3, 2]
    assert pairs.target.dtype == np.float32 and pairs.target.tolist() == [1.5, -0.5]
    assert pairs.orthogroup.tolist() == ["OG1", "OG2"]
    x_a, x_b, y = batch_tensors(windows, pairs, np.array([1]))
    assert x_a.shape == (1, 4, LENGTH) and x_b.shape == (1, 4, LENGTH)
    assert torch.allclose(x_a.sum(dim=1), torch.ones(1, LENGTH))
    codes = windows.codes[4]
    assert torch.equal(x_a[0, :, codes == 4], torch.full((4, int((codes == 4).sum())), 0.25))
    assert torch.equal(x_a[0].argmax(dim=0)[codes < 4], torch.as_tensor(codes[codes < 4]).long())
    assert y.tolist() == [-0.5]


def test_pair_with_gene_without_window(encoded: tuple[Path, dict]) -> None:
    d, _ = encoded
    windows = EncodedWindows.load(d / "codes.npy", d / "genes.tsv")
    splits = splits_frame([("OG9", "{M,V}", "g1", "medicago", "v_absent", "vicia", 1.0, 0,
                            "test")])
    with pytest.raises(InputError, match="vicia/v_absent"):
        pair_arrays(splits, windows, 0, "test")


def test_windows_of_unequal_length_are_rejected(tmp_path: Path) -> None:
    write_fasta(tmp_path / "w.fa", {"a": "ACGT" * 5, "b": "ACG"})
    with pytest.raises(InputError, match=r"w\.fa, line 3, record 'b'"):
        read_fasta_codes(tmp_path / "w.fa")


def test_bad_windows_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.dataset"])
    code = cli.main(["encode", "--windows", "no_equals_sign.fa", "--out-npy",
                     str(tmp_path / "c.npy"), "--out-genes", str(tmp_path / "g.tsv")])
    assert code == 1
    assert "SPECIES=FASTA" in capsys.readouterr().err


def test_65000_pairs_load_with_every_index(tmp_path: Path) -> None:
    # (its time is no test's business: a timed assert fails on a slow day, not on a bug)
    n_genes, n_pairs = 20_000, 65_000
    rng = np.random.default_rng(0)
    np.save(tmp_path / "codes.npy", rng.integers(0, 5, size=(n_genes, 3000), dtype=np.uint8))
    species = np.where(np.arange(n_genes) % 2 == 0, "medicago", "vicia")
    gene_ids = np.array([f"g{i}" for i in range(n_genes)])
    pd.DataFrame({"index": np.arange(n_genes), "species": species, "gene_id": gene_ids}).to_csv(
        tmp_path / "genes.tsv", sep="\t", index=False)
    a, b = rng.integers(0, n_genes, size=n_pairs), rng.integers(0, n_genes, size=n_pairs)
    pd.DataFrame({"orthogroup": [f"OG{i}" for i in range(n_pairs)], "label": "{M,V}",
                  "gene_a": gene_ids[a], "species_a": species[a],
                  "gene_b": gene_ids[b], "species_b": species[b],
                  "d": rng.normal(size=n_pairs), "fold": 0, "set": "train"}).to_csv(
        tmp_path / "splits.tsv", sep="\t", index=False)
    windows = EncodedWindows.load(tmp_path / "codes.npy", tmp_path / "genes.tsv")
    pairs = pair_arrays(read_splits(tmp_path / "splits.tsv"), windows, 0, "train")
    assert len(pairs) == n_pairs
    assert np.array_equal(pairs.idx_a, a) and np.array_equal(pairs.idx_b, b)


def test_write_encoded_windows_api(tmp_path: Path) -> None:
    write_fasta(tmp_path / "a.fa", random_windows(5, ["x", "y"]))
    genes = write_encoded_windows({"sp": tmp_path / "a.fa"}, tmp_path / "o.npy",
                                  tmp_path / "o.tsv")
    assert genes["index"].tolist() == [0, 1]
    assert np.load(tmp_path / "o.npy").shape == (2, LENGTH)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_fastas_without_any_window_are_an_error_naming_them(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    """plantt encode of FASTA files that hold no record exits 1 naming them, and writes
    nothing (it used to write an empty array and exit 0)."""
    for name in ("a.fa", "b.fa"):
        (tmp_path / name).write_text("")
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.dataset"])
    code = cli.main(["encode", "--windows", f"sp1={tmp_path / 'a.fa'}",
                     f"sp2={tmp_path / 'b.fa'}", "--out-npy", str(tmp_path / "c.npy"),
                     "--out-genes", str(tmp_path / "g.tsv")])
    assert code == 1
    err = capsys.readouterr().err
    assert "a.fa" in err and "b.fa" in err and "no window" in err
    assert not (tmp_path / "c.npy").exists() and not (tmp_path / "g.tsv").exists()
