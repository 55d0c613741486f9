"""The result of an analysis step: histograms (with ``region`` and ``systematic`` axes) and
cutflows of one dataset, or of a process once its datasets are summed; saved as UHI JSON.

A result file is JSON: ``{"checksum": "sha256:...", "format": "brewflow-result", "version": 2,
"dataset", "process", "is_data", "cutflows": {region: [cuts]}, "meta": {...},
"histograms": {name: <UHI hist>}}``. No pickle: any language with a JSON parser can read it.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import hist

from brewflow.results.documents import (
    DamagedFileError,
    NonFiniteError,
    read_document,
    regenerate,
    write_document,
)

CUTFLOW = "_cutflow"
"""The histogram of the weighted cutflow (axes ``region``, ``systematic``, ``passed``)."""
CUTFLOW_EVENTS = "_cutflow_events"
"""The histogram of the unweighted cutflow (event counts)."""
RESERVED_AXES = ("region", "systematic", "passed")
FORMAT = "brewflow-result"
VERSION = 2


@dataclass
class Result:
    """Histograms and cutflows of one dataset (or of a process, after stacking)."""

    dataset: str | None
    process: str
    is_data: bool
    histograms: MutableMapping[str, hist.Hist]
    cutflows: dict[str, list[str]]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def systematics(self) -> list[str]:
        """Systematic categories present (``nominal`` first)."""
        raw = _encoded(self.histograms, CUTFLOW)
        if raw is not None:  # read from the file's JSON: no histogram built
            return list(_axis(raw, "systematic")["categories"])
        return list(self.histograms[CUTFLOW].axes["systematic"])

    def project(self, histogram: str, region: str, systematic: str = "nominal") -> hist.Hist:
        """The 1D histogram of one region and systematic category."""
        return self.histograms[histogram][{"region": region, "systematic": systematic}]

    def cutflow(self, region: str, systematic: str = "nominal") -> dict[str, list]:
        """Per step (initial, then each cut): ``events``, ``sumw``, ``sumw2``."""
        n = len(self.cutflows[region])
        weighted = _counts(*self._passed(CUTFLOW, region, systematic), n)
        counts = _counts(*self._passed(CUTFLOW_EVENTS, region, systematic), n)
        return {
            "cuts": ["initial", *self.cutflows[region]],
            "events": counts["value"],
            "sumw": weighted["value"],
            "sumw2": weighted["variance"],
        }

    def _passed(self, name: str, region: str, systematic: str) -> tuple[Any, Any]:
        """``(values, variances or None)`` along ``passed`` of one region and systematic of a
        cutflow histogram; from the file's JSON while the histogram is not built (a table job
        then never imports ``hist``)."""
        raw = _encoded(self.histograms, name)
        if raw is None:
            return _view(self.histograms[name], region, systematic)
        index = []
        for axis, category in (("region", region), ("systematic", systematic)):
            categories = _axis(raw, axis)["categories"]
            if category not in categories:
                raise KeyError(f"histogram {name!r} has no {axis} {category!r}: {categories}")
            index.append(categories.index(category))
        order = [a["metadata"]["name"] for a in raw["axes"]]
        if order != list(RESERVED_AXES):
            raise ValueError(f"histogram {name!r} has axes {order}, not {list(RESERVED_AXES)}")
        storage = raw["storage"]
        values = np.asarray(storage["values"], dtype=np.float64)[index[0], index[1]]
        variances = storage.get("variances")
        if variances is not None:
            variances = np.asarray(variances, dtype=np.float64)[index[0], index[1]]
        return values, variances


def _encoded(histograms: Any, name: str) -> dict[str, Any] | None:
    return histograms.encoded(name) if isinstance(histograms, LazyHistograms) else None


def _axis(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in raw["axes"] if a["metadata"]["name"] == name)


def _view(h: hist.Hist, region: str, systematic: str) -> tuple[Any, Any]:
    view = h[{"region": region, "systematic": systematic}].view()
    if view.dtype.names:  # Weight storage
        return view["value"], view["variance"]
    return np.asarray(view), None


def cutflow_counts(h: hist.Hist, region: str, systematic: str, n_cuts: int) -> dict[str, list]:
    """Events, sum of weights and sum of squared weights passing each cutflow step.

    Step 0 is all events; step k counts events passing the first k cuts.
    """
    return _counts(*_view(h, region, systematic), n_cuts)


def _counts(value: Any, variance: Any, n_cuts: int) -> dict[str, list]:
    tail = lambda a: [float(x) for x in np.cumsum(a[::-1])[::-1][: n_cuts + 1]]  # noqa: E731
    out = {"value": tail(value)}
    if variance is not None:
        out["variance"] = tail(variance)
    return out


def check_finite(result: Result, what: str) -> None:
    """Raise :class:`NonFiniteError` naming the histogram, region and systematic of the first
    NaN or infinite bin of ``result`` (a NaN weight, or a NaN or infinite scale factor, would
    otherwise spread silently into every stack and plot)."""
    for name, h in result.histograms.items():
        view = h.view(flow=True)
        fields = view.dtype.names or (None,)
        for field_name in fields:
            values = view[field_name] if field_name else np.asarray(view)
            bad = ~np.isfinite(values)
            if bad.any():
                index = tuple(int(i[0]) for i in np.nonzero(bad))
                axes = {
                    a.name: a.value(i - 1 if a.traits.underflow else i)
                    for a, i in zip(h.axes, index, strict=True)
                    if a.name in ("region", "systematic")
                }
                where = ", ".join(f"{k} {v!r}" for k, v in axes.items())
                raise NonFiniteError(
                    f"{what}: histogram {name!r} ({where})"
                    f" has {int(bad.sum())} non-finite bin(s) ({values[index]}); a weight of the "
                    "analysis or a correction is NaN or infinite"
                )


def save(result: Result, path: str | Path) -> None:
    """Write a result file (deterministic: sorted keys, no timestamps); a NaN or infinite bin
    or number is refused (:class:`NonFiniteError`), never written."""
    check_finite(result, f"dataset {result.dataset or result.process!r} ({path})")
    document = {
        "format": FORMAT,
        "version": VERSION,
        "dataset": result.dataset,
        "process": result.process,
        "is_data": result.is_data,
        "cutflows": result.cutflows,
        "meta": result.meta,
        "histograms": dict(result.histograms),
    }
    write_document(path, document)


class LazyHistograms(MutableMapping[str, "hist.Hist"]):
    """The histograms of a loaded result, each built from its UHI JSON the first time it is
    used: a table job that reads the cutflows does not build every histogram of the file."""

    def __init__(self, encoded: dict[str, Any]) -> None:
        self._encoded = dict(encoded)
        self._built: dict[str, hist.Hist] = {}

    def __getitem__(self, name: str) -> hist.Hist:
        if name not in self._built:
            import hist

            self._built[name] = hist.Hist(_decode(self._encoded.pop(name)))
        return self._built[name]

    def encoded(self, name: str) -> dict[str, Any] | None:
        """The UHI JSON of histogram ``name`` while it is not built (else None)."""
        return self._encoded.get(name)

    def __setitem__(self, name: str, value: hist.Hist) -> None:
        self._encoded.pop(name, None)
        self._built[name] = value

    def __delitem__(self, name: str) -> None:
        if self._encoded.pop(name, None) is None:
            del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self._encoded, *self._built}))

    def __len__(self) -> int:
        return len(self._encoded) + len(self._built)


def _decode(value: Any) -> Any:
    """``uhi.io.json.object_hook`` applied as ``json.loads`` would: to every object, innermost
    first."""
    import uhi.io.json

    if isinstance(value, dict):
        return uhi.io.json.object_hook({k: _decode(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def load(path: str | Path) -> Result:
    """Read a result file written by :func:`save` (checksum verified)."""
    document = read_document(path, what="brewflow result")
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise DamagedFileError(
            f"{str(path)!r} is not a brewflow result file (format {FORMAT} v{VERSION}); "
            f"{regenerate(path)}"
        )
    return Result(
        dataset=document["dataset"],
        process=document["process"],
        is_data=document["is_data"],
        histograms=LazyHistograms(document["histograms"]),
        cutflows=document["cutflows"],
        meta=document["meta"],
    )
