"""Options of the ``plantt`` commands that train, run or explain models, without importing them.

``plantt train --help`` used to import PyTorch, captum and scikit-learn (3-4 s) to print a page of
options; these parsers import only :mod:`argparse`, and each command's code is imported when the
command runs (:func:`_deferred`). The help texts are written for the command line; the modules'
docstrings remain the reference for the Python API. A few choice lists and defaults are repeated
here rather than imported with their heavy modules; ``tests/test_cli.py`` checks that they agree.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

# mirrors of the modules' own values (tests/test_cli.py compares them)
LAYOUT_DEFAULTS = {"upstream": 1000, "gene_part": 500, "downstream": 1000, "mask": 3}
FIT_TASKS = ("single", "pairs")  # plantt.tables.TASKS
EDIT_DIRECTIONS = ("down", "up")  # plantt.editing.DIRECTIONS
VCF_FILTER_MODES = ("pass", "all")  # plantt.variants.FILTER_MODES
DEFAULT_MAX_REF_MISMATCH = 0.05  # plantt.variants.DEFAULT_MAX_REF_MISMATCH
LEGACY_SEQ_LEN = 3000  # plantt.legacy.LEGACY_SEQ_LEN: 1500 promoter + 1500 terminator bases

_FORMAT = argparse.RawDescriptionHelpFormatter

DESCRIPTIONS = {
    "train": """\
Train one model on one cross-validation fold of an assay and predict that fold's test pairs.
Models: plantt (the two-tower CNN), washburn (the Washburn et al. 2019 classifier),
plantt_shuffled (PlanTT trained on permuted labels, a control), kmer (a ridge regression on k-mer
counts), pwm (a ridge regression on the occupancy of known plant TF matrices, JASPAR) and
plantt_from_<assay> (PlanTT started from --init-weights). Writes weights.pt, model.json,
history.tsv and predictions.tsv into --out-dir (kmer: kmer_model.npz, kmer_model.json and
selection.tsv instead of the first three; pwm: pwm_model.npz, pwm_model.json, selection.tsv).""",
    "evaluate": """\
Metrics of every fold and model from predictions.tsv files (Spearman, Pearson, R², MSE for
regression models; balanced accuracy, F1 and AUROC for all), and their mean ± SD across folds.""",
    "predict": """\
Predict with a trained model or seed ensemble: expression differences of pairs (--pairs, or
--fasta-a with --fasta-b), or the expression score of single sequences (--sequences).""",
    "fit": """\
Train and cross-validate seed ensembles on a table of your own sequences: single sequences with
an expression value, or pairs with a measured difference. Folds keep groups together; a k-mer
ridge baseline and a shuffled-label control are fitted on the same folds (metrics.tsv).""",
    "attribute": """\
DeepLift attributions of a PlanTT model's expression score for each sequence of a FASTA, against
the all-zero reference or, with --reference, against each sequence's paired ortholog.""",
    "motifs": """\
De novo motifs of the fold models: DeepLift contributions of test genes of every fold against
dinucleotide-shuffled references, seqlets and patterns by TF-MoDISco, patterns matched to known
motifs (a MEME file, a JASPAR collection, or the simulator's grammar) by TOMTOM. Writes
patterns.tsv, matches.tsv, database_matches.tsv, logos and modisco.h5 into --out-dir.""",
    "ism": """\
In-silico mutagenesis: the predicted effect of every single-base substitution of each sequence,
as a difference of scores and as a percent change (the paper's Equation 3). Writes ism.tsv,
ism.npz and two heatmaps into --out-dir. PlanTT-CNN and published towers take the sliced path
(only the receptive field of each change is recomputed).""",
    "edit": """\
Greedy single-base edits that raise (--direction up) or lower the predicted expression of each
sequence, at most --budget of them, each chosen as the best substitution given the ones before.""",
    "variants": """\
Predicted expression effect of the variants of a VCF: each ALT allele is placed in the window of
every gene whose window it touches (indels shift the window's parts as the genome would), and the
window is scored against the reference window. FILTER is honoured (--filter); an indexed bgzip VCF
is read only where the windows are.""",
    "legacy-input": f"""\
Build the {LEGACY_SEQ_LEN}-base inputs of the published PlanTT-CNN (1500 promoter bases followed by
1500 terminator bases) from promoter and terminator FASTAs; with --model, also score them.""",
    "import-weights": """\
Turn the released planttcnn.pt of the PlanTT repository (CC BY-NC 4.0, fetch it yourself) into a
plantt model directory that predict, ism, edit and variants read. By default the embedding is
negated so that a higher score means higher expression (--keep-rank-sign keeps the published
sign).""",
}


