rule analyze:
    input:
        inventory="results/preprocess/{dataset}.json",
        files=input_files,
    output:
        "results/analyze/{dataset}/{systematic}.json",
    log:
        "logs/analyze/{dataset}/{systematic}.log",
    conda:
        "../../envs/brewflow.yaml"
    threads: config["threads"]
    params:
        config=CONFIG,
        dataset=lambda w: dataset_fingerprint(config, w.dataset),
    shell:
        "brewflow analyze --config {params.config} --dataset {wildcards.dataset} "
        "--systematic {wildcards.systematic} --preprocess {input.inventory} --output {output} "
        "--threads {threads} > {log} 2>&1"
