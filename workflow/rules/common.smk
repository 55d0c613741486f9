# Config -> targets, all computed by the brewflow package.
from brewflow.config import dataset_files, process_of
from brewflow.runner import systematics_for
from brewflow.workflow import (
    analysis_inputs,
    dataset_fingerprint,
    fingerprint,
    generated_files,
    plot_files,
    plot_fingerprint,
    plot_outputs,
    processes,
    shapes_outputs,
    table_outputs,
    write_resolved,
)

CONFIG = write_resolved(config)
PROCESSES = processes(config)
DATASETS = list(config["datasets"])


wildcard_constraints:
    dataset="|".join(DATASETS),
    process="|".join(PROCESSES),
    region="|".join(config["regions"]),
    histogram="|".join(config["histograms"]),


def input_files(wildcards):
    """The dataset's ROOT files (globs expanded): jobs that read them rerun when they change."""
    return dataset_files(config, wildcards.dataset)


def analyzed_files(wildcards):
    """Data files, golden JSON and correction payloads an analyze job reads."""
    return analysis_inputs(config, wildcards.dataset)


def analyze_inputs(wildcards):
    return expand(
        "results/analyze/{dataset}/{systematic}.json",
        dataset=wildcards.dataset,
        systematic=systematics_for(config, wildcards.dataset),
    )