def _deferred(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """A command's entry point, imported only when the command runs."""

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), function)(args)

    run.__qualname__ = f"{module}.{function}"
    return run


def _parser(subparsers: argparse._SubParsersAction, name: str, help_text: str
            ) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=help_text, description=DESCRIPTIONS[name],
                                 formatter_class=_FORMAT)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:1, mps (default: the best available)")


def add_layout_arguments(parser: argparse.ArgumentParser) -> None:
    d = LAYOUT_DEFAULTS
    parser.add_argument("--upstream", type=int, default=d["upstream"],
                        help="window layout: bp before the TSS (default %(default)s)")
    parser.add_argument("--gene-part", type=int, default=d["gene_part"],
                        help="window layout: bp of each gene part (default %(default)s)")
    parser.add_argument("--downstream", type=int, default=d["downstream"],
                        help="window layout: bp after the TTS (default %(default)s)")
    parser.add_argument("--mask", type=int, default=d["mask"],
                        help="window layout: masked bases at the TSS and TTS (default %(default)s)")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    _register_training(subparsers)
    _register_prediction(subparsers)
    _register_interpretation(subparsers)
    _register_published(subparsers)


def _register_training(subparsers: argparse._SubParsersAction) -> None:
    train = _parser(subparsers, "train",
                    "train one cross-validation fold and predict its test pairs")
    train.add_argument("--windows", required=True, help="encoded windows (.npy)")
    train.add_argument("--genes", required=True, help="genes table of the encoded windows")
    train.add_argument("--splits", required=True, help="splits table of one assay")
    train.add_argument("--fold", required=True, type=int, help="the fold to train (0-based)")
    train.add_argument("--assay", required=True, help="assay name, recorded with the model")
    train.add_argument("--architecture", dest="model", default="plantt",
                       help="what to train: plantt, washburn, plantt_shuffled, kmer, pwm or "
                            "plantt_from_<assay> (default plantt)")
    train.add_argument("--out-dir", dest="out", required=True, help="model directory to write")
    train.add_argument("--config", help="YAML of training settings (TrainSettings fields; for "
                                        "--architecture kmer, KmerSettings fields: ks, block_length, "
                                        "alphas; for pwm, PwmSettings fields: release, collection, "
                                        "tax_group, motif_file, block_lengths, alphas, feature, "
                                        "threshold, temperature)")
    train.add_argument("--set", help="JSON object of settings overriding --config")
    train.add_argument("--init-weights", help="weights.pt to start from (sequential training)")
    train.add_argument("--init-splits", help="the splits TSV the --init-weights model was trained "
                                             "on: refused if its fold saw this fold's test "
                                             "orthogroups")
    train.add_argument("--matrix-scan", help="every window's scan of the known matrices, made "
                                             "once (plantt.pwm.write_matrix_scan; the workflow's "
                                             "rule scan_matrices) with the pwm baseline's "
                                             "settings, or for PlanTT's seed_stem_matrices with "
                                             "plantt.train.seeding_scan_settings: read instead "
                                             "of scanning again")
    train.set_defaults(func=_deferred("plantt.cv", "run_train"))

    evaluate = _parser(subparsers, "evaluate",
                       "metrics per fold and mean ± SD across folds from predictions tables")
    evaluate.add_argument("--predictions", nargs="+", required=True,
                          help="predictions.tsv of every fold and model")
    evaluate.add_argument("--truth", help="the simulator's truth.tsv (a demo): the true grammar "
                                          "difference of each test pair joins as model grammar, "
                                          "the ceiling")
    evaluate.add_argument("--out-dir", dest="out", required=True, help="directory for the tables")
    evaluate.set_defaults(func=_deferred("plantt.cv", "run_evaluate"))

    fit = _parser(subparsers, "fit",
                  "train and cross-validate models on a table of your own sequences")
    fit.add_argument("--table", required=True,
                     help="TSV/CSV (gzip or not) of sequences, or a FASTA with --values")
    fit.add_argument("--task", required=True, choices=FIT_TASKS,
                     help="single: sequence, expression[, group, id]; pairs: sequence_a, "
                          "sequence_b, target[, group, id]")
    fit.add_argument("--values", help="with a FASTA --table: id, expression[, group] (single) or "
                                      "id_a, id_b, target[, group, id] (pairs)")
    fit.add_argument("--out-dir", dest="out", required=True, help="output directory")
    fit.add_argument("--config", help="YAML of fit settings (config/README.md, 'Bring your own "
                                      "sequences')")
    fit.add_argument("--set", help="JSON object of settings overriding --config, e.g. "
                                   "'{\"folds\": 3, \"train\": {\"max_epochs\": 5}}'")
    fit.add_argument("--eval-pairs", help="a pairs table of measured differences to evaluate the "
                                          "trained models on")
    add_device_argument(fit)
    fit.set_defaults(func=_deferred("plantt.fit", "run_command"))


