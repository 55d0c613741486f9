"""Each job kind's view of the config (:mod:`brewflow.config.specs` hashes it into the job's
spec): a projection per kind picks, from the validated config, the part its job reads, as a
:class:`View` that refuses a lookup outside it (:class:`SpecError`). Execution
:data:`SETTINGS` are readable by every job and hashed by none.

Standard library only: the Snakefile imports it to plan a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from brewflow.config.model import (
    BLOCKS,
    era_of,
    eras,
)
from brewflow.config.systematics import (
    applicable_systematics,
)

__all__ = ["KINDS", "SETTINGS", "Projection", "SpecError", "View"]

SETTINGS = ("threads", "scheduler", "stall_timeout", "retries", "remote", "resources",
            "persist_checkpoints", "fuse_systematics")  # fmt: skip
"""Top-level keys every job may read that no fingerprint holds: how a job runs, not what it
makes (the results are the same, tested bin for bin)."""


class SpecError(RuntimeError):
    """A job read a config key its spec does not hold: a bug in brewflow (the job's
    projection in :mod:`brewflow.config.specs` must declare it)."""


class View(dict):
    """A read-only part of a projected config that knows which keys its projection declared
    (``declared`` None: every key, as for a section taken whole)."""

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        declared: Iterable[str] | None = None,
        where: str = "",
    ) -> None:
        super().__init__(data or {})
        self._declared = None if declared is None else frozenset(declared)
        self._where = where

    def _check(self, key: Any) -> None:
        if self._declared is not None and key not in self._declared:
            where = f"{self._where}.{key}" if self._where else str(key)
            raise SpecError(
                f"a job read config key {where!r}, which its spec does not hold; this is a "
                "bug in brewflow (brewflow.config.specs), please report it"
            )

    def __getitem__(self, key: Any) -> Any:
        self._check(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._check(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._check(key)
        return super().__contains__(key)

    def _readonly(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a job's config is read-only")

    __setitem__ = __delitem__ = _readonly
    pop = popitem = setdefault = update = clear = _readonly

    def __reduce__(self) -> Any:
        return (View, (dict(self), self._declared, self._where))

    def __deepcopy__(self, memo: dict) -> View:
        import copy

        return View({k: copy.deepcopy(v, memo) for k, v in dict.items(self)}, self._declared,
                     self._where)  # fmt: skip


def _pick(mapping: Mapping[str, Any], keys: Iterable[str], where: str) -> View:
    """The ``keys`` of ``mapping`` (those present), declaring all of them."""
    keys = list(keys)
    return View({k: mapping[k] for k in keys if k in mapping}, keys, where)


def _each(
    mapping: Mapping[str, Any], keys: Iterable[str], where: str, names: Iterable[str] | None = None
) -> View:
    """``names`` (default all) of a named section (datasets, regions, ...), each projected to
    ``keys``. The job sees the section as holding only those names: for it, another one does
    not exist (a lookup gives a ``KeyError``, ``get`` its default)."""
    keys = list(keys)
    chosen = list(mapping) if names is None else list(names)
    return View({n: _pick(mapping[n], keys, f"{where}.{n}") for n in chosen}, None, where)


READING = ("files", "redirectors", "is_data", "era", "tree", "jec", "lumi_mask", "on_bad_file",
           "generator")  # fmt: skip
"""What reading a dataset's events depends on (``generator``: the demo's files, written later)."""
STYLE = ("label", "color", "process", "is_data", "era")
"""What drawing or tabulating a dataset depends on."""
BINNING = ("variable", "bins", "start", "stop", "edges", "regions", "blind")
"""What filling a histogram depends on (not its label, log scale or drawing)."""
SYSTEMATIC = ("type", "source", "up", "down", "datasets", "correlated", "of", "set")
"""What a systematic is (not its description)."""
DOES = ("type", "source", "up", "down", "datasets", "of", "set")
"""What a systematic does to the events and weights (not which nuisance it is: correlated)."""


def _systematics(config: Mapping, dataset: str, keys: Iterable[str] = SYSTEMATIC) -> View:
    """The systematics that apply to ``dataset``, projected to ``keys`` (a ``datasets`` list
    to ``[dataset]``: which other datasets a systematic applies to is not this job's input)."""
    names = applicable_systematics(config, dataset)
    out = _each(config["systematics"], keys, "systematics", names)
    for name in names:
        node = out[name]
        if "datasets" in node:
            dict.__setitem__(node, "datasets", [dataset])
    return out


def _eras(config: Mapping, keys: Iterable[str], names: Iterable[str | None] | None = None) -> Any:
    """The ``eras`` section with ``names`` (default all) projected to ``keys``; absent without
    eras."""
    if not config.get("eras"):
        return None
    chosen = [e for e in (eras(config) if names is None else names) if e is not None]
    return _each(config["eras"], keys, "eras", chosen)


def _top(config: Mapping, parts: Mapping[str, Any], whole: Iterable[str] = ()) -> View:
    """A projected config: ``parts`` (None values left out, still declared), the keys
    ``whole`` taken as they are, and the execution :data:`SETTINGS`."""
    data = {k: v for k, v in parts.items() if v is not None}
    data |= {k: config[k] for k in whole if k in config}
    declared = [*parts, *whole, *SETTINGS]
    return View({**data, **{k: config[k] for k in SETTINGS if k in config}}, declared)


def _reading(config: Mapping, dataset: str) -> dict[str, Any]:
    """What every job that reads ``dataset``'s events reads."""
    return {"datasets": _each(config["datasets"], READING, "datasets", [dataset])}


def _analysis(config: Mapping, dataset: str) -> dict[str, Any]:
    """What running the analysis on ``dataset`` reads: its reading keys, the analysis and its
    options, the regions' cuts and the histograms' binnings (and, for data, the blinding), its
    era's corrections, jets, MET filters and options, the theory weights, its systematics, the
    models."""
    era = era_of(config, dataset)
    blinding = ("blind",) if config["datasets"][dataset]["is_data"] else ()  # MC: never blinded
    binning = tuple(k for k in BINNING if k != "blind") + blinding
    is_data = config["datasets"][dataset]["is_data"]
    theory = None if is_data else config.get("theory")  # data never get theory weights
    by_name = theory is not None and ("datasets" in theory or "top_pt" in theory)  # by process
    keys = (*READING, *(("process",) if by_name else ()))
    datasets = _each(config["datasets"], keys, "datasets", [dataset])
    return {
        "datasets": datasets,
        "analysis": config["analysis"],
        "regions": _each(config["regions"], ("cuts", *blinding), "regions"),
        "histograms": _each(config["histograms"], binning, "histograms"),
        "eras": _eras(config, ("corrections", *BLOCKS, "options", "lumi_mask"), [era]),
        "corrections": config.get("corrections"),
        **{key: config.get(key) for key in BLOCKS},
        "theory": theory,
        "systematics": _systematics(config, dataset, DOES),
        "models": config.get("models"),
        "step_size": config["step_size"],
        "tree": config["tree"],
        "on_bad_file": config["on_bad_file"],
        "stack_object_variations": config["stack_object_variations"],
        "events_per_job": config["events_per_job"],
    }


def _generate(config: Mapping) -> View:
    generated = [n for n, d in config["datasets"].items() if "generator" in d]
    datasets = _each(config["datasets"], READING, "datasets", generated)
    parts = {"datasets": datasets, "eras": _eras(config, ("luminosity", "lumi_mask")),
             "luminosity": config.get("luminosity"),
             "generate": config.get("generate")}  # fmt: skip
    return _top(config, parts)


def _preprocess(config: Mapping, dataset: str) -> View:
    parts = {**_reading(config, dataset), "step_size": config["step_size"],
             "tree": config["tree"], "on_bad_file": config["on_bad_file"]}  # fmt: skip
    return _top(config, parts)


def _analyze(config: Mapping, dataset: str) -> View:
    return _top(config, _analysis(config, dataset))


def _skim(config: Mapping, skim: str, dataset: str) -> View:
    skims = _each(config["skims"], ("region", "columns", "variables", "datasets", "format"),
                  "skims", [skim])  # fmt: skip
    parts = {**_analysis(config, dataset), "systematics": None}  # nominal objects only
    return _top(config, {**parts, "skims": skims})


def _scale(config: Mapping, dataset: str) -> View:
    era = era_of(config, dataset)
    keys = ("xsec", "allow_partial", "is_data", "era", "process")
    parts = {
        "datasets": _each(config["datasets"], keys, "datasets", [dataset]),
        "eras": _eras(config, ("luminosity",), [era]),
        "luminosity": None if era else config["luminosity"],
        "systematics": _systematics(
            config, dataset, ("type", "datasets", "correlated", "of", "set")
        ),
    }
    return _top(config, parts)


def _regions(config: Mapping, labelled: Iterable[str] = ()) -> View:
    """Every region's blinding (what data the outputs may show), and the labels of the
    regions ``labelled`` (those an output shows)."""
    labelled = set(labelled)
    regions = config["regions"]
    return View({name: _pick(spec, ("blind", "label") if name in labelled else ("blind",),
                              f"regions.{name}") for name, spec in regions.items()},
                 None, "regions")  # fmt: skip


def _histograms(config: Mapping, whole: Iterable[str] = ()) -> View:
    """Every histogram's variable, regions and window (blinding; where it is filled), and the
    histograms ``whole`` (those an output draws) as they are."""
    whole = set(whole)
    keys = ("variable", "regions", "blind")
    return View({name: spec if name in whole else _pick(spec, keys, f"histograms.{name}")
                  for name, spec in config["histograms"].items()}, None, "histograms")  # fmt: skip


def _filled_in(config: Mapping, histogram: str) -> list[str]:
    return list(config["histograms"][histogram].get("regions") or config["regions"])


def _cutflow(config: Mapping, region: str, era: str | None = None) -> View:
    parts = {"datasets": _each(config["datasets"], ("is_data", "era"), "datasets"),
             "eras": _eras(config, ("label",), [era]), "regions": _regions(config),
             "histograms": _histograms(config), "searches": _hypotheses(config)}  # fmt: skip
    return _top(config, parts)


def _shown(
    config: Mapping, regions: Iterable[str], histograms: Iterable[str],
    eras: Iterable[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What a figure of ``histograms`` in ``regions`` (of ``eras``, default all) reads: the
    datasets' styles, the eras' labels, luminosities and energies, the regions' blinding and
    the labels of ``regions``, the histograms' blinding and the definitions of
    ``histograms``."""
    return {
        "datasets": _each(config["datasets"], STYLE, "datasets"),
        "eras": _eras(config, ("label", "luminosity", "energy"), eras),
        "luminosity": config.get("luminosity"),
        "energy": config.get("energy"),
        "regions": _regions(config, regions),
        "histograms": _histograms(config, histograms),
    }


def _plot(
    config: Mapping, region: str, histogram: str | None = None, era: str | None = None
) -> View:
    drawn = [h for h in config["histograms"] if histogram in (None, h)
             and region in _filled_in(config, h)]  # fmt: skip
    parts = _shown(config, [region], drawn, None if era is None else [era])
    parts["searches"] = _hypotheses(config)  # their signals: lines, not stacked
    if era is None and config["plots"]["systematics"]:  # the pages name each nuisance
        parts["systematics"] = _each(config["systematics"], (*SYSTEMATIC, "description"),
                                     "systematics")  # fmt: skip
    return _top(config, parts, whole=("plots",))


def _hypotheses(config: Mapping) -> View:
    """The searches' signal hypotheses (which processes are drawn and fitted apart; not their
    masses) and histograms (the regions whose plots draw them)."""
    return View({n: View({"signals": list(spec["signals"]), "histogram": spec["histogram"]},
                           ["signals", "histogram"], f"searches.{n}")
                  for n, spec in config.get("searches", {}).items()}, None, "searches")  # fmt: skip


def _shapes(config: Mapping, histogram: str) -> View:
    parts = {"datasets": _each(config["datasets"], ("is_data", "era", "process"), "datasets"),
             "eras": _eras(config, ()), "regions": _regions(config),
             "histograms": _histograms(config), "searches": _hypotheses(config)}  # fmt: skip
    return _top(config, parts, whole=("shapes",))


def _fit(config: Mapping, histogram: str) -> View:
    parts = _shown(config, _filled_in(config, histogram), [histogram])
    return _top(config, parts, whole=("fit", "plots"))


def _search(config: Mapping, search: str) -> View:
    """What a search reads: the datasets' eras and cross sections, the eras' luminosities (its
    plot's label), blinding, its histogram, every search's hypotheses and itself whole, the
    plots' formats and label (not the data/MC plots' styles)."""
    signals = config["searches"][search]["signals"]
    datasets = View({n: _pick(d, ("is_data", "era", "process",
                                   *(("xsec",) if d.get("process", n) in signals else ())),
                               f"datasets.{n}")
                      for n, d in config["datasets"].items()}, None, "datasets")  # fmt: skip
    parts = {"datasets": datasets,
             "eras": _eras(config, ("label", "luminosity", "energy")),
             "luminosity": config.get("luminosity"), "energy": config.get("energy"),
             "regions": _regions(config), "histograms": _histograms(config),
             "plots": _pick(config["plots"], ("formats", "label"), "plots")}  # fmt: skip
    hypotheses = _hypotheses(config)  # all signals (apart from the backgrounds), this one whole
    dict.__setitem__(hypotheses, search, config["searches"][search])
    parts["searches"] = hypotheses
    return _top(config, parts)


def _hepdata(config: Mapping) -> View:
    """What the HEPData record reads: what its figures show (every region and histogram, the
    datasets' styles, the eras' labels, luminosities and energies), the searches, the fits and
    plots settings and the ``hepdata`` block."""
    parts = _shown(config, config["regions"], config["histograms"])
    parts["searches"] = View(dict(config.get("searches", {})), None, "searches")
    return _top(config, parts, whole=("hepdata", "fit", "plots"))


def _summary(config: Mapping) -> View:
    parts = {"datasets": _each(config["datasets"], ("is_data", "era"), "datasets"),
             "eras": _eras(config, ()),
             "systematics": _each(config["systematics"], (*SYSTEMATIC, "description"),
                                  "systematics")}  # fmt: skip
    return _top(config, parts)


Projection = Callable[..., View]

KINDS: dict[str, tuple[Projection, bool]] = {
    "generate": (_generate, False),
    "preprocess": (_preprocess, False),
    "analyze": (_analyze, True),
    "skim": (_skim, True),
    "scale": (_scale, False),
    "cutflow": (_cutflow, False),
    "plot": (_plot, False),
    "shapes": (_shapes, False),
    "fit": (_fit, False),
    "search": (_search, False),
    "hepdata": (_hepdata, False),
    "summary": (_summary, False),
}
"""Job kind -> (its projection, whether it runs the analysis code)."""
