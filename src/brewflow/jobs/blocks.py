"""The CMS building blocks the config turns on, applied around the analysis: what a physicist
configures instead of writing. Every job that runs the analysis (analyze, skims, inspect, the
check before a run) runs it through :func:`with_blocks`, which adds to its output:

- ``met_filters`` (per era): the cut ``met_filters``, every recommended ``Flag_*`` of the era's
  campaign (:mod:`brewflow.metfilters`), data and MC, for regions to list;
- ``theory`` (MC): the weights ``qcd_muR``, ``qcd_muF``, ``qcd_muRmuF``, ``ps_isr``,
  ``ps_fsr`` with their variations (:mod:`brewflow.theory`), each 1 at nominal, and, for the
  datasets of ``theory.top_pt``, the top pT reweighting ``top_pt`` (not 1 at nominal), for the
  systematics (``type: weight``) to name.

A block's cut or weight the analysis defines itself is a configuration error (one of the two
must go); a branch a block needs and the file lacks is an input error naming both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from brewflow.analysis import AnalysisOutput, Context
from brewflow.config import ConfigError, met_filters_of, theory_applies
from brewflow.errors import InputError
from brewflow.metfilters import RECOMMENDATIONS, MissingFlag, met_filter_mask
from brewflow.theory import parton_shower_weights, scale_weights, top_pt_weights

__all__ = ["MET_FILTERS", "with_blocks"]

MET_FILTERS = "met_filters"
"""The name of the MET filters' cut."""

Analysis = Callable[[Any, Context], AnalysisOutput]


def _flags(config: Mapping[str, Any], dataset: str) -> tuple[str, tuple[str, ...]] | None:
    """(what the list is, its flags) of ``dataset``'s era, or None without MET filters."""
    spec = met_filters_of(config, dataset)
    if spec is None:
        return None
    if isinstance(spec, str):
        return f"the recommendation {spec!r}", RECOMMENDATIONS[spec].flags
    return "the config's list", tuple(spec)


def _branch(events: Any, name: str, dataset: str, key: str, where: str) -> Any:
    if name not in events.fields:
        raise InputError(
            f"dataset {dataset!r}{where}: config key {key!r} needs the branch {name}, which the "
            "file lacks; leave the dataset out of theory.datasets"
        )
    return events[name]


def _named(names: Any, dataset: str, process: str) -> bool:
    return dataset in names or process in names


def _theory(output: AnalysisOutput, events: Any, block: Mapping[str, Any], dataset: str,
            process: str, where: str, variations: bool) -> None:  # fmt: skip
    """Add the ``theory`` block's weights to ``output``: with their variations when the run
    wants them (the nominal objects' run), else only the factor that is not 1 (top pT)."""
    found: dict[str, dict[str, Any]] = {}
    if block.get("scale") and variations:
        scale = scale_weights(_branch(events, "LHEScaleWeight", dataset, "theory.scale", where))
        found |= {f"qcd_{key}": factor for key, factor in scale.items()}
    if block.get("parton_shower") and variations:
        ps = parton_shower_weights(
            _branch(events, "PSWeight", dataset, "theory.parton_shower", where),
            block["parton_shower"],
        )
        found |= {"ps_isr": ps["isr"], "ps_fsr": ps["fsr"]}
    top = block.get("top_pt")
    if top and _named(top["datasets"], dataset, process):
        found["top_pt"] = top_pt_weights(
            _branch(events, "GenPart", dataset, "theory.top_pt", where), top["method"]
        )
    for name, factor in found.items():
        if name in output.weights.names or f"{name}Up" in output.weights.variations:
            raise ConfigError(
                f"config key 'theory': the analysis defines the weight {name!r} itself; "
                "remove it from the analysis or from the theory block"
            )
        varied = {"up": factor["up"], "down": factor["down"]} if variations else {}
        output.weights.add(name, factor["nominal"], **varied)


def with_blocks(
    config: Mapping[str, Any], dataset: str, analysis: Analysis, where: str = ""
) -> Analysis:
    """``analysis`` with the blocks the config turns on for ``dataset`` applied to its output
    (``where``: the file the events come from, in errors)."""
    flags = _flags(config, dataset)
    theory = config.get("theory") if theory_applies(config, dataset) else None
    top_pt = (theory or {}).get("top_pt")  # names its datasets: the spec holds the process
    process = config["datasets"][dataset].get("process", dataset) if top_pt else dataset
    where = f" (file {where!r})" if where else ""
    if flags is None and theory is None:
        return analysis

    def run(events: Any, context: Context) -> AnalysisOutput:
        output = analysis(events, context)
        if not isinstance(output, AnalysisOutput):
            return output  # the caller names what it returned
        if flags is not None:
            what, names = flags
            if MET_FILTERS in output.selection:
                raise ConfigError(
                    f"config key 'met_filters': the analysis defines the cut {MET_FILTERS!r} "
                    "itself; remove it from the analysis or the met_filters block"
                )
            try:
                mask = met_filter_mask(events, names)
            except MissingFlag as err:
                raise InputError(
                    f"dataset {dataset!r}{where}: {err}, which {what} (met_filters) requires; "
                    "older NanoAOD needs a list of its own: met_filters: [goodVertices, ...]"
                ) from None
            output.selection.add(MET_FILTERS, mask)
        if theory is not None:
            _theory(output, events, theory, dataset, process, where,
                    context.wants_weight_variations)  # fmt: skip
        return output

    return run
