"""Hill-climbing sequence editing: monotone objective, early stop, protection, outputs, CLI."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from conftest import random_plantt_model
from plantt import editing, fastism, model_commands
from plantt.encoding import N_CODE, decode, encode
from plantt.io import InputError
from plantt.ism import IsmResult, ism_scores, sequence_scores
from plantt.models import TowerSettings, TwoTower, save_model

SETTINGS = TowerSettings(stem_channels=8, stem_stride=2, stem_kernel=4, stage_kernels=(5, 3),
                         blocks_per_stage=1, inner_convs=1, max_channels=16, embedding_dim=5)


def random_model(seq_len: int, seed: int = 0) -> TwoTower:
    return random_plantt_model(SETTINGS, seq_len, seed)


class CappedGCount(nn.Module):
    """A tower whose score is min(number of G bases, cap) (one embedding dimension): editing
    'up' can add exactly ``cap - #G`` G bases, after which no substitution improves."""

    def __init__(self, cap: float, seq_len: int):
        super().__init__()
        self.cap = cap
        self.seq_len = seq_len
        self.unused = nn.Parameter(torch.zeros(1))  # the scorer reads the parameters' dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g_count = x[:, 2, :].sum(dim=-1, keepdim=True)
        return torch.clamp(g_count, max=self.cap)


def test_up_and_down_edits_each_improve_the_objective() -> None:
    model = random_model(40, seed=1)
    codes = np.random.default_rng(2).integers(0, 4, 40).astype(np.uint8)
    original = float(sequence_scores(model, codes)[0])
    for direction, sign in (("up", 1), ("down", -1)):
        result = editing.hill_climb(model, codes, budget=3, direction=direction, batch_size=64)
        assert len(result.edits) == 3
        scores = [original] + [e.score for e in result.edits]
        assert all(sign * (b - a) > 0 for a, b in zip(scores, scores[1:], strict=False))
        assert all(sign * e.step_effect > 0 for e in result.edits)
        final = float(sequence_scores(model, result.edited)[0])
        assert result.edits[-1].cumulative_effect == pytest.approx(final - original, abs=1e-5)
        assert int((result.edited != codes).sum()) <= 3
        # each step takes the best substitution the scorer offered at that step
        first = ism_scores(model, codes)
        best = np.nanmax(sign * first.effect)
        assert sign * result.edits[0].step_effect == pytest.approx(best, abs=1e-6)


def test_stops_as_soon_as_no_substitution_improves() -> None:
    codes = encode("AAGAAAAAAT")
    model = TwoTower(CappedGCount(cap=3.0, seq_len=codes.size)).eval()
    result = editing.hill_climb(model, codes, budget=10, direction="up")
    assert len(result.edits) == 2  # 1 G present, cap 3
    assert all(e.alt == "G" and e.step_effect == pytest.approx(1.0) for e in result.edits)
    assert [e.position for e in result.edits] == [0, 1]  # ties broken by the lowest position
    assert "any further" in result.stop_reason
    assert result.edits[-1].cumulative_effect == pytest.approx(2.0)
    assert result.edits[-1].percent_change == pytest.approx(200.0)
    down = editing.hill_climb(model, codes, budget=10, direction="down")
    assert [(e.position, e.ref) for e in down.edits] == [(2, "G")]
    assert decode(down.edited).count("G") == 0


def test_budget_protection_and_n_positions() -> None:
    codes = encode("NAAAAAAAAN")
    model = TwoTower(CappedGCount(cap=10.0, seq_len=codes.size)).eval()
    result = editing.hill_climb(model, codes, budget=4, protect=[(1, 4)])
    assert result.stop_reason.startswith("budget")
    assert [e.position for e in result.edits] == [4, 5, 6, 7]
    everything = editing.hill_climb(model, codes, budget=20, protect=[(1, 9)])
    assert everything.edits == [] and "any further" in everything.stop_reason
    with_n = editing.hill_climb(model, codes, budget=1, include_n=True, protect=[(1, 9)])
    assert [(e.position, e.ref, e.alt) for e in with_n.edits] == [(0, "N", "G")]
    assert with_n.edits[0].step_effect == pytest.approx(0.75)  # N counts as 0.25 G


