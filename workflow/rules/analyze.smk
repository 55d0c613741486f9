# Each analyze job reads its files (or, with events_per_job, one chunk group of them) and
# writes one result per systematic; resources for batch systems follow the events it reads.
if not config["fuse_systematics"]:

    rule analyze:
        input:
            unpack(job_inputs("analyze")),
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
        shell:
            (
                f"brewflow analyze --config {CONFIG} --dataset {{wildcards.dataset}} "
                "--systematic {wildcards.systematic} --preprocess {input.inventory} "
                + ("--group {wildcards.group} " if GROUPED else "")
                + "--output {output} --threads {threads} > {log} 2>&1"
            )

else:
    # one job per dataset (x chunk group) fills every variation in ONE graph (columns read
    # once) and writes them in one file (all.json; merge takes it as it takes the files above)

    rule analyze_fused:
        input:
            unpack(job_inputs("analyze")),
        output:
            FUSED,
        log:
            FUSED.replace("results/", "logs/").replace(".json", ".log"),
        retries: config["retries"]["jobs"]
        conda:
            "../../envs/brewflow.yaml"
        threads: config["threads"]
        resources:
            mem_mb=analyze_job_resources("mem_mb"),
            runtime=analyze_job_resources("runtime"),
        shell:
            (
                f"brewflow analyze --config {CONFIG} --dataset {{wildcards.dataset}} "
                "--all-systematics --preprocess {input.inventory} "
                + ("--group {wildcards.group} " if GROUPED else "")
                + "--output {output} --threads {threads} > {log} 2>&1"
            )
