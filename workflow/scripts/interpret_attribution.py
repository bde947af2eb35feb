"""DeepLift profile of one assay over the test genes of every fold (rule interpret_attribution).

In the demo, also the attribution at each planted motif the assay depends on (per motif, at its
occurrences vs the rest of the window); on real data, which has no known grammar, that table is
written with its header only, so the rule's outputs (and the report) are the same either way.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from plantt.rule_script import start_rule_script
from plantt.attribution import (
    ALL_MOTIFS,
    ASSAY_PROCESSES,
    MOTIF_ATTRIBUTION_COLUMNS,
    attribution_peak_enrichment,
    cv_attribution_profile,
    grammar_window_regions,
    motif_attribution_table,
    motif_occurrence_mask,
    plot_attribution_profile,
    plot_motif_attribution,
)
from plantt.io import get_logger, setup_logging, write_tsv
from plantt.windows import WindowLayout

start_rule_script()
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
motifs = pd.DataFrame(columns=MOTIF_ATTRIBUTION_COLUMNS)
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
    # Per motif: does the model attend to each motif's own occurrences?
    motifs = motif_attribution_table(result.contribution, codes, grammar, processes, layout)
    for record in motifs.itertuples(index=False):
        log.info("motif %s (%s): %d occurrence(s) in %d of %d genes; mean |DeepLift| at it "
                 "%.3g, elsewhere %.3g, ratio %.3g (top fraction inside %.3g, chance %.3g)",
                 record.motif, record.process, record.n_occurrences,
                 record.n_genes_with_occurrence, record.n_genes, record.mean_abs_at_motif,
                 record.mean_abs_elsewhere, record.ratio, record.top_fraction_inside,
                 record.top_fraction_chance)
    weak = motifs.loc[(motifs["motif"] != ALL_MOTIFS) & ~(motifs["ratio"] >= 3), "motif"]
    if len(weak):
        log.info("motif(s) with a ratio under 3 or no occurrence: %s", ", ".join(weak))
else:
    log.info("not the demo: no grammar to compare the attributions with; %s has its header only",
             sm.output.motifs)
write_tsv(result.profile, sm.output.profile, float_format="%.6g")
write_tsv(result.summary, sm.output.summary, float_format="%.6g")
result.save_genes(sm.output.genes_npz, codes)
write_tsv(motifs, sm.output.motifs, float_format="%.6g")
plot_motif_attribution(motifs, sm.output.motif_plot,
                       title=f"{sm.wildcards.assay}: mean |DeepLift| at each motif's occurrences "
                             "/ elsewhere")
plot_attribution_profile(result.profile, sm.output.plot, layout, regions=regions,
                         title=f"{sm.wildcards.assay}: mean |DeepLift attribution| of sum(z) "
                               f"({len(result.genes)} test genes)")
