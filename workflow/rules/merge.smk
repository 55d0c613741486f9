rule merge:
    input:
        parts=analyze_inputs,
        inventory="results/preprocess/{dataset}.json",
    output:
        "results/merge/{dataset}.json",
    log:
        "logs/merge/{dataset}.log",
    conda:
        "../../envs/brewflow.yaml"
    shell:
        "brewflow merge --inputs {input.parts} --preprocess {input.inventory} "
        "--output {output} > {log} 2>&1"


rule scale:
    input:
        result="results/merge/{dataset}.json",
        preprocess="results/preprocess/{dataset}.json",
        spec=lambda w: spec_file(config, "scale", dataset=w.dataset),
    output:
        "results/scale/{dataset}.json",
    log:
        "logs/scale/{dataset}.log",
    conda:
        "../../envs/brewflow.yaml"
    shell:
        f"brewflow scale --config {CONFIG} --dataset {{wildcards.dataset}} "
        "--input {input.result} "
        "--preprocess {input.preprocess} --output {output} > {log} 2>&1"


# a process summed: over its datasets (results/stack/), over one era's datasets
# (results/eras/<era>/stack/), and, with eras, the combination summed over the eras' stacks
for scope in SCOPES:

    rule:
        name:
            scope_rule("stack", scope)
        input:
            lambda w, scope=scope: stack_inputs(config, w.process, scope),
        output:
            scoped("results/stack/{process}.json", scope),
        log:
            scoped_log("logs/stack/{process}.log", scope),
        localrule: True
        conda:
            "../../envs/brewflow.yaml"
        shell:
            "brewflow stack --process {wildcards.process} --inputs {input} --output {output} "
            "> {log} 2>&1"
