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
