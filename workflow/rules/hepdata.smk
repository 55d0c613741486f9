# the HEPData record of the run: a table per data/MC plot, cutflow, fit table and search limit,
# made of the numbers the figures and tables were drawn from, checked by hepdata-validator
# (`snakemake hepdata`; part of the default target when the config has a hepdata block)
rule hepdata:
    input:
        hepdata_inputs(config),
        spec=spec_file(config, "hepdata"),
    output:
        hepdata_outputs(config),  # submission.yaml, a YAML per table, the figures and thumbnails
        archive="results/hepdata.tar.gz",
    log:
        "logs/hepdata.log",
    localrule: True
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=lambda w, input: CONFIG,
    shell:
        "brewflow hepdata --config {params.config} --output-dir results/hepdata "
        "--archive {output.archive} > {log} 2>&1"
