checkpoint preprocess:
    input:
        files=input_files,
        spec=lambda w: spec_file(config, "preprocess", dataset=w.dataset),
    output:
        "results/preprocess/{dataset}.json",
    log:
        "logs/preprocess/{dataset}.log",
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=lambda w, input: CONFIG,
    shell:
        "brewflow preprocess --config {params.config} --dataset {wildcards.dataset} "
        "--output {output} > {log} 2>&1"
