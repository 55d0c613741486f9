rule shapes:
    input:
        stacks=expand("results/stack/{process}.json", process=PROCESSES),
        fingerprint=fingerprint_file(
            "shapes", "all", fingerprint([config.get("shapes"), config["regions"]])
        ),
    output:
        root="results/shapes/{histogram}.root",
        card="results/shapes/{histogram}.txt",
        pyhf="results/shapes/{histogram}.pyhf.json",
    log:
        "logs/shapes/{histogram}.log",
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=lambda w, input: CONFIG,
    shell:
        "brewflow shapes --config {params.config} --histogram {wildcards.histogram} "
        "--inputs {input.stacks} --output-root {output.root} --output-card {output.card} "
        "--output-pyhf {output.pyhf} > {log} 2>&1"