def _register_prediction(subparsers: argparse._SubParsersAction) -> None:
    predict = _parser(subparsers, "predict",
                      "predict expression differences of pairs, or expression of sequences")
    predict.add_argument("--model", required=True, metavar="MODEL_DIR",
                         help="model directory (weights.pt + model.json) or seed ensemble "
                              "(ensemble.json)")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", metavar="TABLE",
                        help="TSV/CSV with columns sequence_a, sequence_b (other columns carried)")
    source.add_argument("--fasta-a", metavar="FASTA", help="sequences of gene a (paired by order)")
    source.add_argument("--sequences", metavar="FASTA_OR_TABLE",
                        help="single sequences: a FASTA, or a TSV/CSV with a sequence column")
    predict.add_argument("--fasta-b", metavar="FASTA", help="sequences of gene b (with --fasta-a)")
    predict.add_argument("--out", required=True, metavar="TSV", help="output table")
    predict.add_argument("--batch-size", type=int, default=64, help="sequences per forward pass")
    add_device_argument(predict)
    predict.set_defaults(func=_deferred("plantt.predict", "run_checked"))

    variants = _parser(subparsers, "variants",
                       "predicted expression effect of VCF variants through gene windows")
    variants.add_argument("--model", required=True, help="PlanTT model directory")
    variants.add_argument("--vcf", required=True, help="VCF (plain, gzip or bgzip)")
    variants.add_argument("--fasta", required=True, help="genome FASTA the VCF refers to")
    variants.add_argument("--annotation", required=True, help="GFF3 or GTF of the genes")
    variants.add_argument("--out", required=True, help="TSV: one row per ALT allele and gene")
    variants.add_argument("--gene-table", help="TSV: per gene, the sum of effects and the "
                                               "strongest variant")
    variants.add_argument("--batch-size", type=int, default=None,
                          help="windows per tower pass (default: 128 on a CPU, 1024 on a GPU, "
                               "where 64 genes' reference windows are also recorded per pass)")
    variants.add_argument("--max-ref-mismatch", type=_share, default=DEFAULT_MAX_REF_MISMATCH,
                          metavar="SHARE",
                          help="stop with an error when REF differs from the FASTA in more than "
                               "this share of the VCF's records (a VCF of another genome or "
                               "assembly version; default %(default)s); below it, a warning and "
                               "rows of status ref_mismatch")
    variants.add_argument("--filter", choices=VCF_FILTER_MODES, default="pass",
                          help="pass: score only records whose FILTER is PASS or '.' (the others "
                               "get status filtered); all: score every record")
    variants.add_argument("--no-index", action="store_true",
                          help="read the whole VCF even when it has a tabix index (by default an "
                               "indexed bgzip VCF is read only where the gene windows are)")
    add_layout_arguments(variants)
    add_device_argument(variants)
    variants.set_defaults(func=_deferred("plantt.variants", "run"))


