rule cutflow:
    input:
        processes=expand("results/stack/{process}.json", process=PROCESSES),
        datasets=expand("results/scale/{dataset}.json", dataset=DATASETS),
    output:
        csv=report(
            "results/cutflow/{region}.csv",
            category="Cutflow",
            caption="../report/cutflow.rst",
        ),
        md="results/cutflow/{region}.md",
        tex="results/cutflow/{region}.tex",
    log:
        "logs/cutflow/{region}.log",
    conda:
        "../../envs/brewflow.yaml"
    shell:
        "brewflow cutflow --region {wildcards.region} --processes {input.processes} "
        "--datasets {input.datasets} --output-stem results/cutflow/{wildcards.region} > {log} 2>&1"


rule summary:
    input:
        stacks=expand("results/stack/{process}.json", process=PROCESSES),
        merged=expand("results/merge/{dataset}.json", dataset=DATASETS),
    output:
        report(
            expand(
                "results/summary/{page}.html",
                page=["ledger", "systematics", "provenance"],
            ),
            category="Summary",
            caption="../report/summary.rst",
        ),
    log:
        "logs/summary.log",
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=lambda w, input: CONFIG,
    shell:
        "brewflow summary --config {params.config} --inputs {input.stacks} --results results "
        "--output-dir results/summary > {log} 2>&1"
