checkpoint preprocess:
    input:
        files=input_files,
        fingerprint=lambda w: fingerprint_file(
            "preprocess", w.dataset, preprocess_fingerprint(config, w.dataset)
        ),
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
