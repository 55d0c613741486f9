# A dataset's inventory (entries, chunks, sums of weights, runs). A checkpoint only with
# chunk groups (events_per_job: their number is read from it); else a plain rule, as checkpoints
# cost Snakemake a DAG update per finished job (a third of a 10k-job plan).
PREPROCESS = dict(
    input=dict(
        files=input_files,
        spec=lambda w: spec_file(config, "preprocess", dataset=w.dataset),
    ),
    shell=(
        f"brewflow preprocess --config {CONFIG} --dataset {{wildcards.dataset}} "
        "--output {output} > {log} 2>&1"
    ),
)

if GROUPED:

    checkpoint preprocess:
        input:
            **PREPROCESS["input"],
        output:
            "results/preprocess/{dataset}.json",
        log:
            "logs/preprocess/{dataset}.log",
        conda:
            "../../envs/brewflow.yaml"
        shell:
            PREPROCESS["shell"]

else:

    rule preprocess:
        input:
            **PREPROCESS["input"],
        output:
            "results/preprocess/{dataset}.json",
        log:
            "logs/preprocess/{dataset}.log",
        conda:
            "../../envs/brewflow.yaml"
        shell:
            PREPROCESS["shell"]
