# Shared helpers: configuration and sheet validation (before any job runs), wildcard constraints,
# input functions. Everything here runs when the workflow is parsed.

import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# Which plantt package the workflow and its jobs import. Run from a clone (also as a module given
# by a local path), it is the clone's src/: first on this process's path and on the PYTHONPATH of
# every job (script rules run in their own Python processes, in --use-conda environments too), so
# that the rules and the package always come from the same checkout, installed or not. Used as a
# module fetched from a git host (github(...), gitfile(...)) there is no local src/, and the jobs
# import the installed package: in Snakemake's environment, or, with --use-conda, the one that
# envs/*.post-deploy.sh installs from the module's own repository and tag (PLANTT_PACKAGE: plantt.rule_script).
_SRC = Path(str(workflow.current_basedir)).parents[1] / "src"
if _SRC.is_dir():
    sys.path[:] = [_SRC.as_posix()] + [p for p in sys.path if p != _SRC.as_posix()]

from plantt.rule_script import export_package_path, export_package_source

if _SRC.is_dir():
    export_package_path(_SRC)
else:
    export_package_source(workflow.current_basedir)

from plantt.sheets import (
    ASSAYS,
    PAIRED_ASSAYS,
    SheetError,
    load_sample_sheet,
    load_species_sheet,
)
from plantt import resources as plantt_resources
from plantt.genome import check_existing_index, read_fai
from plantt.io import InputError
from plantt.published import PublishedSettings
from plantt.recipes import model_kind, train_settings
from plantt.published import coerce_config as coerce_published_config

# `snakemake --config published='{...}'` hands nested numbers over as text ("1", "null"): convert
# them before the schema checks the section.
if config.get("published") is not None:
    config["published"] = coerce_published_config(config["published"])


def _check_config_keys():
    """Misspelled keys fail with the closest known one named (the schema alone would only say
    "additional properties are not allowed"), and text given on the command line for a number,
    boolean or null is read as one (plantt.config)."""
    import yaml

    from plantt.config import coerce_to_schema, unknown_keys

    # source_path: this file's folder, also when the workflow is used as a module from elsewhere
    with open(workflow.source_path("../schemas/config.schema.yaml")) as handle:
        schema = yaml.safe_load(handle)
    config.update(coerce_to_schema(dict(config), schema))
    unknown = unknown_keys(config, schema)
    if unknown:
        raise WorkflowError(
            "configuration: "
            + "; ".join(str(u) for u in unknown)
            + " (every key is documented in config/README.md)"
        )


_check_config_keys()
validate(config, workflow.source_path("../schemas/config.schema.yaml"))

DEMO_DIR = "resources/demo"


def demo_generated_files():
    """Files that simulate_demo creates, exempt from the check that sheet files exist."""
    if not config["demo"]:
        return []
    return [str(p) for p in _demo_paths()]


def _demo_paths():
    import pandas as pd

    species = pd.read_csv(
        config["species_sheet"], sep="\t", dtype=str, keep_default_na=False
    )
    samples = pd.read_csv(
        config["sample_sheet"], sep="\t", dtype=str, keep_default_na=False
    )
    paths = []
    for column in ("genome", "annotation"):
        paths += [p for p in species.get(column, []) if p]
    for column in ("fq1", "fq2"):
        paths += [p for p in samples.get(column, []) if p]
    return [p for p in paths if Path(p).is_relative_to(DEMO_DIR)]


try:
    species_sheet = load_species_sheet(
        config["species_sheet"],
        workflow.source_path("../schemas/species.schema.yaml"),
        generated=demo_generated_files(),
    )
    samples = load_sample_sheet(
        config["sample_sheet"],
        workflow.source_path("../schemas/samples.schema.yaml"),
        species=species_sheet.index,
        generated=demo_generated_files(),
    )
except SheetError as err:
    raise WorkflowError(f"Invalid sheet: {err}") from None

# A chromosome longer than a BAM can hold stops the run now where the genome's .fai says so, and
# otherwise in rule genome_fai, before STAR (plantt.genome).
try:
    for _genome in species_sheet["genome"]:
        check_existing_index(_genome)
except InputError as err:
    raise WorkflowError(f"Invalid genome: {err}") from None

