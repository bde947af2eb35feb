"""Shared fixtures and paths for the test suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "workflow" / "schemas"
SHARED = REPO.parent / "shared"


@pytest.fixture
def repo() -> Path:
    return REPO


def run_snakemake(workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in ``workdir`` (which holds a ``config/`` folder)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--cores", "2", "--show-failed-logs", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc


def copy_config(workdir: Path, grammar: str | Path = "default") -> Path:
    """Copy the repository's config/ into ``workdir`` with the demo simulated from ``grammar``:
    by default the easy grammar that most tests assert on (the shipped config's demo uses the
    realistic one)."""
    shutil.copytree(REPO / "config", workdir / "config")
    config_file = workdir / "config" / "config.yaml"
    text = config_file.read_text()
    line = "\n  grammar: realistic\n"
    assert text.count(line) == 1, "config.yaml's demo_settings.grammar line moved"
    config_file.write_text(text.replace(line, f"\n  grammar: {grammar}\n"))
    return workdir / "config"


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded demo up to training (target ``preprocess_all``), run once per test session with
    the default config but the easy grammar (what these tests assert on; the realistic default
    demo has tests of its own): real cutadapt, STAR, samtools and every stage before training.

    Set PLANTT_DEMO_WORKDIR to reuse (and bring up to date) an existing run directory instead, one
    whose config/ was copied by :func:`copy_config` (the easy grammar): handy while developing.
    """
    reuse = os.environ.get("PLANTT_DEMO_WORKDIR")
    if reuse:
        workdir = Path(reuse).resolve()
    else:
        workdir = tmp_path_factory.mktemp("demo")
        copy_config(workdir)
    run_snakemake(workdir, "preprocess_all")
    return workdir


# What the suite trains on the demo, to keep CI short: the rnaseq3p assay only, with every model
# the demo trains (PlanTT, the Washburn classifier, the shuffled-label control and the k-mer
# baseline) on every fold, with the demo's own settings. The full demo (both assays) runs with
# `snakemake --cores 2`.
DEMO_TRAIN_ASSAY = "rnaseq3p"
DEMO_TRAIN_CONFIG = 'train={"models": ["plantt", "washburn", "plantt_shuffled", "kmer"]}'


def demo_trained_targets() -> list[str]:
    base = f"results/interpret/{DEMO_TRAIN_ASSAY}"
    motifs = f"results/motifs/{DEMO_TRAIN_ASSAY}"
    return [f"results/metrics/{DEMO_TRAIN_ASSAY}/metrics_summary.tsv",
            f"{base}/attribution_profile.tsv", f"{base}/motif_attribution.tsv",
            f"{base}/ism/ism.tsv", f"{motifs}/plantt/recovery.tsv",
            f"{motifs}/plantt_shuffled/recovery.tsv"]


@pytest.fixture(scope="session")
def demo_trained(demo_workdir: Path) -> Path:
    """The demo workdir after training and evaluating DEMO_TRAIN_ASSAY's models on every fold
    through the workflow's own rules (train_fold, evaluate), and interpreting them."""
    # two trainings side by side, one thread each: faster than one at a time on 2 cores
    # (targets first: --set-threads and --config take every value up to the next option)
    run_snakemake(demo_workdir, *demo_trained_targets(), "--set-threads", "train_fold=1",
                  "--config", DEMO_TRAIN_CONFIG,
                  timeout=3600)
    return demo_workdir


def six_mer_ridge_spearman(workdir: Path, assay: str, fold: int) -> float:
    """Test Spearman of the issue's reference baseline on one fold of a workdir: a ridge on
    6-mer counts per 750-bp block, alpha from {10, 100, 1000} chosen on the validation pairs."""
    import numpy as np
    from scipy.stats import spearmanr

    from plantt.dataset import EncodedWindows, pair_arrays, read_splits
    from plantt.kmer import KmerSettings, fit_kmer_pairs

    windows = EncodedWindows.load(workdir / "results/windows/encoded.npy",
                                  workdir / "results/windows/encoded.genes.tsv")
    splits = read_splits(workdir / f"results/splits/{assay}.tsv")
    train, val, test = (pair_arrays(splits, windows, fold, s)
                        for s in ("train", "validation", "test"))
    codes = np.asarray(windows.codes)
    ridge, _ = fit_kmer_pairs(codes, train, val, KmerSettings(ks=(6,), alphas=(10, 100, 1000),
                                                              block_length=750))
    predicted = ridge.predict_pairs(codes, test.idx_a, test.idx_b)
    return float(spearmanr(predicted, test.target)[0])


def random_plantt_model(settings, seq_len: int, seed: int = 0):
    """A PlanTT model with random weights and random batch-norm scales, shifts and running statistics
    (the residual branches would otherwise start as zeros), in eval mode."""
    import torch
    from torch import nn

    from plantt.models import PlanTTCNNTower, TwoTower

    torch.manual_seed(seed)
    model = TwoTower(PlanTTCNNTower(settings, seq_len))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.2)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen)
                                          * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen)
                                         + 0.5)
    return model.eval()


# ----------------------------------------------------------------------------------------------
# Tables of sequences with a planted motif grammar (plantt fit)
# ----------------------------------------------------------------------------------------------
# Expression = sum over motifs of effect x copies (each motif planted 0-2 times at random places
# in random sequence), plus Gaussian noise. Two motifs: one raises, one lowers expression.
MOTIF_EFFECTS = {"TGACGTCA": 1.5, "CAATTATG": -1.2}


def motif_expression(seq: str) -> float:
    return sum(effect * seq.count(motif) for motif, effect in MOTIF_EFFECTS.items())


