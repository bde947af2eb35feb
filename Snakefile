# plantt-workflow: reads from related plant species -> expression -> ortholog pairs -> PlanTT models.
# Run `snakemake --cores 2` for the embedded demo; see README.md and config/README.md.


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    sample=_alternation(SAMPLES),
    species=_alternation(SPECIES),
    assay=_alternation(ASSAYS),
    model=rf"{TORCH_MODEL_PATTERN}|kmer",
    fold=r"\d+",
    dataset=_alternation(FIT_DATASETS),
    record=_alternation(PUBLISHED_RECORDS),


include: "workflow/rules/demo.smk"
include: "workflow/rules/trim.smk"
include: "workflow/rules/align.smk"
include: "workflow/rules/quantify.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/orthologs.smk"
include: "workflow/rules/windows.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/proseq.smk"
include: "workflow/rules/interpret.smk"
include: "workflow/rules/motifs.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/published.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),


# Everything before training: expression tables, QC, windows, labels, folds and PRO-seq figures.
rule preprocess_all:
    input:
        preprocess_outputs(),