SPECIES = list(species_sheet.index)
SAMPLES = list(samples.index)
SINGLE_END = [s for s in SAMPLES if samples.loc[s, "assay"] not in PAIRED_ASSAYS]
PAIRED_END = [s for s in SAMPLES if samples.loc[s, "assay"] in PAIRED_ASSAYS]
# (species, assay) combinations that have samples
SPECIES_ASSAYS = sorted(
    {(r.species, r.assay) for r in samples.itertuples()},
    key=lambda sa: (SPECIES.index(sa[0]), ASSAYS.index(sa[1])),
)


RNASEQ3P_SAMPLES = [s for s in SAMPLES if samples.loc[s, "assay"] == "rnaseq3p"]
# (species, assay) with at least two replicates: those have a replicate concordance
REPLICATED_SPECIES_ASSAYS = [
    (sp, assay)
    for sp, assay in SPECIES_ASSAYS
    if ((samples["species"] == sp) & (samples["assay"] == assay)).sum() >= 2
]


def _alternation(names):
    return "|".join(map(re.escape, names)) if names else "__none__"


# ---- input functions -------------------------------------------------------------------------


def get_raw_fastq(wildcards):
    row = samples.loc[wildcards.sample]
    if row["assay"] in PAIRED_ASSAYS:
        return {"fq1": row["fq1"], "fq2": row["fq2"]}
    return {"fq1": row["fq1"]}


def get_trimmed_fastq(wildcards):
    if samples.loc[wildcards.sample, "assay"] in PAIRED_ASSAYS:
        return [
            f"results/trimmed/{wildcards.sample}_R1.fastq.gz",
            f"results/trimmed/{wildcards.sample}_R2.fastq.gz",
        ]
    return [f"results/trimmed/{wildcards.sample}.fastq.gz"]


def get_species_of_sample(wildcards):
    return samples.loc[wildcards.sample, "species"]


def get_assay_of_sample(wildcards):
    return samples.loc[wildcards.sample, "assay"]


def is_compressed_genome(species):
    return str(species_sheet.loc[species, "genome"]).endswith(".gz")


def get_genome(wildcards):
    """The plain genome FASTA of a species: a gzip or bgzip genome of the sheet is decompressed
    once into resources/genomes/ (rule decompress_genome), which STAR and the windows read.
    """
    species = getattr(wildcards, "species", None) or get_species_of_sample(wildcards)
    if is_compressed_genome(species):
        return f"resources/genomes/{species}.fa"
    return species_sheet.loc[species, "genome"]


def get_compressed_genome(wildcards):
    return species_sheet.loc[wildcards.species, "genome"]


def get_annotation(wildcards):
    species = getattr(wildcards, "species", None) or get_species_of_sample(wildcards)
    return species_sheet.loc[species, "annotation"]


def get_star_index(wildcards):
    return f"results/star/index/{get_species_of_sample(wildcards)}"


def get_trim_options(wildcards):
    return config["trim"][get_assay_of_sample(wildcards)]


def get_star_align_extra(wildcards):
    return config["star"]["align_extra"][get_assay_of_sample(wildcards)]


def get_star_genome_args(wildcards, input):
    """--genomeSAindexNbases, --genomeChrBinNbits, --genomeSAsparseD from the genome's .fai."""
    return plantt_resources.star_genome_options(
        read_fai(input.fai), config["star"]["index_extra"]
    )


def get_star_annotation_args(wildcards, input):
    return star_annotation_args(input.annotation)


def star_annotation_args(annotation):
    """STAR reads GFF3 when told that an exon's transcript is named by its Parent attribute."""
    name = str(annotation).lower()
    # STAR cannot read gzipped annotations: hand it a decompressing process substitution (bash).
    source = f"<(gunzip -c {annotation})" if name.endswith(".gz") else str(annotation)
    if name.removesuffix(".gz").endswith(".gtf"):
        return f"--sjdbGTFfile {source}"
    return f"--sjdbGTFfile {source} --sjdbGTFtagExonParentTranscript Parent"


