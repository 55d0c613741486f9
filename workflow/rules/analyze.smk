# Each analyze job reads its files (or, with events_per_job, one chunk group of them) and
# writes one result per systematic; resources for batch systems follow the events it reads.
if not config["fuse_systematics"]:

    rule analyze:
        input:
            inventory="results/preprocess/{dataset}.json",
            files=analyzed_files,
            spec=lambda w: spec_file(config, "analyze", dataset=w.dataset),
        output:
            ANALYZE,
        log:
            ANALYZE.replace("results/", "logs/").replace(".json", ".log"),
        retries: config["retries"]["jobs"]
        conda:
            "../../envs/brewflow.yaml"
        threads: config["threads"]
        resources:
            mem_mb=analyze_job_resources("mem_mb"),
            runtime=analyze_job_resources("runtime"),
        params:
            config=lambda w, input: CONFIG,
            group=lambda w, input: f"--group {w.group}" if GROUPED else "",
        shell:
            "brewflow analyze --config {params.config} --dataset {wildcards.dataset} "
            "--systematic {wildcards.systematic} --preprocess {input.inventory} {params.group} "
            "--output {output} --threads {threads} > {log} 2>&1"

else:
    # one job per dataset (x chunk group) fills every variation in ONE graph (columns read
    # once) and writes the same per-systematic files as the rule above; a rule per dataset, as
    # its outputs (the dataset's systematics) differ between datasets
    for dataset_name in DATASETS:
        part = "part{group}/" if GROUPED else ""

        rule:
            name:
                f"analyze_fused_{dataset_name}"
            input:
                inventory=f"results/preprocess/{dataset_name}.json",
                files=analysis_inputs(config, dataset_name),
                spec=spec_file(config, "analyze", dataset=dataset_name),
            output:
                expand(
                    ANALYZE,
                    dataset=dataset_name,
                    systematic=systematics_for(config, dataset_name),
                    allow_missing=True,
                ),
            log:
                f"logs/analyze/{dataset_name}/{part}all.log",
            retries: config["retries"]["jobs"]
            conda:
                "../../envs/brewflow.yaml"
            threads: config["threads"]
            resources:
                mem_mb=analyze_job_resources("mem_mb"),
                runtime=analyze_job_resources("runtime"),
            params:
                config=lambda w, input: CONFIG,
                name=lambda w, input, name=dataset_name: name,
                group=lambda w, input: f"--group {w.group}" if GROUPED else "",
                part=lambda w, input: f"part{w.group}" if GROUPED else "",
            shell:
                "brewflow analyze --config {params.config} --dataset {params.name} "
                "--all-systematics --preprocess {input.inventory} {params.group} "
                "--outdir results/analyze/{params.name}/{params.part} --threads {threads} "
                "> {log} 2>&1"
