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
