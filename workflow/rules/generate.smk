rule generate:
    input:
        spec=spec_file(config, "generate"),
    output:
        generated_files(config),
    log:
        "logs/generate.log",
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=lambda w, input: CONFIG,
    shell:
        "brewflow generate --config {params.config} > {log} 2>&1"
