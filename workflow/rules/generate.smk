rule generate:
    output:
        generated_files(config),
    params:
        config=CONFIG,
        settings=fingerprint(
            [config.get("generate"), config["luminosity"], generated_files(config)]
        ),
    log:
        "logs/generate.log",
    shell:
        "brewflow generate --config {params.config} > {log} 2>&1"
