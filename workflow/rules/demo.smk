# The embedded demo: four related species simulated from a documented regulatory grammar
# (docs/grammar.md). Only runs with `demo: true`; its outputs are the inputs the sheets name.


if config["demo"]:

    rule simulate_demo:
        output:
            files=_demo_paths(),
            orthogroups=f"{DEMO_DIR}/orthofinder/Orthogroups.tsv",
            unassigned=f"{DEMO_DIR}/orthofinder/Orthogroups_UnassignedGenes.tsv",
            truth=f"{DEMO_DIR}/truth.tsv",
            ceiling=f"{DEMO_DIR}/ceiling.tsv",
            species_sheet=f"{DEMO_DIR}/species.tsv",
            sample_sheet=f"{DEMO_DIR}/samples.tsv",
        log:
            "logs/simulate_demo.log",
        conda:
            "../../envs/plantt.yaml"
        params:
            outdir=get_demo_outdir,
            settings=config["demo_settings"],
        script:
            "../scripts/simulate_demo.py"