# ---- resources: what a job asks a cluster for, from the sizes of its inputs -------------------
# mem_mb in MB, runtime in minutes (formulas in src/plantt/resources.py); `attempt` grows both on
# a retry (profiles/slurm: retries: 2). Where an input does not exist yet (a dry run of the demo,
# whose genomes are generated) the smallest value is given: Snakemake evaluates resources again
# just before it submits the job.


def _genome_length(species):
    """Bases of a species' genome: from its .fai (rule genome_fai), else estimated."""
    fai = Path(f"results/genome/{species}.fai")
    if fai.is_file():
        return sum(read_fai(fai).values())
    original = species_sheet.loc[species, "genome"]
    plain = (
        f"resources/genomes/{species}.fa" if is_compressed_genome(species) else original
    )
    return plantt_resources.genome_length(plain, compressed=original)


def star_sa_sparsity(species):
    """--genomeSAsparseD: star.index_extra's, else from the genome size (plantt.resources)."""
    return plantt_resources.star_sa_sparsity(
        _genome_length(species), config["star"]["index_extra"]
    )


def star_index_mem_mb(wildcards, attempt):
    return plantt_resources.star_index_mem_mb(
        _genome_length(wildcards.species), star_sa_sparsity(wildcards.species), attempt
    )


def get_star_ram_limit_args(wildcards, resources):
    """--limitGenomeGenerateRAM: what the job was given (STAR's own default, 31 GB, stops the
    index of genomes above about 3 Gb), unless star.index_extra sets it."""
    if "--limitGenomeGenerateRAM" in config["star"]["index_extra"]:
        return ""
    return f"--limitGenomeGenerateRAM {int(resources.mem_mb) * plantt_resources.MB}"


def star_align_mem_mb(wildcards, attempt):
    species = get_species_of_sample(wildcards)
    return plantt_resources.star_align_mem_mb(
        _genome_length(species), star_sa_sparsity(species), attempt
    )


def star_align_runtime(wildcards, input, attempt):
    return plantt_resources.star_align_runtime(
        plantt_resources.files_bytes(input.fastq), attempt
    )


def trim_runtime(wildcards, input, attempt):
    return plantt_resources.trim_runtime(plantt_resources.files_bytes(input), attempt)


def chunked_mem_mb(wildcards, attempt):
    return plantt_resources.chunked_mem_mb(config["chunk_size"], attempt)


def encode_mem_mb(wildcards, input, attempt):
    """The windows of every species at once: the text and its uint8 codes, a few times over."""
    return plantt_resources.windows_mem_mb(plantt_resources.files_bytes(input), attempt)


def bam_runtime(wildcards, input, attempt):
    bams = [path for path in input if str(path).endswith(".bam")]
    return plantt_resources.bam_runtime(plantt_resources.files_bytes(bams), 1, attempt)


def get_count_params(wildcards):
    assay = getattr(wildcards, "assay", None) or get_assay_of_sample(wildcards)
    return {
        "assay": assay,
        "min_mapq": config["count"]["min_mapq"],
        **config["count"][assay],
    }


def get_sample_counts(wildcards):
    chosen = samples[
        (samples["species"] == wildcards.species)
        & (samples["assay"] == wildcards.assay)
    ]
    return {
        f"rep_{row.replicate}": f"results/counts/{row.sample}.tsv"
        for row in chosen.itertuples()
    }


ASSAYS_PRESENT = [a for a in ASSAYS if any(assay == a for _, assay in SPECIES_ASSAYS)]


def get_expression_tables_of_species(wildcards):
    return {
        assay: f"results/expression/{wildcards.species}.{assay}.tsv"
        for sp, assay in SPECIES_ASSAYS
        if sp == wildcards.species
    }


def multiqc_custom_content():
    """The workflow's own sections of the MultiQC page (rules multiqc_read_assignment,
    multiqc_replicate_concordance): concordance only where a species and assay has replicates.
    """
    content = ["results/qc/multiqc/read_assignment_mqc.yaml"]
    if REPLICATED_SPECIES_ASSAYS:
        content.append("results/qc/multiqc/replicate_concordance_mqc.yaml")
    return content


