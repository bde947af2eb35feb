"""Orthogroup-guided folds: no leakage, stratification, sign balance, determinism (hypothesis)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantt import cli
from plantt.splits import (
    balance_mask,
    flip_pairs,
    make_splits,
    split_summary,
    systematic_sample,
)

SPECIES = {"M": "medicago", "V": "vicia", "P": "pisum", "L": "lathyrus"}
LABELS = [frozenset(c) for k in (2, 3, 4) for c in itertools.combinations("LMPV", k)]


def labels_table(groups: list[tuple[int, list[float]]]) -> pd.DataFrame:
    """A labels table: one orthogroup per item (label index, d of each pair, cycled)."""
    rows = []
    for i, (label_index, ds) in enumerate(groups):
        codes = sorted(LABELS[label_index % len(LABELS)])
        label = "{" + ",".join(codes) + "}"
        for j, (ca, cb) in enumerate(itertools.combinations(codes, 2)):
            d = ds[j % len(ds)]
            rows.append({"orthogroup": f"OG{i:05d}", "label": label,
                         "gene_a": f"{ca}{i}", "species_a": SPECIES[ca],
                         "gene_b": f"{cb}{i}", "species_b": SPECIES[cb],
                         "mean_a": 10.0 + j, "sd_a": 1.0, "n_a": 6,
                         "mean_b": 20.0 + j, "sd_b": 2.0, "n_b": 3, "d": d})
    return pd.DataFrame(rows)


group_strategy = st.tuples(
    st.integers(0, 5),  # few labels so each has several orthogroups
    st.lists(st.one_of(st.floats(-5, 5, allow_nan=False).filter(lambda x: x != 0),
                       st.just(0.0)), min_size=1, max_size=6))
table_strategy = st.lists(group_strategy, min_size=1, max_size=60).map(labels_table)
hyp_settings = settings(max_examples=25, deadline=None,
                        suppress_health_check=[HealthCheck.too_slow])


def orthogroup_sets(splits: pd.DataFrame) -> pd.DataFrame:
    return splits[["fold", "orthogroup", "label", "set"]].drop_duplicates()


@hyp_settings
@given(table=table_strategy, folds=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_no_orthogroup_leaks_and_each_is_test_once(table: pd.DataFrame, folds: int,
                                                   seed: int) -> None:
    splits = make_splits(table, folds=folds, validation_fraction=0.2, seed=seed)
    assert len(splits) == folds * len(table)
    sets = orthogroup_sets(splits)
    # one set per orthogroup and fold
    assert not sets.duplicated(["fold", "orthogroup"]).any()
    test_counts = sets[sets["set"] == "test"].groupby("orthogroup").size()
    assert set(test_counts.index) == set(table["orthogroup"])
    assert (test_counts == 1).all()
    # every pair present once per fold (as itself or flipped)
    for _, fold in splits.groupby("fold"):
        keys = {frozenset([(r.species_a, r.gene_a), (r.species_b, r.gene_b)])
                for r in fold.itertuples()}
        assert len(keys) == len(table)


@hyp_settings
@given(table=table_strategy, seed=st.integers(0, 2**32 - 1),
       fraction=st.sampled_from([0.0, 0.1, 0.25, 0.5]))
def test_folds_are_stratified_by_label(table: pd.DataFrame, seed: int, fraction: float) -> None:
    folds = 5
    splits = make_splits(table, folds=folds, validation_fraction=fraction, seed=seed)
    sets = orthogroup_sets(splits)
    for _, per_label in sets.groupby("label"):
        test = per_label[per_label["set"] == "test"].groupby("fold").size()
        test = test.reindex(range(folds), fill_value=0)
        assert test.max() - test.min() <= 1
        for fold in range(folds):
            in_fold = per_label[per_label["fold"] == fold]
            rest = (in_fold["set"] != "test").sum()
            validation = (in_fold["set"] == "validation").sum()
            assert abs(validation - fraction * rest) < 1
    total_test = sets[sets["set"] == "test"].groupby("fold").size().reindex(range(folds),
                                                                          fill_value=0)
    assert total_test.max() - total_test.min() <= 1


@hyp_settings
@given(table=table_strategy, seed=st.integers(0, 2**32 - 1))
def test_signs_balanced_in_every_set(table: pd.DataFrame, seed: int) -> None:
    splits = make_splits(table, folds=5, validation_fraction=0.1, seed=seed)
    for _, group in splits.groupby(["fold", "set"]):
        positive, negative = (group["d"] > 0).sum(), (group["d"] < 0).sum()
        assert abs(positive - negative) <= 1
    # flipped rows are the originals with a and b swapped and d negated
    original = table.set_index(["orthogroup", "gene_a", "gene_b"])
    flipped = splits[splits["flipped"]]
    back = original.loc[list(zip(flipped["orthogroup"], flipped["gene_b"], flipped["gene_a"],
                                 strict=True))]
    assert np.allclose(back["d"].to_numpy(), -flipped["d"].to_numpy())
    assert (back["species_a"].to_numpy() == flipped["species_b"].to_numpy()).all()
    assert (back["mean_a"].to_numpy() == flipped["mean_b"].to_numpy()).all()
    assert (back["n_b"].to_numpy() == flipped["n_a"].to_numpy()).all()
    kept = splits[~splits["flipped"]]
    same = original.loc[list(zip(kept["orthogroup"], kept["gene_a"], kept["gene_b"],
                                 strict=True))]
    assert np.array_equal(same["d"].to_numpy(), kept["d"].to_numpy())


@hyp_settings
@given(table=table_strategy, seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_folds_whatever_the_row_order(table: pd.DataFrame, seed: int) -> None:
    first = make_splits(table, seed=seed)
    assert first.equals(make_splits(table, seed=seed))
    shuffled = table.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert orthogroup_sets(make_splits(shuffled, seed=seed)).sort_values(
        ["fold", "orthogroup"]).reset_index(drop=True).equals(
        orthogroup_sets(first).sort_values(["fold", "orthogroup"]).reset_index(drop=True))


def test_different_seeds_usually_differ() -> None:
    rng = np.random.default_rng(0)
    table = labels_table([(int(rng.integers(6)), list(rng.normal(size=3))) for _ in range(50)])
    assignments = set()
    for seed in range(10):
        sets = orthogroup_sets(make_splits(table, seed=seed)).sort_values(["fold", "orthogroup"])
        assignments.add(tuple(sets["set"]))
    assert len(assignments) >= 9


@hyp_settings
@given(n=st.integers(0, 200), fraction=st.floats(0, 0.99), seed=st.integers(0, 1000))
def test_systematic_sample_spreads_evenly(n: int, fraction: float, seed: int) -> None:
    chosen = systematic_sample(n, fraction, np.random.default_rng(seed))
    assert len(chosen) == n
    assert abs(chosen.sum() - fraction * n) < 1
    cumulative = np.concatenate([[0], np.cumsum(chosen)])
    # any run of consecutive items holds floor or ceil of its expected share
    for start in range(0, n, max(1, n // 7)):
        for stop in range(start, n + 1, max(1, n // 5)):
            assert abs(cumulative[stop] - cumulative[start] - fraction * (stop - start)) < 1


@hyp_settings
@given(d=st.lists(st.sampled_from([-1.0, 0.0, 2.0]), max_size=40), seed=st.integers(0, 100))
def test_balance_mask_flips_only_the_majority(d: list[float], seed: int) -> None:
    d_arr = np.array(d)
    mask = balance_mask(d_arr, np.random.default_rng(seed))
    after = np.where(mask, -d_arr, d_arr)
    assert abs((after > 0).sum() - (after < 0).sum()) <= 1
    if mask.any():
        assert len(set(np.sign(d_arr[mask]))) == 1 and 0 not in np.sign(d_arr[mask])


def test_flip_pairs_swaps_every_side_column() -> None:
    table = labels_table([(0, [1.5])])
    flipped = flip_pairs(table, np.array([True]))
    row, orig = flipped.iloc[0], table.iloc[0]
    for side in ("gene", "species", "mean", "sd", "n"):
        assert row[f"{side}_a"] == orig[f"{side}_b"] and row[f"{side}_b"] == orig[f"{side}_a"]
    assert row["d"] == -1.5 and row["orthogroup"] == orig["orthogroup"]


def test_summary_counts_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    table = labels_table([(int(rng.integers(6)), list(rng.normal(size=6))) for _ in range(40)])
    table.to_csv(tmp_path / "labels.tsv", sep="\t", index=False)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.splits"])
    code = cli.main(["splits", "--labels", str(tmp_path / "labels.tsv"), "--out",
                     str(tmp_path / "splits.tsv"), "--seed", "3", "--summary",
                     str(tmp_path / "counts.tsv")])
    assert code == 0
    splits = pd.read_csv(tmp_path / "splits.tsv", sep="\t")
    assert list(splits.columns) == list(table.columns) + ["fold", "set", "flipped"]
    assert splits.drop(columns=["fold", "set", "flipped"]).equals(
        make_splits(table, seed=3).drop(columns=["fold", "set", "flipped"]))
    counts = pd.read_csv(tmp_path / "counts.tsv", sep="\t")
    assert counts["pairs"].sum() == 5 * len(table)
    assert counts.groupby("fold")["pairs"].sum().tolist() == [len(table)] * 5
    assert set(counts["set"]) == {"train", "validation", "test"}
    assert counts.equals(split_summary(make_splits(table, seed=3)))


def test_orthogroup_with_two_labels_is_an_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    table = labels_table([(0, [1.0]), (1, [2.0])])
    table.loc[1, "orthogroup"] = "OG00000"
    table.to_csv(tmp_path / "labels.tsv", sep="\t", index=False)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["plantt.splits"])
    code = cli.main(["splits", "--labels", str(tmp_path / "labels.tsv"), "--out",
                     str(tmp_path / "splits.tsv")])
    assert code == 1
    err = capsys.readouterr().err
    assert "labels.tsv" in err and "OG00000" in err and "several labels" in err


# ----------------------------------------------------------------------------------------------
# One fold assignment for every assay (sequential training across assays)
# ----------------------------------------------------------------------------------------------
def two_assays(n: int = 300, dropped: int = 5, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label tables of two assays over the same orthogroups, the second without ``dropped`` of
    them (pairs without reads) and with its own d values."""
    rng = np.random.default_rng(seed)
    first = labels_table([(int(rng.integers(6)), list(rng.normal(size=3))) for _ in range(n)])
    gone = set(rng.choice(first["orthogroup"].unique(), size=dropped, replace=False))
    second = first[~first["orthogroup"].isin(gone)].copy()
    second["d"] = rng.normal(size=len(second))
    return first, second.reset_index(drop=True)


