"""Gene-level PRO-seq vs 3'-RNA-seq mean CPM per species (rule proseq_assay_comparison)."""

import pandas as pd

from plantt.io import setup_logging, write_tsv
from plantt.proseq import assay_agreement, mean_cpm, plot_assay_agreement
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
pseudocount = sm.params.pseudocount
data, rows = {}, []
for species, proseq, rnaseq in zip(sm.params.species, sm.input.proseq, sm.input.rnaseq3p,
                                   strict=True):
    joined, r2 = assay_agreement(mean_cpm(proseq), mean_cpm(rnaseq), pseudocount)
    data[species] = (joined, r2)
    rows.append({"species": species, "genes": len(joined), "pseudocount": pseudocount, "r2": r2})
    log.info("%s: R^2 = %.3f over %d genes", species, r2, len(joined))
write_tsv(pd.DataFrame(rows), sm.output.table)
plot_assay_agreement(data, pseudocount, sm.output.plot)