def qc_outputs():
    outputs = [
        "results/qc/multiqc_report.html",
        "results/qc/multiqc_report_data",
        "results/qc/counting_summary.png",
    ]
    outputs += [
        f"results/qc/replicates/{sp}.{a}.png" for sp, a in REPLICATED_SPECIES_ASSAYS
    ]
    if REPLICATED_SPECIES_ASSAYS:
        outputs.append("results/qc/replicate_concordance.tsv")
    outputs += [f"results/qc/samples/{sp}.pca.png" for sp in SPECIES]
    return outputs


def get_expression_tables_of_assay(wildcards):
    return [
        f"results/expression/{sp}.{assay}.tsv"
        for sp, assay in SPECIES_ASSAYS
        if assay == wildcards.assay
    ]


def get_ortholog_id_args(wildcards):
    settings = config["orthologs"]
    if settings.get("id_regex"):
        return ["--id-regex", settings["id_regex"]]
    return ["--id-suffix-regex", settings.get("id_suffix_regex") or ""]


# ---- training ----

# Models trained with PyTorch (rule train_fold); the ridge baselines `kmer` and `pwm` have their own
# rules (train_kmer, train_pwm).
TORCH_MODEL_PATTERN = r"plantt|washburn|plantt_shuffled|plantt_from_[A-Za-z0-9]+"


def train_models(assay):
    """Model names trained for an assay: the configured ones, plus plantt_from_<assay> variants."""
    models = list(config["train"]["models"])
    source = config["train"]["pretrain"].get(assay)
    if source:
        models.append(f"plantt_from_{source}")
    return models


def get_shared_fold_labels(wildcards):
    """The other assays' label tables, whose orthogroups join this assay's fold assignment."""
    return [f"results/labels/{a}.tsv" for a in ASSAYS_PRESENT if a != wildcards.assay]


def get_init_weights(wildcards):
    if wildcards.model.startswith("plantt_from_"):
        source = wildcards.model.removeprefix("plantt_from_")
        return {
            "init": f"results/models/{source}/plantt/fold_{wildcards.fold}/weights.pt",
            # checked: the source fold never trained on this fold's test orthogroups
            "init_splits": f"results/splits/{source}.tsv",
        }
    return {}


def get_model_threads(wildcards):
    # Threads of the jobs that train or interpret a model. The demo's small models gain little
    # from a second thread: on 2 cores two trainings side by side finish sooner than one at a
    # time, and a 2-thread interpretation job could only start with both cores free, which never
    # happens while 1-thread trainings wait (measured: every interpretation and motif job then
    # ran at the end, one at a time, 4 of the demo's 13 minutes). Profiles override this
    # (`set-threads`).
    return 1 if config["demo"] else 2


def get_train_settings(wildcards, resources, threads):
    train = config["train"]
    # The shuffled control and sequential models are PlanTT models: they get PlanTT's settings,
    # so the control is trained exactly as the model it controls (plantt.recipes).
    settings = train_settings(train, model_kind(wildcards.model))
    settings["num_threads"] = threads
    # A GPU job asks for one with `gpu` (the rule's own gpu=1) or, on some clusters, with a generic
    # resource (profiles/slurm: gres="gpu:1" with gpu=0).
    gres = str(resources.get("gres", ""))
    settings["require_gpu"] = int(resources.get("gpu", 0)) > 0 or "gpu" in gres
    settings["allow_cpu_fallback"] = train["allow_cpu_fallback"]
    return settings


def get_kmer_settings(wildcards):
    """train.kmer (plantt.kmer.KmerSettings fields); absent: the defaults."""
    return dict(config["train"].get("kmer") or {})


def get_pwm_settings(wildcards):
    """train.pwm (plantt.pwm.PwmSettings fields); absent: the defaults."""
    return dict(config["train"].get("pwm") or {})


def get_pwm_motif_file(wildcards):
    """train.pwm.motif_file where set: the MEME file scanned instead of JASPAR is an input."""
    motif_file = (config["train"].get("pwm") or {}).get("motif_file")
    return {"motif_file": motif_file} if motif_file else {}


# The known matrices are scanned once per work directory (rule scan_matrices) for every fold job
# that fits on them: "pwm" with the pwm baseline's settings, "seeding" with those of the ridge that
# chooses the small_data recipe's primed detectors (seed_stem_matrices).
MATRIX_SCANS = ["pwm", "seeding"]
SEEDING_SCAN_KEYS = [
    "seed_stem_jaspar_release",
    "seed_stem_motif_file",
    "seed_stem_matrix_block_length",
    "seed_stem_matrix_threshold",
]


