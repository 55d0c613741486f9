rule analyze:
    input:
        "results/preprocess/{dataset}.json",
    output:
        "results/analyze/{dataset}/{systematic}.json",
    log:
        "logs/analyze/{dataset}/{systematic}.log",
    conda:
        "../../envs/brewflow.yaml"
    threads: 2
    params:
        config=CONFIG,
        dataset=lambda w: dataset_fingerprint(config, w.dataset),
    shell:
        "brewflow analyze --config {params.config} --dataset {wildcards.dataset} "
        "--systematic {wildcards.systematic} --preprocess {input} --output {output} "
        "--threads {threads} > {log} 2>&1"