def fold_of_test(splits: pd.DataFrame) -> pd.Series:
    """The fold in whose test set each orthogroup lies."""
    test = splits[splits["set"] == "test"].drop_duplicates("orthogroup")
    return test.set_index("orthogroup")["fold"]


def test_shared_folds_keep_each_orthogroup_in_its_test_fold_in_every_assay() -> None:
    from plantt.splits import shared_orthogroups

    first, second = two_assays()
    shared = shared_orthogroups([first, second])
    folds_first = fold_of_test(make_splits(first, seed=1, orthogroups=shared))
    split_second = make_splits(second, seed=1, orthogroups=shared)
    folds_second = fold_of_test(split_second)
    assert len(folds_second) == second["orthogroup"].nunique()
    assert (folds_first.loc[folds_second.index] == folds_second).all()
    # signs are still balanced within every set of the second assay's own pairs
    for _, part in split_second.groupby(["fold", "set"]):
        assert abs(int((part["d"] > 0).sum()) - int((part["d"] < 0).sum())) <= 1
    # what the shared assignment prevents: split alone, most orthogroups change fold
    alone = fold_of_test(make_splits(second, seed=1))
    moved = (folds_first.loc[alone.index] != alone).mean()
    assert moved > 0.3, moved


def test_shared_folds_are_the_usual_ones_when_the_assays_agree() -> None:
    from plantt.splits import shared_orthogroups

    first, _ = two_assays(n=120)
    same_groups = first.assign(d=-first["d"])
    pd.testing.assert_frame_equal(
        make_splits(first, seed=4),
        make_splits(first, seed=4, orthogroups=shared_orthogroups([first, same_groups])))