def get_scan_settings(wildcards):
    """pwm: train.pwm (PwmSettings fields); seeding: PlanTT's merged training settings, from
    which the script takes the seeding ridge's scan (plantt.train.seeding_scan_settings).
    """
    if wildcards.scan == "pwm":
        return dict(config["train"].get("pwm") or {})
    # only what the seeding scan depends on: another training setting changes no scan
    settings = train_settings(config["train"], "plantt")
    return {key: settings[key] for key in SEEDING_SCAN_KEYS if key in settings}


def get_scan_motif_file(wildcards):
    """The MEME file scanned instead of JASPAR's, where set, is an input."""
    if wildcards.scan == "pwm":
        return get_pwm_motif_file(wildcards)
    motif_file = train_settings(config["train"], "plantt").get("seed_stem_motif_file")
    return {"motif_file": motif_file} if motif_file else {}


def get_seeding_scan(wildcards):
    """The scan for a PlanTT model whose detectors start from known matrices (not one that starts
    from another assay's weights: it is not seeded)."""
    if wildcards.model.startswith("plantt_from_"):
        return {}
    settings = train_settings(config["train"], model_kind(wildcards.model))
    if not settings.get("seed_stem_matrices"):
        return {}
    return {"matrix_scan": "results/windows/matrix_scan.seeding.npy"}


def get_fold_predictions(wildcards):
    return [
        f"results/models/{wildcards.assay}/{model}/fold_{fold}/predictions.tsv"
        for model in train_models(wildcards.assay)
        for fold in range(config["splits"]["folds"])
    ]


def get_demo_truth(wildcards):
    """The simulator's truth table in the demo (the grammar's value of every gene), else none."""
    return [f"{DEMO_DIR}/truth.tsv"] if config["demo"] else []


def metrics_outputs():
    """Targets of `snakemake train_all`: every fold of every model, evaluated, and the paper's
    Table 2 for every assay with a pre-training assay."""
    return [
        f"results/metrics/{assay}/metrics_summary.tsv" for assay in ASSAYS_PRESENT
    ] + [
        f"results/metrics/{assay}/sequential_training.tsv"
        for assay in ASSAYS_PRESENT
        if config["train"]["pretrain"].get(assay)
        and "plantt" in config["train"]["models"]
    ]


def expression_tables():
    return [f"results/expression/{sp}.{assay}.tsv" for sp, assay in SPECIES_ASSAYS]


def get_demo_outdir(wildcards, output):
    return str(Path(output.truth).parent)


def preprocess_outputs():
    """Targets of `snakemake preprocess_all`: everything before training."""
    outputs = expression_tables()
    outputs += qc_outputs()
    outputs += ["results/windows/encoded.npy", "results/windows/encoded.genes.tsv"]
    outputs += [f"results/splits/{assay}.tsv" for assay in ASSAYS_PRESENT]
    outputs += [f"results/splits/{assay}.summary.png" for assay in ASSAYS_PRESENT]
    outputs += proseq_outputs()
    return outputs


def coverage_outputs():
    """Strand-specific 3'-RNA-seq bigWigs (tracks for a genome browser; nothing downstream reads
    them, so they are not part of preprocess_all)."""
    return [f"results/coverage/{s}.plus.bw" for s in RNASEQ3P_SAMPLES]


def learning_curve_assays():
    settings = config["learning_curve"]
    if not settings["enabled"]:
        return []
    chosen = settings["assays"] or ASSAYS_PRESENT
    absent = [a for a in chosen if a not in ASSAYS_PRESENT]
    if absent:
        raise WorkflowError(
            f"learning_curve.assays {absent}: the sample sheet has no samples of that assay"
        )
    beyond = [f for f in settings["folds"] if f >= config["splits"]["folds"]]
    if beyond:
        raise WorkflowError(
            f"learning_curve.folds {beyond}: splits.folds is {config['splits']['folds']} "
            "(folds are numbered from 0)"
        )
    return list(chosen)


