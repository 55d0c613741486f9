# brewflow: NanoAOD -> histograms, cutflows and data/MC plots.
# Run the demo with `snakemake --cores 2`; your analysis with `--configfile my.yaml`.
from brewflow.config import validate

if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


config = validate(
    config, sources=workflow.overwrite_configfiles or ["config/config.yaml"]
)


report: "workflow/report/workflow.rst"


# on a batch system (config/profiles) these run on the submitting host: small JSON sums
localrules:
    all,
    merge,
    scale,
    stack,
    cutflow,
    summary,


include: "workflow/rules/common.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/shapes.smk"
include: "workflow/rules/skims.smk"


rule all:
    default_target: True
    input:
        expand("results/stack/{process}.json", process=PROCESSES),
        table_outputs(config, "results/cutflow/{region}.{ext}"),
        plot_outputs(config, "results/plots/{region}/{file}"),
        shapes_outputs(config, "results/shapes/{histogram}.{ext}"),
        "results/summary/ledger.html",
        [f"results/skim/{skim}/{dataset}" for skim, dataset in skim_targets(config)],