def test_shared_orthogroups_refuse_an_orthogroup_labelled_twice_and_a_missing_one() -> None:
    from plantt.io import InputError
    from plantt.splits import shared_orthogroups

    first, second = two_assays(n=40)
    relabelled = second.copy()
    og = relabelled["orthogroup"].iloc[0]
    relabelled.loc[relabelled["orthogroup"] == og, "label"] = "{X,Y}"
    with pytest.raises(InputError, match=rf"record '{og}'.*labelled"):
        shared_orthogroups([first, relabelled], ["a.tsv", "b.tsv"])
    with pytest.raises(InputError, match="missing from the shared fold assignment"):
        make_splits(first, orthogroups=shared_orthogroups([second]))


def test_leak_check_fires_on_folds_computed_apart_and_not_on_shared_ones(tmp_path: Path) -> None:
    from plantt.cv import check_no_test_leak
    from plantt.io import InputError, write_tsv
    from plantt.splits import shared_orthogroups

    first, second = two_assays()
    shared = shared_orthogroups([first, second])
    paths = {}
    for name, table, groups in (("first_shared", first, shared), ("second_shared", second, shared),
                                ("second_alone", second, None)):
        paths[name] = tmp_path / f"{name}.tsv"
        write_tsv(make_splits(table, seed=1, orthogroups=groups), paths[name])
    for fold in range(5):
        check_no_test_leak(paths["first_shared"], paths["second_shared"], fold)
    with pytest.raises(InputError, match=r"fold 2 of the pre-training assay trained or validated "
                                         r"on \d+ orthogroup\(s\) that are test orthogroups"):
        check_no_test_leak(paths["first_shared"], paths["second_alone"], 2)


def test_splits_cli_shares_the_folds(tmp_path: Path) -> None:
    from plantt.io import write_tsv

    first, second = two_assays(n=100)
    write_tsv(first, tmp_path / "first.tsv")
    write_tsv(second, tmp_path / "second.tsv")
    for name, other in (("first", "second"), ("second", "first")):
        assert cli.main(["splits", "--labels", str(tmp_path / f"{name}.tsv"), "--out",
                         str(tmp_path / f"{name}.splits.tsv"), "--seed", "2", "--shared-with",
                         str(tmp_path / f"{other}.tsv")]) == 0
    folds = {name: fold_of_test(pd.read_csv(tmp_path / f"{name}.splits.tsv", sep="\t"))
             for name in ("first", "second")}
    assert (folds["first"].loc[folds["second"].index] == folds["second"]).all()