def _plant(rng, seq: str, motif: str) -> str:
    start = int(rng.integers(0, len(seq) - len(motif) + 1))
    return seq[:start] + motif + seq[start + len(motif):]


def motif_sequence(rng, min_length: int, max_length: int) -> str:
    seq = "".join(rng.choice(list("ACGT"), int(rng.integers(min_length, max_length + 1))))
    for motif in MOTIF_EFFECTS:
        for _ in range(int(rng.integers(0, 3))):
            seq = _plant(rng, seq, motif)
    return seq


def single_table(n_groups: int, per_group: int, min_length: int, max_length: int, seed: int,
                 noise: float = 0.3):
    """A ``single`` table (id, group, sequence, expression) of sequences with planted motifs."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        for v in range(per_group):
            seq = motif_sequence(rng, min_length, max_length)
            rows.append({"id": f"g{g}v{v}", "group": f"g{g}", "sequence": seq,
                         "expression": motif_expression(seq) + rng.normal(0.0, noise)})
    return pd.DataFrame(rows)


def pairs_table(n: int, min_length: int, max_length: int, seed: int, noise: float = 0.3):
    """A ``pairs`` table (id, sequence_a, sequence_b, target): b is a with 3 random substitutions
    and motifs added at random, the two swapped at random; target = difference + noise."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a = motif_sequence(rng, min_length, max_length)
        b = list(a)
        for position in rng.integers(0, len(b), 3):
            b[position] = "ACGT"[int(rng.integers(4))]
        b = "".join(b)
        for motif in MOTIF_EFFECTS:
            if rng.random() < 0.5:
                b = _plant(rng, b, motif)
        if rng.random() < 0.5:
            a, b = b, a
        rows.append({"id": f"p{i}", "sequence_a": a, "sequence_b": b,
                     "target": motif_expression(a) - motif_expression(b) + rng.normal(0.0, noise)})
    return pd.DataFrame(rows)


@pytest.fixture
def one_torch_thread():
    """Torch on one CPU thread for the test (small tensors: threads only add overhead, and the
    results then do not depend on the machine's core count)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def write_two_fold_inputs(folder: Path, codes) -> None:
    """``encoded.npy``, ``genes.tsv`` and ``splits.tsv`` for 12 genes in two species: fold k's
    test pairs hold genes 6k-6k+5 (three pairs), and each fold has one training pair of g0/g1."""
    import numpy as np
    import pandas as pd

    n_genes = len(codes)
    np.save(folder / "encoded.npy", codes)
    pd.DataFrame({"index": range(n_genes), "species": ["sp1", "sp2"] * (n_genes // 2),
                  "gene_id": [f"g{i}" for i in range(n_genes)]}).to_csv(
        folder / "genes.tsv", sep="\t", index=False)
    rows = []
    for fold in (0, 1):
        for k in range(3):
            a, b = 6 * fold + 2 * k, 6 * fold + 2 * k + 1
            rows.append({"orthogroup": f"OG{a}", "species_a": "sp1", "gene_a": f"g{a}",
                         "species_b": "sp2", "gene_b": f"g{b}", "d": 0.5, "fold": fold,
                         "set": "test"})
        rows.append({"orthogroup": "OGx", "species_a": "sp1", "gene_a": "g0", "species_b": "sp2",
                     "gene_b": "g1", "d": 0.1, "fold": fold, "set": "train"})
    pd.DataFrame(rows).to_csv(folder / "splits.tsv", sep="\t", index=False)


# ----------------------------------------------------------------------------------------------
# Motif discovery (workflow rule discover_motifs)
# ----------------------------------------------------------------------------------------------
def recovered_motifs(folder: Path, grammar, processes, max_q: float = 0.05,
                     min_fraction: float = 0.7) -> set[str]:
    """The planted motifs that one ``results/motifs/{assay}/{model}`` folder recovers, checked
    from its raw tables (matches.tsv, patterns.tsv, seqlets.tsv) rather than taken from
    recovery.tsv, which must agree: a pattern whose best TOMTOM match is the motif at
    ``q < max_q``, with the motif's sign, and ``min_fraction`` of its seqlets centred in the
    motif's planted region."""
    import pandas as pd

    from plantt.attribution import grammar_window_regions

    matches = pd.read_csv(folder / "matches.tsv", sep="\t")
    patterns = pd.read_csv(folder / "patterns.tsv", sep="\t").set_index("pattern")
    seqlets = pd.read_csv(folder / "seqlets.tsv", sep="\t")
    regions = {name: (lo, hi) for name, lo, hi in grammar_window_regions(grammar, processes)}
    effects = {m.name: m.effect_log2 for p in grammar.processes for m in p.motifs}
    best = matches.sort_values("q_value", kind="stable").drop_duplicates("pattern")
    found = set()
    for record in best.itertuples(index=False):
        if record.q_value >= max_q or record.motif not in regions:
            continue
        lo, hi = regions[record.motif]
        mine = seqlets[seqlets["pattern"] == record.pattern]
        centre = (mine["start"] + mine["end"]) / 2
        inside = ((centre >= lo) & (centre < hi)).mean()
        sign = 1 if effects[record.motif] > 0 else -1
        if patterns.loc[record.pattern, "sign"] == sign and inside >= min_fraction:
            found.add(record.motif)
    recovery = pd.read_csv(folder / "recovery.tsv", sep="\t")
    assert set(recovery.loc[recovery["recovered"], "motif"]) == found, recovery
    assert list(recovery["motif"]) == list(regions)
    return found
