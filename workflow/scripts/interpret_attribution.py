"""DeepLift profile of one assay over the test genes of every fold (rule interpret_attribution)."""

import _setup

from pathlib import Path

import numpy as np
import torch

from plantt.attribution import (
    ASSAY_PROCESSES,
    attribution_peak_enrichment,
    cv_attribution_profile,
    grammar_window_regions,
    motif_occurrence_mask,
    plot_attribution_profile,
)
from plantt.io import get_logger, setup_logging, write_tsv
from plantt.windows import WindowLayout

sm = snakemake
setup_logging(sm.log[0])
log = get_logger("interpret")
torch.set_num_threads(sm.threads)
settings = sm.params.settings
layout = WindowLayout(**sm.params.layout)
model_dirs = {int(fold): Path(path).parent
              for fold, path in zip(sm.params.folds, sm.input.models, strict=True)}
result = cv_attribution_profile(
    model_dirs, sm.input.codes, sm.input.genes, sm.input.splits,
    settings["max_genes_per_fold"], settings["seed"], settings["attribution_batch_size"])
codes = np.load(sm.input.codes, mmap_mode="r")[result.genes["row"].to_numpy()]
regions = []
if sm.params.truth["demo"]:
    # Demo: the grammar's regions for the motifs this assay measures, and how much attribution
    # falls on them (the region-level profile and each gene's actual motif occurrences).
    grammar, processes = sm.params.truth["grammar"], ASSAY_PROCESSES.get(sm.wildcards.assay)
    regions = grammar_window_regions(grammar, processes, layout)
    masked = layout.masked_indices()
    for label, values, truth in [
        ("regions (profile)", result.profile, regions),
        ("motif occurrences (genes)", np.abs(result.contribution),
         motif_occurrence_mask(codes, grammar, processes, layout)),
    ]:
        try:
            enrichment = attribution_peak_enrichment(values, truth, exclude=masked)
        except ValueError as err:
            log.info("grammar %s: no enrichment (%s)", label, err)
            continue
        log.info("grammar %s vs the rest of the window: %s", label,
                 ", ".join(f"{k} {v:.3g}" for k, v in enrichment.items()))
write_tsv(result.profile, sm.output.profile, float_format="%.6g")
write_tsv(result.summary, sm.output.summary, float_format="%.6g")
result.save_genes(sm.output.genes_npz, codes)
plot_attribution_profile(result.profile, sm.output.plot, layout, regions=regions,
                         title=f"{sm.wildcards.assay}: mean |DeepLift attribution| of sum(z) "
                               f"({len(result.genes)} test genes)")
