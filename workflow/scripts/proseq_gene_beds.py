"""BED files of plus- and minus-strand genes, and the grouped regions deepTools reads from each
strand's bigWig (rule proseq_gene_beds)."""

from plantt.io import setup_logging
from plantt.proseq import write_gene_beds
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
log = setup_logging(sm.log[0])
settings = sm.params.settings
outputs = {key: sm.output[key] for key in ("plus_genes", "minus_genes", "plus_signal",
                                           "minus_signal")}
counts = write_gene_beds(sm.input.annotation, outputs, min_length=settings["min_gene_length"],
                         max_genes=settings["max_genes"], seed=settings["seed"])
log.info("%s: metagene genes per strand %s", sm.wildcards.species, counts)
