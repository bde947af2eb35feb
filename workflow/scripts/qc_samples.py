"""Sample correlation heatmap and PCA of one species' samples, all assays (rule sample_qc)."""

from plantt.io import setup_logging, write_tsv
from plantt.qc import plot_sample_qc, sample_correlation, sample_matrix, sample_pca
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
values = sample_matrix(dict(sm.input))
correlation = sample_correlation(values, sm.params.pseudocount)
pca, explained = sample_pca(values, sm.params.top_genes, sm.params.pseudocount)
write_tsv(correlation.rename_axis("sample").reset_index(), sm.output.correlation)
write_tsv(pca.rename_axis("sample").reset_index(), sm.output.pca)
plot_sample_qc(correlation, pca, explained, sm.output.heatmap, sm.output.pca_plot,
               sm.wildcards.species)
log.info("%s: %d samples, %d genes; PC1 %.0f%% of the variance", sm.wildcards.species,
         values.shape[1], values.shape[0], 100 * explained[0])
