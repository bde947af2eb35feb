"""The counting summary or the replicate concordance as MultiQC custom content (rules
multiqc_read_assignment, multiqc_replicate_concordance)."""

from plantt.io import setup_logging
from plantt.qc import read_assignment_multiqc, replicate_concordance_multiqc, write_multiqc_content
from plantt.rule_script import start_rule_script

start_rule_script()
sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
if sm.params.content == "read_assignment":
    content = read_assignment_multiqc(sm.input[0])
else:
    names = {(species, assay, f"rep_{replicate}"): sample
             for sample, species, assay, replicate in sm.params.replicates}
    content = replicate_concordance_multiqc(sm.input[0], names)
write_multiqc_content(content, sm.output[0])
