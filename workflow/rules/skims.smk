# A skim per dataset: the events of a region with chosen columns, parquet or ROOT + ledger
# (brewflow.jobs.skims); skims are valid dataset inputs of later runs.
rule skim:
    input:
        inventory="results/preprocess/{dataset}.json",
        files=analyzed_files,
        spec=lambda w: spec_file(config, "skim", skim=w.skim, dataset=w.dataset),
    output:
        directory("results/skim/{skim}/{dataset}"),
    log:
        "logs/skim/{skim}/{dataset}.log",
    conda:
        "../../envs/brewflow.yaml"
    threads: config["threads"]
    params:
        config=lambda w, input: CONFIG,
    shell:
        "brewflow skim --config {params.config} --skim {wildcards.skim} "
        "--dataset {wildcards.dataset} --preprocess {input.inventory} --output-dir {output} "
        "--threads {threads} > {log} 2>&1"
