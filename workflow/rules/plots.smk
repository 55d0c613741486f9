# data/MC plots of the combination (results/plots/, a job per region x histogram: each writes
# its per-systematic PDF and the numbers it draws, <histogram>.json) and of each era (results/eras/<era>/plots/, a job per region)
rule plot:
    input:
        stacks=stack_files(config),
        spec=lambda w: spec_file(config, "plot", region=w.region, histogram=w.histogram),
    output:
        report(
            expand(
                "results/plots/{{region}}/{file}",
                file=plot_files(
                    config
                ),  # names with {histogram}, inserted as they are
            ),
            category="Plots",
            subcategory="all eras: {region}",
            caption="../report/plot.rst",
        ),
        numbers="results/plots/{region}/{histogram}.json",  # what it draws (HEPData)
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


for scope in eras(config):
    for plotted_region in config["regions"]:

        rule:
            name:
                scope_rule(f"plot_{plotted_region}".replace("-", "_"), scope)
            input:
                stacks=stack_files(config, scope),
                spec=spec_file(config, "plot", region=plotted_region, era=scope),
            output:
                report(
                    region_plot_outputs(config, plotted_region, scope),
                    category="Plots",
                    subcategory=f"{scope}: {plotted_region}",
                    caption="../report/plot_era.rst",
                ),
                numbers=region_numbers(config, plotted_region, scope),
            log:
                f"logs/plot/{scope}/{plotted_region}.log",
            conda:
                "../../envs/brewflow.yaml"
            params:
                config=lambda w, input: CONFIG,
                era=lambda w, input, scope=scope: scope,
                region=lambda w, input, region=plotted_region: region,
                outdir=lambda w, input, scope=scope, region=plotted_region: scoped(
                    f"results/plots/{region}", scope
                ),
            shell:
                "brewflow plot --config {params.config} --region {params.region} "
                "--era {params.era} --inputs {input.stacks} --output-dir {params.outdir} "
                "> {log} 2>&1"