def _register_interpretation(subparsers: argparse._SubParsersAction) -> None:
    attribute = _parser(subparsers, "attribute",
                        "DeepLift attributions of PlanTT's expression estimate")
    attribute.add_argument("--model", required=True, help="PlanTT model directory")
    attribute.add_argument("--fasta", required=True,
                           help="sequences of exactly the model's length")
    attribute.add_argument("--reference", help="FASTA of the paired orthologs (same order): "
                                               "attribute f(a, b) to each with the other as the "
                                               "reference instead of the all-zero reference")
    attribute.add_argument("--out", required=True, type=Path,
                           help=".npz of the attributions (n x 4 x L) and deviations")
    attribute.add_argument("--profile", help="TSV of the mean |attribution| per position")
    attribute.add_argument("--batch-size", type=int, default=64,
                           help="sequences per DeepLift pass")
    add_device_argument(attribute)
    attribute.set_defaults(func=_deferred("plantt.attribution", "run"))

    motifs = _parser(subparsers, "motifs",
                     "TF-MoDISco patterns of the fold models, matched to known motifs")
    motifs.add_argument("--models", required=True,
                        help="folder of the fold models (fold_0, fold_1, ...), e.g. "
                             "results/models/rnaseq3p/plantt")
    motifs.add_argument("--codes", required=True, help="encoded windows (.npy)")
    motifs.add_argument("--genes", required=True, help="their gene table (.genes.tsv)")
    motifs.add_argument("--splits", required=True, help="plantt splits table of the assay")
    motifs.add_argument("--out-dir", dest="out", required=True, help="output folder")
    source = motifs.add_mutually_exclusive_group()
    source.add_argument("--meme", help="known motifs (MEME format: JASPAR, PlantTFDB, ...)")
    source.add_argument("--grammar", help="a simulator grammar YAML whose motifs are the known "
                                          "ones (default without --meme: the packaged grammar); "
                                          "also writes recovery.tsv, per planted motif")
    source.add_argument("--no-match", action="store_true",
                        help="de novo patterns only: no known motifs to compare with")
    motifs.add_argument("--jaspar", nargs=3, metavar=("RELEASE", "COLLECTION", "TAX_GROUP"),
                        help="also match patterns to this JASPAR collection, bundled with "
                             "pyjaspar (e.g. JASPAR2024 CORE plants): database_matches.tsv and "
                             "the pattern table's database_match name the factors; without "
                             "--meme or --grammar its matrices are the known motifs")
    motifs.add_argument("--processes", nargs="+", help="with --grammar: only these processes' "
                                                       "motifs (e.g. transcription)")
    motifs.add_argument("--folds", type=int, nargs="+", help="only these folds")
    motifs.add_argument("--max-genes-per-fold", type=int, default=100,
                        help="test genes per fold, drawn with --seed (0: all)")
    motifs.add_argument("--references", type=int, default=5,
                        help="dinucleotide shuffles per sequence")
    motifs.add_argument("--null-genes-per-fold", type=int, default=20,
                        help="test genes per fold whose dinucleotide shuffles make the null of "
                             "seqlet calling (0: modisco-lite's own Laplace null)")
    motifs.add_argument("--seqlet-fdr", type=float, default=0.2,
                        help="target false discovery rate of seqlet windows")
    motifs.add_argument("--max-seqlets", type=int, default=2000,
                        help="TF-MoDISco's max_seqlets_per_metacluster")
    motifs.add_argument("--leiden-runs", type=int, default=2,
                        help="TF-MoDISco Leiden clustering runs (more: steadier patterns, slower)")
    motifs.add_argument("--max-q", type=float, default=0.05, help="TOMTOM q-value threshold")
    motifs.add_argument("--decoys", type=int, default=0,
                        help="column-shuffled decoys per known motif added to TOMTOM's targets "
                             "(for small motif files such as the demo grammar's)")
    motifs.add_argument("--min-fraction-in-region", type=float, default=0.7,
                        help="with a grammar: share of a pattern's seqlets that must lie in the "
                             "planted motif's region for it to count as recovered")
    motifs.add_argument("--seed", type=int, default=0,
                        help="seed of the gene draw, the shuffled references and the jitter")
    motifs.add_argument("--batch-size", type=int, default=64, help="sequences per DeepLift pass")
    motifs.add_argument("--title", help="title of patterns.png")
    add_layout_arguments(motifs)
    motifs.set_defaults(func=_deferred("plantt.motifs", "run"))

    ism = _parser(subparsers, "ism",
                  "in-silico mutagenesis: predicted effect of every single-base substitution")
    ism.add_argument("--model", required=True,
                     help="PlanTT or single-sequence model directory, or a seed ensemble")
    ism.add_argument("--fasta", required=True,
                     help="sequences (windows) of exactly the model's length (plantt fit models: "
                          "any length, padded or trimmed as at training)")
    ism.add_argument("--out-dir", dest="out", required=True,
                     help="directory for ism.tsv, ism.npz, heatmap.png and zoom.png")
    ism.add_argument("--batch-size", type=int, default=256, help="mutants per tower pass")
    ism.add_argument("--genes", nargs="+", help="ids of the FASTA records to score (default: all)")
    ism.add_argument("--flank", type=int, default=None,
                     help="only score positions within this many bp of the TSS and TTS (of the "
                          "published model imported by import-weights: of the promoter/"
                          "terminator junction at 1500; default: every position)")
    ism.add_argument("--include-n", action="store_true",
                     help="also score the 4 bases at N positions (skipped by default)")
    ism.add_argument("--float64", action="store_true",
                     help="score in float64 (2-4x slower on a CPU): float32 rounds a deep tower's "
                          "sums to ~1e-3, which matters only for effects that small")
    add_layout_arguments(ism)
    add_device_argument(ism)
    ism.set_defaults(func=_deferred("plantt.ism", "run"))

    edit = _parser(subparsers, "edit",
                   "hill-climbing single-base edits that raise or lower predicted expression")
    edit.add_argument("--model", required=True,
                      help="PlanTT or single-sequence model directory, or a seed ensemble")
    edit.add_argument("--fasta", required=True,
                      help="sequence(s) of exactly the model's length (plantt fit models: any "
                           "length, padded or trimmed as at training); each record is edited")
    edit.add_argument("--budget", required=True, type=int, help="maximum number of edits")
    edit.add_argument("--direction", choices=EDIT_DIRECTIONS, default="up",
                      help="raise (up) or lower (down) the predicted expression")
    edit.add_argument("--protect", nargs="+", metavar="START-END",
                      help="0-based half-open window ranges never edited (N positions, e.g. the "
                           "masked TSS/TTS bases, are never edited anyway)")
    edit.add_argument("--include-n", action="store_true", help="allow editing N positions")
    edit.add_argument("--genes", nargs="+", help="ids of the FASTA records to edit")
    edit.add_argument("--batch-size", type=int, default=256, help="mutants per tower pass")
    edit.add_argument("--out", required=True, help="TSV of the ordered edits")
    edit.add_argument("--edited-fasta", type=Path, help="also write the edited sequence(s)")
    add_device_argument(edit)
    edit.set_defaults(func=_deferred("plantt.editing", "run"))