def learning_curve_outputs():
    return [
        f"results/learning_curve/{assay}.{ext}"
        for assay in learning_curve_assays()
        for ext in ("tsv", "png")
    ]


def get_final_outputs():
    """The default target: the whole chain, reads to trained, evaluated and interpreted models,
    the learning curve when asked for, and the published PlanTT-CNN's predictions when its
    section of the config is set."""
    return (
        preprocess_outputs()
        + coverage_outputs()
        + metrics_outputs()
        + learning_curve_outputs()
        + interpret_outputs()
        + motif_outputs()
        + published_outputs()
    )


# ---- PRO-seq ----

PROSEQ_SAMPLES = [s for s in SAMPLES if samples.loc[s, "assay"] == "proseq"]
PROSEQ_SPECIES = [sp for sp in SPECIES if (sp, "proseq") in SPECIES_ASSAYS]
BOTH_ASSAYS_SPECIES = [
    sp for sp in PROSEQ_SPECIES if (sp, "rnaseq3p") in SPECIES_ASSAYS
]
PROSEQ_MATRIX_LABELS = {"tss": "TSS", "tts": "TTS", "body": "gene body"}


def _proseq_samples_of(species):
    return [s for s in PROSEQ_SAMPLES if samples.loc[s, "species"] == species]


def get_proseq_bigwigs_of_species(wildcards):
    chosen = _proseq_samples_of(wildcards.species)
    return {
        strand: [f"results/proseq/bigwig/{s}.{strand}.bw" for s in chosen]
        for strand in ("plus", "minus")
    }


def get_proseq_bams_of_species(wildcards):
    chosen = _proseq_samples_of(wildcards.species)
    return {
        "bams": [f"results/star/{s}/{s}.bam" for s in chosen],
        "csis": [f"results/star/{s}/{s}.bam.csi" for s in chosen],
    }


def get_proseq_matrix_mode(wildcards):
    """computeMatrix's mode and its region options for one anchor (tss, tts or body)."""
    settings = config["proseq"]["metagene"]
    flanks = f"-b {settings['upstream']} -a {settings['downstream']}"
    if wildcards.anchor == "body":
        return (
            f"scale-regions {flanks} --regionBodyLength {settings['body_length']}"
            f" --binSize {settings['body_bin_size']}"
        )
    point = "TSS" if wildcards.anchor == "tss" else "TES"
    return f"reference-point --referencePoint {point} {flanks} --binSize {settings['bin_size']}"


def get_proseq_matrix_label(wildcards):
    return PROSEQ_MATRIX_LABELS[wildcards.anchor]


def get_proseq_plot_title(wildcards):
    return f"{wildcards.species}: PRO-seq, sense and antisense"


def proseq_outputs():
    outputs = []
    if not PROSEQ_SPECIES:
        return outputs
    outputs += expand(
        "results/proseq/bigwig/{sample}.{strand}.bw",
        sample=PROSEQ_SAMPLES,
        strand=("plus", "minus"),
    )
    outputs += expand(
        "results/proseq/bigwig/{species}.merged.{strand}.bw",
        species=PROSEQ_SPECIES,
        strand=("plus", "minus"),
    )
    outputs += expand(
        "results/proseq/metagene/{species}.{kind}",
        species=PROSEQ_SPECIES,
        kind=("profile.png", "heatmap.png", "profile.tsv"),
    )
    outputs += [
        "results/proseq/pausing/summary.tsv",
        "results/proseq/pausing/pause_index.png",
    ]
    if BOTH_ASSAYS_SPECIES:
        outputs += ["results/proseq/comparison/assays.png"]
        outputs += ["results/proseq/comparison/orthologs.png"]
    return outputs


# ---- interpretation ----


def interpret_assays():
    """Assays whose interpretation model (interpret.model) is trained."""
    settings = config["interpret"]
    if not settings["enabled"]:
        return []
    if settings["ism_fold"] >= config["splits"]["folds"]:
        raise WorkflowError(
            f"interpret.ism_fold is {settings['ism_fold']} but splits.folds is "
            f"{config['splits']['folds']} (folds are numbered from 0)"
        )
    return [a for a in ASSAYS_PRESENT if settings["model"] in train_models(a)]


