# Each analyze job reads its files (or, with events_per_job, one chunk group of them): one job
# per dataset x systematic, or with fuse_systematics one job per dataset filling every variation
# in ONE graph (columns read once) and writing them in one file (all.json; merge takes it as it
# takes the per-systematic files); resources for batch systems follow the events it reads.
FUSE = config["fuse_systematics"]
ANALYZED = FUSED if FUSE else ANALYZE


rule:
    name:
        "analyze_fused" if FUSE else "analyze"
    input:
        unpack(job_inputs("analyze")),
    output:
        ANALYZED,
    log:
        ANALYZED.replace("results/", "logs/").replace(".json", ".log"),
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
            + (
                "--all-systematics "
                if FUSE
                else "--systematic {wildcards.systematic} "
            )
            + "--preprocess {input.inventory} "
            + ("--group {wildcards.group} " if GROUPED else "")
            + "--output {output} --threads {threads} > {log} 2>&1"
        )