def add_legacy_input_arguments(parser: argparse.ArgumentParser) -> None:
    """``--promoter``/``--terminator`` FASTAs or ``--sequences`` (3000-base FASTA)."""
    parser.add_argument("--promoter", type=Path, help="FASTA of 1500-base promoters")
    parser.add_argument("--terminator", type=Path,
                        help="FASTA of 1500-base terminators (paired by order with --promoter)")
    parser.add_argument("--sequences", type=Path,
                        help=f"FASTA of {LEGACY_SEQ_LEN}-base inputs (promoter + terminator)")


def _register_published(subparsers: argparse._SubParsersAction) -> None:
    inputs = _parser(subparsers, "legacy-input",
                     f"build {LEGACY_SEQ_LEN}-base inputs (1500 promoter + 1500 terminator) for "
                     "the imported published model; optionally score them")
    add_legacy_input_arguments(inputs)
    inputs.add_argument("--out", required=True, type=Path, help="FASTA of the built inputs")
    inputs.add_argument("--model", type=Path, help="also print sum(z) of each input with this "
                                                   "model directory")
    inputs.add_argument("--scores", type=Path, help="TSV of the scores (with --model)")
    inputs.set_defaults(func=_deferred("plantt.legacy", "run_legacy_input"))

    weights = _parser(subparsers, "import-weights", "turn the published PlanTT-CNN weights "
                                                    "(planttcnn.pt) into a plantt model directory")
    weights.add_argument("weights", type=Path,
                         help="planttcnn.pt from the PlanTT repository (a PyTorch state_dict)")
    weights.add_argument("--out-dir", dest="out", required=True, type=Path,
                         help="model directory to write")
    weights.add_argument("--keep-rank-sign", action="store_true",
                         help="keep the published sign (higher = lower expression) instead of "
                              "negating the embedding to the house convention")
    weights.set_defaults(func=_deferred("plantt.legacy", "run_import_weights"))
