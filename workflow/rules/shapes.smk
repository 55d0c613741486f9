# fit inputs per histogram: one channel per region (x era, read from each era's stacks)
rule shapes:
    input:
        stacks=fit_stacks(config, with_hypotheses=False),
        spec=lambda w: spec_file(config, "shapes", histogram=w.histogram),
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


# the maximum-likelihood fit of each fitted histogram's workspace: results table, pulls,
# impacts, pre- and post-fit plots per channel (a rule per histogram: its channels)
for fitted_histogram in fitted(config):

    rule:
        name:
            f"fit_{fitted_histogram}".replace("-", "_")
        input:
            workspace=f"results/shapes/{fitted_histogram}.pyhf.json",
            spec=spec_file(config, "fit", histogram=fitted_histogram),
        output:
            report(
                fit_files(config, fitted_histogram),
                category="Fit",
                subcategory=fitted_histogram,
                caption="../report/fit.rst",
            ),
        log:
            f"logs/fit/{fitted_histogram}.log",
        conda:
            "../../envs/brewflow.yaml"
        params:
            config=lambda w, input: CONFIG,
            histogram=lambda w, input, name=fitted_histogram: name,
        shell:
            "brewflow fit --config {params.config} --histogram {params.histogram} "
            "--workspace {input.workspace} --output-dir results/fit/{params.histogram} "
            "> {log} 2>&1"


# each search: a fit per signal hypothesis (mass point) of its histogram, the limits on the
# cross section against mass and the Brazil plot (a rule per search)
for search_name in searched(config):

    rule:
        name:
            f"search_{search_name}"
        input:
            stacks=fit_stacks(config),
            spec=spec_file(config, "search", search=search_name),
        output:
            report(
                search_files(config, search_name),
                category="Search",
                subcategory=search_name,
                caption="../report/search.rst",
            ),
        log:
            f"logs/search/{search_name}.log",
        conda:
            "../../envs/brewflow.yaml"
        params:
            config=lambda w, input: CONFIG,
            search=lambda w, input, name=search_name: name,
        shell:
            "brewflow search --config {params.config} --search {params.search} "
            "--inputs {input.stacks} --output-dir results/search/{params.search} > {log} 2>&1"
