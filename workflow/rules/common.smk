# Config -> targets, all computed by the brewflow package.
from brewflow.config import (
    era_datasets,
    eras,
    process_of,
    skim_targets,
    systematics_for,
)
from brewflow.config.records import hepdata_inputs, hepdata_outputs
from brewflow.pipeline import (
    analysis_inputs,
    analyze_resources,
    chunk_groups,
    fit_files,
    fit_stacks,
    fitted,
    generated_files,
    plot_files,
    plot_outputs,
    preprocess_inputs,
    processes,
    region_numbers,
    region_plot_outputs,
    scope_rule,
    scoped,
    scoped_log,
    scopes,
    search_files,
    searched,
    shapes_outputs,
    spec_file,
    stack_files,
    stack_inputs,
    start_run,
    table_outputs,
    write_specs,
    RESOLVED,
)

CONFIG = RESOLVED  # written by onstart (below), under Snakemake's lock
# Every job takes its spec as an input file (brewflow.config.specs; the part of the config the
# job reads and the identity of its code, rewritten only when it changes), so a job reruns
# exactly when something it reads changes. Rules have no params Snakemake would compare (the
# config path is in the shell command, or params are functions of input): it never imports
# pandas while planning.
PROCESSES = processes(config)
DATASETS = list(config["datasets"])
SCOPES = scopes(config)  # the combination (None), then each era
write_specs(config)  # every job's spec file there before Snakemake lists their folders


wildcard_constraints:
    dataset="|".join(DATASETS),
    process="|".join(PROCESSES),
    region="|".join(config["regions"]),
    histogram="|".join(config["histograms"]),
    systematic="[^/]+",
    group=r"\d+",
    skim="|".join(config["skims"]) or "no-skims",


def input_files(wildcards):
    """The dataset's local files (globs expanded) and golden JSON: preprocessing reruns when
    one changes (remote files are checked by preprocessing, not by Snakemake)."""
    return preprocess_inputs(config, wildcards.dataset)


def analyzed_files(wildcards):
    """Data files, golden JSON and correction payloads an analyze job reads."""
    return analysis_inputs(config, wildcards.dataset)


def job_inputs(kind):
    """An input function (used with unpack) for the jobs of ``kind`` of a dataset: its
    inventory, the files it reads and its spec file. One function a rule: Snakemake inspects
    each callable of a rule for every job it plans (a third of a 10k-job plan's time).
    """

    def inputs(wildcards):
        return {
            "inventory": f"results/preprocess/{wildcards.dataset}.json",
            "files": analysis_inputs(config, wildcards.dataset),
            "spec": spec_file(config, kind, dataset=wildcards.dataset),
        }

    return inputs


GROUPED = config["events_per_job"] is not None
# one analyze job's output: per dataset x systematic (x chunk group), or with
# fuse_systematics every variation of a dataset (x chunk group) in one file
PART = "part{group}/" if GROUPED else ""
ANALYZE = "results/analyze/{dataset}/" + PART + "{systematic}.json"
FUSED = "results/analyze/{dataset}/" + PART + "all.json"


def analyze_inputs(wildcards):
    """Every analyze output of a dataset: its systematics (x its chunk groups, known once
    preprocessing has run: the preprocess checkpoint, which only chunk groups need)."""
    groups = {}
    if GROUPED:
        inventory = checkpoints.preprocess.get(dataset=wildcards.dataset).output[0]
        groups = {"group": chunk_groups(config, inventory)}
    if config["fuse_systematics"]:
        return expand(FUSED, dataset=wildcards.dataset, **groups)
    return expand(
        ANALYZE,
        dataset=wildcards.dataset,
        systematic=systematics_for(config, wildcards.dataset),
        **groups,
    )


def analyze_job_resources(name):
    """A resource of an analyze job, derived from the events it reads and the rate its
    dataset's job measured when it last ran (see brewflow.pipeline)."""
    return lambda wildcards, input, threads, attempt: analyze_resources(
        config, input.inventory, threads, attempt, wildcards.get("systematic", "all")
    )[name]


onstart:
    # at a run's start only (the physics layer, not imported to plan a run): every correction
    # name exists, the analysis defines every cut, variable and weight the config names (on a
    # typetracer); then the resolved config for the jobs, temp files of killed jobs removed
    from brewflow.jobs.validation import check_before_run

    check_before_run(config)
    start_run(config)