def _interpret_model_file(assay, fold, name):
    return f"results/models/{assay}/{config['interpret']['model']}/fold_{fold}/{name}"


def get_interpret_folds(wildcards):
    return list(range(config["splits"]["folds"]))


def get_interpret_models(wildcards):
    return [
        _interpret_model_file(wildcards.assay, fold, "weights.pt")
        for fold in get_interpret_folds(wildcards)
    ]


def get_interpret_model_jsons(wildcards):
    return [
        _interpret_model_file(wildcards.assay, fold, "model.json")
        for fold in get_interpret_folds(wildcards)
    ]


def get_interpret_ism_model(wildcards):
    fold = config["interpret"]["ism_fold"]
    return _interpret_model_file(wildcards.assay, fold, "weights.pt")


def get_interpret_ism_model_json(wildcards):
    fold = config["interpret"]["ism_fold"]
    return _interpret_model_file(wildcards.assay, fold, "model.json")


def get_interpret_truth(wildcards):
    """In the demo, the grammar the data were simulated from (None: the packaged default)."""
    if not config["demo"]:
        return {"demo": False, "grammar": None}
    return {"demo": True, "grammar": config["demo_settings"].get("grammar")}


def interpret_outputs():
    outputs = []
    for assay in interpret_assays():
        outputs += [
            f"results/interpret/{assay}/attribution_profile.tsv",
            f"results/interpret/{assay}/attribution_profile.png",
            f"results/interpret/{assay}/motif_attribution.tsv",
            f"results/interpret/{assay}/motif_attribution.png",
            f"results/interpret/{assay}/ism/ism.tsv",
            f"results/interpret/{assay}/ism/heatmap.png",
            f"results/interpret/{assay}/ism/zoom.png",
        ]
    return outputs


# ---- motifs ----


def motif_targets():
    """(assay, model) pairs whose patterns are searched: motifs.models that are trained."""
    settings = config["motifs"]
    if not settings["enabled"]:
        return []
    return [
        (assay, model)
        for assay in ASSAYS_PRESENT
        for model in settings["models"]
        if model in train_models(assay)
    ]


def get_motif_folds(wildcards):
    folds = config["motifs"]["folds"]
    if folds is None:
        return list(range(config["splits"]["folds"]))
    beyond = [f for f in folds if f >= config["splits"]["folds"]]
    if beyond:
        raise WorkflowError(
            f"motifs.folds {beyond}: splits.folds is {config['splits']['folds']} "
            "(folds are numbered from 0)"
        )
    return sorted(folds)


def _motif_model_files(wildcards, name):
    return [
        f"results/models/{wildcards.assay}/{wildcards.model}/fold_{fold}/{name}"
        for fold in get_motif_folds(wildcards)
    ]


def get_motif_models(wildcards):
    return _motif_model_files(wildcards, "weights.pt")


def get_motif_model_jsons(wildcards):
    return _motif_model_files(wildcards, "model.json")


def get_motif_meme(wildcards):
    """The user's MEME file, when set (an input, so a changed file reruns the stage)."""
    meme = config["motifs"]["meme"]
    return [meme] if meme else []


def get_motif_known(wildcards):
    """What patterns are compared with: the user's MEME file, else in the demo the grammar the
    data were simulated from (None: the packaged default), else the JASPAR collection of
    motifs.database, else nothing (de novo only). The database, when set, also names every
    pattern (database_matches.tsv).
    """
    meme = config["motifs"]["meme"]
    database = config["motifs"]["database"]
    if meme:
        return {"source": "meme", "meme": meme, "database": database}
    if config["demo"]:
        return {
            "source": "grammar",
            "grammar": config["demo_settings"].get("grammar") or "default",
            "database": database,
        }
    if database:
        return {"source": "database", "database": database}
    return {"source": "none", "database": None}


def motif_outputs():
    outputs = []
    for assay, model in motif_targets():
        outputs += [
            f"results/motifs/{assay}/{model}/{name}"
            for name in ("patterns.tsv", "matches.tsv", "recovery.tsv", "patterns.png")
        ]
    return outputs


# ---- your own sequences (plantt fit) ----

