rule shapes:
    input:
        expand("results/stack/{process}.json", process=PROCESSES),
    output:
        root="results/shapes/{histogram}.root",
        card="results/shapes/{histogram}.txt",
        pyhf="results/shapes/{histogram}.pyhf.json",
    log:
        "logs/shapes/{histogram}.log",
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=CONFIG,
        fit=lambda w: fingerprint([config.get("shapes"), config["regions"]]),
    shell:
        "brewflow shapes --config {params.config} --histogram {wildcards.histogram} "
        "--inputs {input} --output-root {output.root} --output-card {output.card} "
        "--output-pyhf {output.pyhf} > {log} 2>&1"
