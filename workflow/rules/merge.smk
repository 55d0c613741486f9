rule merge:
    input:
        parts=analyze_inputs,
        inventory="results/preprocess/{dataset}.json",
    output:
        "results/merge/{dataset}.json",
    log:
        "logs/merge/{dataset}.log",
    conda:
        "../../envs/brewflow.yaml"
    shell:
        "brewflow merge --inputs {input.parts} --preprocess {input.inventory} "
        "--output {output} > {log} 2>&1"


rule scale:
    input:
        result="results/merge/{dataset}.json",
        preprocess="results/preprocess/{dataset}.json",
        fingerprint=lambda w: fingerprint_file(
            "normalisation", w.dataset, normalisation_fingerprint(config, w.dataset)
        ),
    output:
        "results/scale/{dataset}.json",
    log:
        "logs/scale/{dataset}.log",
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=lambda w, input: CONFIG,
    shell:
        "brewflow scale --config {params.config} --input {input.result} "
        "--preprocess {input.preprocess} --output {output} > {log} 2>&1"


rule stack:
    input:
        lambda w: expand("results/scale/{dataset}.json", dataset=PROCESSES[w.process]),
    output:
        "results/stack/{process}.json",
    log:
        "logs/stack/{process}.log",
    conda:
        "../../envs/brewflow.yaml"
    shell:
        "brewflow stack --process {wildcards.process} --inputs {input} --output {output} "
        "> {log} 2>&1"