FIT = config.get("fit") or {}
FIT_DATASETS = dict(FIT.get("datasets") or {})


def fit_settings(dataset):
    """The fit settings of one dataset: fit.settings, then the dataset's own, train merged."""
    base = dict(FIT.get("settings") or {})
    own = dict(FIT_DATASETS[dataset].get("settings") or {})
    train = {**(base.get("train") or {}), **(own.get("train") or {})}
    merged = {**base, **own, "train": train}
    eval_pairs = FIT_DATASETS[dataset].get("eval_pairs")
    if eval_pairs:
        merged["eval_pairs"] = eval_pairs
    return merged


def _check_fit_settings():
    """Catch a bad fit setting (a typo, a wrong value) before any job runs."""
    if not FIT_DATASETS:
        return
    # plantt.fit imports PyTorch: only when there is something to fit
    from plantt.fit import FitSettings

    for dataset in FIT_DATASETS:
        try:
            FitSettings.from_dict(fit_settings(dataset))
        except (TypeError, ValueError) as err:
            raise WorkflowError(f"fit.datasets.{dataset}: {err}") from None


_check_fit_settings()


def get_fit_inputs(wildcards):
    entry = FIT_DATASETS[wildcards.dataset]
    inputs = {"table": entry["table"]}
    for key in ("values", "eval_pairs"):
        if entry.get(key):
            inputs[key] = entry[key]
    return inputs


def get_fit_task(wildcards):
    return FIT_DATASETS[wildcards.dataset]["task"]


def get_fit_settings(wildcards, resources, threads):
    settings = fit_settings(wildcards.dataset)
    settings["train"] = {
        **settings["train"],
        "num_threads": threads,
        "require_gpu": int(resources.get("gpu", 0)) > 0,
        "allow_cpu_fallback": config["train"]["allow_cpu_fallback"],
    }
    return settings


def fit_outputs():
    """Targets of `snakemake fit_all`: every dataset of fit.datasets, fitted."""
    return [f"results/fit/{dataset}/metrics_summary.tsv" for dataset in FIT_DATASETS]


# ---- the published PlanTT-CNN (plantt import-weights) ----

try:
    PUBLISHED = PublishedSettings.from_config(config.get("published"))
except ValueError as err:
    raise WorkflowError(f"published: {err}") from None
PUBLISHED_DIR = "results/published"
# Records whose ISM (and edits) are run: an empty list when the section is off.
PUBLISHED_RECORDS = list(PUBLISHED.ism) if PUBLISHED.enabled else []


def get_published_weights(wildcards):
    if not PUBLISHED.enabled:
        raise WorkflowError(
            "published.weights is not set: point it at planttcnn.pt (config/README.md, "
            '"The published PlanTT-CNN")'
        )
    return PUBLISHED.weights


def get_published_inputs(wildcards):
    """The input FASTA files: {"sequences": ...} or {"promoter": ..., "terminator": ...}."""
    return PUBLISHED.input_files()


def published_all_input(wildcards):
    """Input of `published_all`: a clear error, rather than an empty target, while the stage is off."""
    if not PUBLISHED.enabled:
        raise WorkflowError(
            "published_all: the published PlanTT-CNN stage is off; set published.weights (and its "
            "sequences) in the config: see config/README.md, 'The published PlanTT-CNN'"
        )
    return published_outputs()


def published_outputs():
    """Targets of `snakemake published_all` (none while published.weights is unset)."""
    if not PUBLISHED.enabled:
        return []
    outputs = [
        f"{PUBLISHED_DIR}/model/model.json",
        f"{PUBLISHED_DIR}/scores.tsv",
        f"{PUBLISHED_DIR}/predictions.tsv",
        f"{PUBLISHED_DIR}/predictions.png",
    ]
    for record in PUBLISHED_RECORDS:
        outputs += [
            f"{PUBLISHED_DIR}/ism/{record}/ism.tsv",
            f"{PUBLISHED_DIR}/ism/{record}/heatmap.png",
            f"{PUBLISHED_DIR}/ism/{record}/zoom.png",
        ]
        if PUBLISHED.edit_budget > 0:
            outputs.append(f"{PUBLISHED_DIR}/edit/{record}.tsv")
    return outputs
