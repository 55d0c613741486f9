rule plot:
    input:
        expand("results/stack/{process}.json", process=PROCESSES),
    output:
        report(
            expand(
                "results/plots/{{region}}/{file}",
                file=plot_files(
                    config
                ),  # names with {histogram}, inserted as they are
            ),
            category="Plots",
            subcategory="{region}",
            caption="../report/plot.rst",
        ),
    log:
        "logs/plot/{region}/{histogram}.log",
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=CONFIG,
        style=lambda w: plot_fingerprint(config, w.histogram),
    shell:
        "brewflow plot --config {params.config} --region {wildcards.region} "
        "--histogram {wildcards.histogram} --inputs {input} "
        "--output-dir results/plots/{wildcards.region} > {log} 2>&1"
