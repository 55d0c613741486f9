# data/MC plots of the combination (results/plots/) and of each era (results/eras/<era>/plots/)
for scope in SCOPES:

    rule:
        name:
            scope_rule("plot", scope)
        input:
            stacks=stack_files(config, scope),
            fingerprint=lambda w: fingerprint_file(
                "plot", w.histogram, plot_fingerprint(config, w.histogram)
            ),
        output:
            report(
                expand(
                    scoped("results/plots/{{region}}/{file}", scope),
                    file=plot_files(
                        config, scope
                    ),  # names with {histogram}, inserted as they are
                ),
                category="Plots",
                subcategory=f"{scope or 'all eras'}: {{region}}",
                caption="../report/plot.rst",
            ),
        log:
            scoped_log("logs/plot/{region}/{histogram}.log", scope),
        conda:
            "../../envs/brewflow.yaml"
        params:
            config=lambda w, input: CONFIG,
            era=lambda w, input, scope=scope: f"--era {scope}" if scope else "",
            outdir=lambda w, input, scope=scope: scoped(
                f"results/plots/{w.region}", scope
            ),
        shell:
            "brewflow plot --config {params.config} --region {wildcards.region} "
            "--histogram {wildcards.histogram} --inputs {input.stacks} {params.era} "
            "--output-dir {params.outdir} > {log} 2>&1"
