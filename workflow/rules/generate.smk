rule generate:
    input:
        fingerprint=fingerprint_file(
            "generate",
            "all",
            fingerprint(
                [
                    config.get("generate"),
                    config.get("luminosity"),
                    config.get("eras"),
                    generated_files(config),
                ]
            ),
        ),
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
