rule generate:
    output:
        generated_files(config),
    log:
        "logs/generate.log",
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=CONFIG,
        settings=fingerprint(
            [config.get("generate"), config["luminosity"], generated_files(config)]
        ),
    shell:
        "brewflow generate --config {params.config} > {log} 2>&1"
