if not config["fuse_systematics"]:

    rule analyze:
        input:
            inventory="results/preprocess/{dataset}.json",
            files=analyzed_files,
        output:
            "results/analyze/{dataset}/{systematic}.json",
        log:
            "logs/analyze/{dataset}/{systematic}.log",
        conda:
            "../../envs/brewflow.yaml"
        threads: config["threads"]
        params:
            config=CONFIG,
            dataset=lambda w: dataset_fingerprint(config, w.dataset),
        shell:
            "brewflow analyze --config {params.config} --dataset {wildcards.dataset} "
            "--systematic {wildcards.systematic} --preprocess {input.inventory} "
            "--output {output} --threads {threads} > {log} 2>&1"

else:

    rule analyze_fused:
        input:
            inventory="results/preprocess/{dataset}.json",
            files=analyzed_files,
        output:
            temp("results/analyze/{dataset}.all-systematics.json"),
        log:
            "logs/analyze/{dataset}.all-systematics.log",
        conda:
            "../../envs/brewflow.yaml"
        threads: config["threads"]
        params:
            config=CONFIG,
            dataset=lambda w: dataset_fingerprint(config, w.dataset),
        shell:
            "brewflow analyze --config {params.config} --dataset {wildcards.dataset} "
            "--all-systematics --preprocess {input.inventory} --output {output} "
            "--threads {threads} > {log} 2>&1"

    rule split_systematic:
        input:
            "results/analyze/{dataset}.all-systematics.json",
        output:
            "results/analyze/{dataset}/{systematic}.json",
        # in-process (no job start-up): one file per systematic from the fused result
        localrule: True
        run:
            split_result(input[0], output[0], wildcards.systematic)
