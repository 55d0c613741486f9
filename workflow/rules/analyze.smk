if not config["fuse_systematics"]:

    rule analyze:
        input:
            inventory="results/preprocess/{dataset}.json",
            files=analyzed_files,
        output:
            "results/analyze/{dataset}/{systematic}.json",
        log:
            "logs/analyze/{dataset}/{systematic}.log",
        conda:
            "../../envs/brewflow.yaml"
        threads: config["threads"]
        params:
            config=CONFIG,
            dataset=lambda w: dataset_fingerprint(config, w.dataset),
        shell:
            "brewflow analyze --config {params.config} --dataset {wildcards.dataset} "
            "--systematic {wildcards.systematic} --preprocess {input.inventory} "
            "--output {output} --threads {threads} > {log} 2>&1"

else:
    # one job per dataset fills every variation in ONE graph (columns read once) and writes
    # the same per-systematic files as the rule above; a rule per dataset, as its outputs
    # (the dataset's systematics) differ between datasets
    for dataset_name in DATASETS:

        rule:
            name:
                f"analyze_fused_{dataset_name}"
            input:
                inventory=f"results/preprocess/{dataset_name}.json",
                files=analysis_inputs(config, dataset_name),
            output:
                expand(
                    "results/analyze/{dataset}/{systematic}.json",
                    dataset=dataset_name,
                    systematic=systematics_for(config, dataset_name),
                ),
            log:
                f"logs/analyze/{dataset_name}.log",
            conda:
                "../../envs/brewflow.yaml"
            threads: config["threads"]
            params:
                config=CONFIG,
                name=dataset_name,
                fingerprint=dataset_fingerprint(config, dataset_name),
            shell:
                "brewflow analyze --config {params.config} --dataset {params.name} "
                "--all-systematics --preprocess {input.inventory} "
                "--outdir results/analyze/{params.name} --threads {threads} > {log} 2>&1"
