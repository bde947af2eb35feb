"""The Python entry point (plantt.predict_sequences, plantt.predict_pairs): the same numbers as
the command line, checked input, and `import plantt` still light."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from plantt import cli
from plantt.io import InputError

LENGTH = 120


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory):
    import torch

    from plantt.models import build_model, save_model

    torch.manual_seed(0)
    return save_model(tmp_path_factory.mktemp("api") / "model", build_model("plantt", "small",
                                                                             LENGTH))


def _sequences(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join("ACGT"[i] for i in rng.integers(0, 4, LENGTH)) for _ in range(n)]


def test_predictions_equal_the_command_lines(model_dir, tmp_path) -> None:
    import plantt

    a, b = _sequences(5, 1), _sequences(5, 2)
    scores = plantt.predict_sequences(model_dir, a)
    pairs = plantt.predict_pairs(model_dir, a, b)
    assert scores.shape == (5,) and pairs.shape == (5,) and scores.dtype == np.float64
    assert np.ptp(scores) > 0  # the sequences are told apart
    # a two-tower model's difference is the difference of its towers' scores
    np.testing.assert_allclose(pairs, scores - plantt.predict_sequences(model_dir, b),
                               rtol=1e-5, atol=1e-6)
    # one string is one sequence, in lower case too
    assert plantt.predict_sequences(model_dir, a[0].lower())[0] == pytest.approx(scores[0])
    (tmp_path / "s.fa").write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(a)))
    assert cli.main(["predict", "--model", str(model_dir), "--sequences",
                     str(tmp_path / "s.fa"), "--out", str(tmp_path / "out.tsv")]) == 0
    table = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    np.testing.assert_allclose(table["prediction"], scores, rtol=1e-5, atol=1e-6)


def test_bad_sequences_are_named(model_dir) -> None:
    import plantt

    good = _sequences(2, 3)
    with pytest.raises(InputError, match=r"sequences\[1\].*not DNA"):
        plantt.predict_sequences(model_dir, [good[0], "HELLO WORLD"])
    with pytest.raises(InputError, match=r"sequences_b\[0\].*expects exactly 120"):
        plantt.predict_pairs(model_dir, good[:1], ["ACGT"])
    with pytest.raises(ValueError, match="2 sequences_a but 1 sequences_b"):
        plantt.predict_pairs(model_dir, good, good[:1])
    with pytest.raises(ValueError, match="no sequences"):
        plantt.predict_sequences(model_dir, [])
    with pytest.raises(AttributeError, match="no attribute 'predikt'"):
        plantt.predikt  # noqa: B018


def test_import_plantt_does_not_import_torch() -> None:
    code = ("import sys, plantt; assert 'torch' not in sys.modules; "
            "assert callable(plantt.predict_sequences); print(sorted(plantt.__all__))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "predict_pairs" in done.stdout


def test_loaded_model_and_one_hot_input_give_the_folders_and_strings_numbers(model_dir) -> None:
    import plantt
    from plantt.encoding import encode

    a, b = _sequences(4, 5), _sequences(4, 6)
    model = plantt.load_model(model_dir, device="cpu")
    assert not model.training and model.info["seq_len"] == LENGTH
    one_hot_a = np.stack([np.eye(5, 4)[encode(s)].T for s in a])  # (n, 4, L)
    assert one_hot_a.shape == (4, 4, LENGTH)
    from_folder = plantt.predict_sequences(model_dir, a)
    np.testing.assert_allclose(plantt.predict_sequences(model, a), from_folder, rtol=1e-6)
    np.testing.assert_allclose(plantt.predict_sequences(model, one_hot_a), from_folder,
                               rtol=1e-6)
    # (a batch of one rounds differently in float32)
    np.testing.assert_allclose(plantt.predict_sequences(model, one_hot_a[0]), from_folder[:1],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plantt.predict_pairs(model, one_hot_a, b),
                               plantt.predict_pairs(model_dir, a, b), rtol=1e-6)
    smeared = one_hot_a.copy()
    smeared[1, :, 7] = 0.5
    with pytest.raises(ValueError, match=r"sequences\[1\]: position 7 is not one-hot"):
        plantt.predict_sequences(model, smeared)
    with pytest.raises(ValueError, match=r"shape \(4, L\) or \(n, 4, L\)"):
        plantt.predict_sequences(model, one_hot_a.transpose(0, 2, 1))
    with pytest.raises(TypeError, match="model folder or a loaded model"):
        plantt.predict_sequences(42, a)


def test_ism_is_every_substitution_rescored(model_dir) -> None:
    import plantt

    sequence = _sequences(1, 7)[0]
    sequence = sequence[:10] + "N" + sequence[11:]
    effects = plantt.saturation_mutagenesis(model_dir, sequence)
    assert effects.shape == (4, LENGTH)
    reference = plantt.predict_sequences(model_dir, sequence)[0]
    for position, base in [(0, "A"), (37, "C"), (64, "G"), (119, "T")]:
        mutant = sequence[:position] + base + sequence[position + 1:]
        expected = plantt.predict_sequences(model_dir, mutant)[0] - reference
        assert effects["ACGT".index(base), position] == pytest.approx(expected, abs=1e-5)
    assert np.all(effects[["ACGT".index(c) for c in sequence if c != "N"],
                          [i for i, c in enumerate(sequence) if c != "N"]] == 0)
    assert np.isnan(effects[:, 10]).all()  # N: not scored
    some = plantt.saturation_mutagenesis(model_dir, sequence, positions=[3, 4])
    assert np.isnan(some[:, 5:]).all() and np.isfinite(some[:, 3:5]).all()
    np.testing.assert_allclose(some[:, 3:5], effects[:, 3:5], atol=1e-6)


def test_attributions_add_up_to_the_score_differences(model_dir) -> None:
    import plantt

    a, b = _sequences(3, 8), _sequences(3, 9)
    contributions = plantt.attribute(model_dir, a, references=b)
    assert contributions.shape == (3, 4, LENGTH)
    # DeepLift's completeness: each sequence's contributions sum to its score minus its
    # reference's, here the model's predicted pair difference
    np.testing.assert_allclose(contributions.sum(axis=(1, 2)),
                               plantt.predict_pairs(model_dir, a, b), rtol=1e-3, atol=1e-4)
    from plantt.encoding import encode

    one_hot_a, one_hot_b = (np.eye(5, 4)[encode(s)].T for s in (a[0], b[0]))
    # DeepLift's multipliers times (input - reference): only where the two differ
    assert np.all(contributions[0][one_hot_a == one_hot_b] == 0)
    assert np.count_nonzero(contributions[0]) > LENGTH
    with pytest.raises(ValueError, match="one reference per sequence"):
        plantt.attribute(model_dir, a, references=b[:1])


def test_python_m_plantt_is_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "plantt", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: plantt" in done.stdout and "predict" in done.stdout


def test_the_documented_example_runs_on_the_trained_demo(demo_trained, tmp_path) -> None:
    """docs/api_example.py, as README shows it, on a model the workflow trained; its figures
    are those of the command line."""
    import json

    from conftest import DEMO_TRAIN_ASSAY, REPO

    model = demo_trained / f"results/models/{DEMO_TRAIN_ASSAY}/plantt/fold_0"
    windows = demo_trained / "results/windows"
    done = subprocess.run([sys.executable, str(REPO / "docs/api_example.py"), str(model),
                           str(windows / "medicago.fa"), str(windows / "pisum.fa")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert "predicted difference" in done.stdout and "DeepLift" in done.stdout
    pairs = tmp_path / "pairs.tsv"
    import pyfaidx

    fasta_a, fasta_b = pyfaidx.Fasta(windows / "medicago.fa"), pyfaidx.Fasta(windows / "pisum.fa")
    pd.DataFrame({"sequence_a": [str(fasta_a[g][:]) for g in figures["genes_a"]],
                  "sequence_b": [str(fasta_b[g][:]) for g in figures["genes_b"]]}
                 ).to_csv(pairs, sep="\t", index=False)
    assert cli.main(["predict", "--model", str(model), "--pairs", str(pairs), "--out",
                     str(tmp_path / "out.tsv")]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out.tsv", sep="\t")["prediction"],
                               figures["differences"], rtol=1e-5, atol=1e-6)
    assert figures["attribution_sum"] == pytest.approx(figures["differences"][0], abs=1e-3)
    assert 900 <= figures["ism_position"] < 1100 and figures["ism_effect"] != 0
