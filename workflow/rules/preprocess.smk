checkpoint preprocess:
    input:
        input_files,
    output:
        "results/preprocess/{dataset}.json",
    log:
        "logs/preprocess/{dataset}.log",
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=CONFIG,
        dataset=lambda w: preprocess_fingerprint(config, w.dataset),
    shell:
        "brewflow preprocess --config {params.config} --dataset {wildcards.dataset} "
        "--output {output} > {log} 2>&1"
