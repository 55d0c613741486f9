"""The analysis configuration: loading (:mod:`.loading`), validation (:mod:`.checks`) and the
model the rest of brewflow reads (:mod:`.model`: datasets, files, processes, systematics).

Imports only the standard library, PyYAML and jsonschema: the Snakefile imports it to plan a run.
"""

from brewflow.config.checks import SCHEDULER_ENV, check_scheduler, schema
from brewflow.config.loading import DEFAULT_CONFIG, load_config, validate, workflow_config
from brewflow.config.model import (
    OBJECT_TYPES,
    applicable_systematics,
    dataset_files,
    dataset_replicas,
    dataset_spec,
    is_generated,
    local_files,
    object_variation,
    on_bad_file,
    payload_files,
    process_of,
    processes,
    skim_targets,
    systematics_for,
)
from brewflow.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "OBJECT_TYPES",
    "SCHEDULER_ENV",
    "ConfigError",
    "applicable_systematics",
    "check_scheduler",
    "dataset_files",
    "dataset_replicas",
    "dataset_spec",
    "is_generated",
    "load_config",
    "local_files",
    "object_variation",
    "on_bad_file",
    "payload_files",
    "process_of",
    "processes",
    "schema",
    "skim_targets",
    "systematics_for",
    "validate",
    "workflow_config",
]
