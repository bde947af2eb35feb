"""plantt.published: the workflow's published-model section, its inputs and predictions.

These tests need no released weights: a legacy tower with random weights, saved the way
``plantt import-weights`` saves the published one, stands in for it (tests/test_workflow_published.py
runs the real weights through the workflow).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from plantt.encoding import decode
from plantt.io import InputError
from plantt.legacy import LEGACY_LAYOUT, LegacySettings, LegacyTower, legacy_two_tower
from plantt.models import save_model
from plantt.published import (
    PublishedSettings,
    coerce_config,
    contrast_pairs,
    predict_published,
    write_inputs,
    write_predictions,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_bases(n: int, seed: int) -> str:
    return decode(np.random.default_rng(seed).integers(0, 4, n).astype(np.uint8))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A legacy tower with random weights, stored as import-weights stores the published one."""
    torch.manual_seed(0)
    tower = LegacyTower(LegacySettings(output_sign=-1))
    return save_model(tmp_path_factory.mktemp("legacy") / "model", legacy_two_tower(tower),
                      layout=LEGACY_LAYOUT)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """Three 3000-base records, a, b and c."""
    path = tmp_path / "inputs.fa"
    path.write_text("".join(f">{name}\n{random_bases(3000, i)}\n" for i, name in enumerate("abc")))
    return path


def test_config_text_is_coerced() -> None:
    """`snakemake --config` hands nested values over as text."""
    raw = {"weights": "w.pt", "ism_flank": "20", "edit_budget": " 2 ", "ism_batch_size": "64",
           "reference": "null", "sequences": "", "terminator": "None", "ism": ["a"],
           "edit_direction": "up"}
    assert coerce_config(raw) == {"weights": "w.pt", "ism_flank": 20, "edit_budget": 2,
                                  "ism_batch_size": 64, "reference": None, "sequences": None,
                                  "terminator": None, "ism": ["a"], "edit_direction": "up"}
    assert coerce_config({"edit_budget": "two"}) == {"edit_budget": "two"}  # for the schema
    assert coerce_config(None) == {}


def test_settings_from_config() -> None:
    assert not PublishedSettings.from_config(None).enabled
    assert not PublishedSettings.from_config({"weights": None, "ism": ["x"]}).enabled
    settings = PublishedSettings.from_config({
        "weights": "w.pt", "promoter": "p.fa", "terminator": "t.fa", "pairs": [["a", "b"]],
        "ism": ["a"], "ism_flank": "10", "edit_budget": "1", "edit_protect": ["0-10"]})
    assert settings.enabled and settings.pairs == (("a", "b"),) and settings.ism == ("a",)
    assert settings.ism_flank == 10 and settings.edit_budget == 1
    assert settings.input_files() == {"promoter": "p.fa", "terminator": "t.fa"}
    assert PublishedSettings.from_config(
        {"weights": "w.pt", "sequences": "s.fa", "pairs": None}).input_files() == \
        {"sequences": "s.fa"}


@pytest.mark.parametrize(("section", "message"), [
    ({"sequences": "s.fa", "promoter": "p.fa"}, "not both"),
    ({"promoter": "p.fa"}, "inputs are missing"),
    ({"sequences": "s.fa", "pairs": [["a", "a"]]}, "two different record ids"),
    ({"sequences": "s.fa", "pairs": [["a", "b", "c"]]}, "two different record ids"),
    ({"sequences": "s.fa", "edit_budget": 2}, "edits the records listed under ism"),
    ({"sequences": "s.fa", "edit_direction": "sideways"}, "up or down"),
    ({"sequences": "s.fa", "typo": 1}, "unknown key"),
])
def test_bad_settings_are_named(section: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PublishedSettings.from_config({"weights": "w.pt", **section})


def test_contrast_pairs() -> None:
    ids = ["a", "b", "c"]
    assert contrast_pairs(ids) == [("b", "a"), ("c", "a")]
    assert contrast_pairs(ids, reference="c") == [("a", "c"), ("b", "c")]
    assert contrast_pairs(ids, [["c", "b"]], reference="a") == [("c", "b")]
    assert contrast_pairs(["a"]) == [] and contrast_pairs([]) == []


def test_inputs_from_promoters_and_terminators(tmp_path: Path) -> None:
    prom, term = tmp_path / "p.fa", tmp_path / "t.fa"
    prom.write_text(f">g1 some description\n{random_bases(1500, 1)}\n>g2\n{random_bases(1500, 2)}\n")
    term.write_text(f">t1\n{random_bases(1500, 3)}\n>t2\n{random_bases(1500, 4)}\n")
    out = tmp_path / "inputs.fa"
    assert write_inputs(out, promoter=prom, terminator=term) == ["g1", "g2"]
    lines = out.read_text().splitlines()
    assert lines[0] == ">g1" and lines[1] == random_bases(1500, 1) + random_bases(1500, 3)
    prom.write_text(f">g1\n{random_bases(1500, 1)}\n>g1\n{random_bases(1500, 2)}\n")
    with pytest.raises(InputError, match="duplicate record id"):
        write_inputs(out, promoter=prom, terminator=term)


def test_predictions_follow_the_house_sign(model_dir: Path, inputs: Path) -> None:
    scores, predictions = predict_published(model_dir, inputs, [("b", "a"), ("a", "c")])
    assert scores["id"].tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(scores["published_score"], -scores["score"])
    by_id = scores.set_index("id")["score"]
    for row in predictions.itertuples():
        assert row.prediction == pytest.approx(by_id[row.id_a] - by_id[row.id_b], abs=1e-3)
        assert row.more_expressed == (row.id_a if row.prediction > 0 else row.id_b)
        assert row.published_prediction == pytest.approx(-row.prediction)


def test_write_predictions_checks_the_named_records(model_dir: Path, inputs: Path,
                                                    tmp_path: Path) -> None:
    outs = [tmp_path / name for name in ("scores.tsv", "predictions.tsv", "predictions.png")]
    written = write_predictions(model_dir, inputs, *outs, reference="b")
    assert written[["id_a", "id_b"]].values.tolist() == [["a", "b"], ["c", "b"]]
    table = pd.read_csv(outs[1], sep="\t")
    assert list(table.columns) == ["id_a", "id_b", "prediction", "more_expressed",
                                   "published_prediction"]
    assert outs[2].stat().st_size > 1000
    with pytest.raises(InputError, match="published.reference names 'z'"):
        write_predictions(model_dir, inputs, *outs, reference="z")
    with pytest.raises(InputError, match="published.pairs names 'y'"):
        write_predictions(model_dir, inputs, *outs, pairs=[["a", "y"]])
