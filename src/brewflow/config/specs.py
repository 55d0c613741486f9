"""Job specs: what each job of a run reads of the config and of the code, and nothing else.

Every job kind (``preprocess``, ``analyze``, ``scale``, ``cutflow``, ``plot``, ...) has one
projection (:mod:`brewflow.config.projections`) that picks, from the validated config, the part
its job reads: the analyze job of ``dy`` gets ``dy``'s reading keys, the analysis, the cuts and
binnings, its era's corrections, the systematics that apply to it, and no label; a plot job gets
the labels and styles and no cut. The projection is both

- **the job's only view of the config** (:meth:`JobSpec.config`): a lookup outside it (a key
  the projection does not declare, even one absent from the config, through ``[]``, ``get`` or
  ``in``) raises :class:`SpecError`, so a job cannot read what its spec does not hold; and
- **the value its fingerprint hashes** (:meth:`JobSpec.fingerprint`), with the identity of the
  code that runs it (:mod:`brewflow.code`: brewflow's version and commit; for the jobs that run
  the analysis, its modules' sources).

So a job reruns when, and only when, something it reads changes, with no list of keys kept by
hand beside the code that reads them. Execution settings (``threads``, ``scheduler``,
``stall_timeout``, ``retries``, ``remote``, ``resources``, ``persist_checkpoints``) are
readable by every job and hashed by none: they change how a job runs, never what it makes.

Standard library only: the Snakefile imports it to plan a run.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brewflow.code import analysis_modules, brewflow_identity, file_digests, package_versions
from brewflow.config.model import dataset_spec, payload_files
from brewflow.config.projections import KINDS, SETTINGS, SpecError, View
from brewflow.errors import ConfigError

__all__ = [
    "KINDS",
    "MADE",
    "SETTINGS",
    "SPECS",
    "JobSpec",
    "SpecError",
    "job_spec",
    "made_path",
    "spec_path",
]


@dataclass(frozen=True)
class JobSpec:
    """What one job reads: its ``kind``, its ``params`` (e.g. the dataset), the projected
    config and the identity of the code that runs it."""

    kind: str
    params: Mapping[str, Any]
    projected: View
    code: Mapping[str, Any] = field(default_factory=dict)

    def config(self) -> Mapping[str, Any]:
        """The job's view of the config (reading outside it raises :class:`SpecError`)."""
        return self.projected

    def document(self) -> str:
        """The spec as canonical JSON: what the job depends on (execution settings left
        out), for the fingerprint file a rule takes as input (made once: a spec is not
        edited)."""
        return self._document

    @functools.cached_property
    def _document(self) -> str:
        hashed = {k: v for k, v in self.projected.items() if k not in SETTINGS}
        body = {"kind": self.kind, "params": dict(self.params), "config": hashed,
                "code": dict(self.code)}  # fmt: skip
        return json.dumps(body, sort_keys=True, indent=1) + "\n"

    def fingerprint(self) -> str:
        """SHA-256 of :meth:`document`."""
        return self._fingerprint

    @functools.cached_property
    def _fingerprint(self) -> str:
        return hashlib.sha256(self.document().encode()).hexdigest()


def job_spec(kind: str, config: Mapping[str, Any], *, code: bool = True, **params: Any) -> JobSpec:
    """The spec of the ``kind`` job with ``params`` (e.g. ``dataset="dy"``) of a validated
    config; ``code=False`` leaves out the code's identity (a job reading its view needs none).
    An unknown dataset, region, histogram or skim is a :class:`ConfigError`."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(KINDS)}")
    projection, runs_analysis = KINDS[kind]
    if "dataset" in params:
        dataset_spec(config, params["dataset"])
    for key in ("region", "histogram", "skim"):
        section = {"region": "regions", "histogram": "histograms", "skim": "skims"}[key]
        value = params.get(key)
        if value is not None and value not in config.get(section, {}):
            known = ", ".join(config.get(section, {})) or "none"
            raise ConfigError(f"unknown {key} {value!r}; config has: {known}")
    params = {k: v for k, v in params.items() if v is not None}  # as spec_path names them
    identity: dict[str, Any] = {}
    if code:
        identity["brewflow"] = brewflow_identity()
        identity["packages"] = package_versions()
        if runs_analysis:
            identity["analysis"] = analysis_modules(config["analysis"]["callable"])
            identity["analysis_files"] = file_digests(config["analysis"].get("files", []))
            if "dataset" in params:  # its payloads by content: one edited with its old
                # mtime kept (cp -p, rsync -t) reruns the job too
                identity["payloads"] = file_digests(payload_files(config, params["dataset"]))
    return JobSpec(kind, dict(params), projection(config, **params), identity)


SPECS = Path(".brewflow") / "specs"
"""Where a run keeps its jobs' specs (relative to the run's folder)."""


def spec_path(kind: str, **params: Any) -> Path:
    """The spec file of the ``kind`` job with ``params``:
    ``.brewflow/specs/<kind>/<era>.<skim>.<search>.<dataset>.<region>.<histogram>.json``
    (the params it has; ``all`` without)."""
    order = ("era", "skim", "search", "dataset", "region", "histogram")
    name = ".".join(str(params[k]) for k in order if params.get(k) is not None) or "all"
    return SPECS / kind / f"{name}.json"


MADE = Path(".brewflow") / "made"
"""Where a run records, per spec file, the spec its jobs' outputs were last made from."""


def made_path(spec_file: str | Path) -> Path:
    """The record of what the outputs of the jobs of ``spec_file`` were made from."""
    return MADE / Path(spec_file).relative_to(SPECS)