def test_a_scorer_offering_only_worse_moves_stops_immediately() -> None:
    codes = encode("ACGTACGT")
    model = TwoTower(CappedGCount(cap=10.0, seq_len=codes.size)).eval()

    def pessimist(model: TwoTower, current: np.ndarray, batch_size: int,
                  positions: np.ndarray | None, include_n: bool) -> IsmResult:
        effect = np.full((current.size, 4), -1.0)
        effect[np.arange(current.size), current] = 0.0
        return IsmResult(current.copy(), 1.0, effect)

    result = editing.hill_climb(model, codes, budget=5, scorer=pessimist)
    assert result.edits == []
    assert np.array_equal(result.edited, codes)
    down = editing.hill_climb(model, codes, budget=2, direction="down", scorer=pessimist)
    assert len(down.edits) == 2 and all(e.step_effect == -1.0 for e in down.edits)


def test_parse_range_and_invalid_input() -> None:
    assert editing.parse_range("1000-1003") == (1000, 1003)
    for bad in ("5", "5-5", "a-b", "-3-4"):
        with pytest.raises(InputError, match="START-END"):
            editing.parse_range(bad)
    with pytest.raises(ValueError, match="direction"):
        editing.hill_climb(TwoTower(CappedGCount(1.0, 4)).eval(), encode("ACGT"), 1, "sideways")


def test_cli_writes_and_prints_the_edits(tmp_path, capsys) -> None:
    model = random_model(40, seed=3)
    save_model(tmp_path / "model", model)
    codes = np.random.default_rng(4).integers(0, 4, 40).astype(np.uint8)
    codes[[10, 11]] = N_CODE
    (tmp_path / "seq.fa").write_text(f">geneA\n{decode(codes)}\n")
    parser = argparse.ArgumentParser()
    model_commands.register_cli(parser.add_subparsers())
    args = parser.parse_args(["edit", "--model", str(tmp_path / "model"), "--fasta",
                              str(tmp_path / "seq.fa"), "--budget", "2", "--direction", "down",
                              "--protect", "0-5", "--out", str(tmp_path / "edits.tsv"),
                              "--edited-fasta", str(tmp_path / "edited.fa")])
    assert args.func(args) == 0
    table = pd.read_csv(tmp_path / "edits.tsv", sep="\t")
    assert list(table.columns) == editing.EDIT_COLUMNS
    assert table["step"].tolist() == [1, 2]
    assert (table["position"] >= 5).all() and not table["position"].isin([10, 11]).any()
    assert (table["step_effect"] < 0).all()
    assert "cumulative_effect" in capsys.readouterr().out
    edited = (tmp_path / "edited.fa").read_text().split("\n")[1]
    assert sum(a != b for a, b in zip(edited, decode(codes), strict=True)) == 2


@pytest.mark.parametrize("direction", ["up", "down"])
def test_rescoring_only_near_each_edit_gives_the_same_edits(direction: str) -> None:
    # a long sequence, so that most substitutions lie outside an edit's neighbourhood
    model = random_model(400, seed=4)
    codes = np.random.default_rng(5).integers(0, 4, 400).astype(np.uint8)
    fast = editing.hill_climb(model, codes, budget=6, direction=direction)
    full = editing.hill_climb(model, codes, budget=6, direction=direction, incremental=False)
    assert len(fast.edits) == len(full.edits) == 6
    assert [(e.position, e.alt) for e in fast.edits] == [(e.position, e.alt) for e in full.edits]
    np.testing.assert_allclose([e.cumulative_effect for e in fast.edits],
                               [e.cumulative_effect for e in full.edits], atol=1e-5)
    # the neighbourhood of one edit is a small part of the sequence (else nothing is saved)
    compiled = fastism.fast_ism_scorer(model)
    lo, hi = fastism.output_ranges(compiled, np.arange(400))
    near = (lo < hi[200]) & (hi > lo[200])
    assert 1 < near.sum() < 200
