# cutflow tables of the combination (results/cutflow/) and of each era
for scope in SCOPES:

    rule:
        name:
            scope_rule("cutflow", scope)
        input:
            processes=stack_files(config, scope),
            datasets=expand(
                "results/scale/{dataset}.json", dataset=era_datasets(config, scope)
            ),
            spec=lambda w, scope=scope: spec_file(
                config, "cutflow", region=w.region, era=scope
            ),
        output:
            csv=report(
                scoped("results/cutflow/{region}.csv", scope),
                category="Cutflow",
                subcategory=scope or "all eras",
                caption="../report/cutflow.rst",
            ),
            md=scoped("results/cutflow/{region}.md", scope),
            tex=scoped("results/cutflow/{region}.tex", scope),
        log:
            scoped_log("logs/cutflow/{region}.log", scope),
        localrule: True
        conda:
            "../../envs/brewflow.yaml"
        params:
            config=lambda w, input: CONFIG,
            era=lambda w, input, scope=scope: f"--era {scope}" if scope else "",
            stem=lambda w, input, scope=scope: scoped(
                f"results/cutflow/{w.region}", scope
            ),
        shell:
            "brewflow cutflow --config {params.config} --region {wildcards.region} {params.era} "
            "--processes {input.processes} --datasets {input.datasets} "
            "--output-stem {params.stem} > {log} 2>&1"


rule summary:
    input:
        stacks=stack_files(config),
        merged=expand("results/merge/{dataset}.json", dataset=DATASETS),
        spec=spec_file(config, "summary"),
    output:
        # a report entry per page, each with its caption
        ledger=report(
            "results/summary/ledger.html",
            category="Summary",
            labels={"page": "event ledger"},
            caption="../report/ledger.rst",
        ),
        systematics=report(
            "results/summary/systematics.html",
            category="Summary",
            labels={"page": "systematics"},
            caption="../report/systematics.rst",
        ),
        provenance=report(
            "results/summary/provenance.html",
            category="Summary",
            labels={"page": "provenance"},
            caption="../report/provenance.rst",
        ),
    log:
        "logs/summary.log",
    localrule: True
    conda:
        "../../envs/brewflow.yaml"
    params:
        config=lambda w, input: CONFIG,
    shell:
        "brewflow summary --config {params.config} --inputs {input.stacks} --results results "
        "--output-dir results/summary > {log} 2>&1"
