rule plot:
    input:
        stacks=expand("results/stack/{process}.json", process=PROCESSES),
        fingerprint=lambda w: fingerprint_file(
            "plot", w.histogram, plot_fingerprint(config, w.histogram)
        ),
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
        config=lambda w, input: CONFIG,
    shell:
        "brewflow plot --config {params.config} --region {wildcards.region} "
        "--histogram {wildcards.histogram} --inputs {input.stacks} "
        "--output-dir results/plots/{wildcards.region} > {log} 2>&1"
