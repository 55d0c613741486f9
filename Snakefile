# brewflow: NanoAOD -> histograms, cutflows and data/MC plots.
# Run the demo with `snakemake --cores 2`; your analysis with `--config file=my.yaml`: brewflow
# reads that file with its safe loader. (`--configfile` files are read by Snakemake itself,
# through yte, before this file runs: use it only for configs you trust; see the README.)
from brewflow.config import workflow_config

config = workflow_config(config, workflow.overwrite_configfiles)


report: "workflow/report/workflow.rst"


# on a batch system (config/profiles) these run on the submitting host: small JSON sums (and
# the rules made per era, marked `localrule: True`)
localrules:
    all,
    merge,
    scale,


include: "workflow/rules/common.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/shapes.smk"
include: "workflow/rules/skims.smk"
include: "workflow/rules/hepdata.smk"


rule all:
    default_target: True
    input:
        [stack for scope in SCOPES for stack in stack_files(config, scope)],
        table_outputs(config, "results/cutflow/{region}.{ext}"),
        plot_outputs(config, "results/plots/{region}/{file}"),
        shapes_outputs(config, "results/shapes/{histogram}.{ext}"),
        "results/summary/ledger.html",
        [path for histogram in fitted(config) for path in fit_files(config, histogram)],
        [path for search in searched(config) for path in search_files(config, search)],
        [f"results/skim/{skim}/{dataset}" for skim, dataset in skim_targets(config)],
        [*hepdata_outputs(config), "results/hepdata.tar.gz"]
        if "hepdata" in config
        else [],
