"""correctionlib corrections, evaluated eagerly or inside the dask-awkward graph.

``correctionlib`` evaluates flat and jagged awkward arrays and dask-awkward arrays itself; this
module loads payloads with errors that list what is available, and turns pileup and b-tagging
scale factors into event weights with up/down variations (lepton scale factors:
:mod:`brewflow.leptonsf`).

Payload conventions followed (CMS POG JSON, schema v2): pileup weights take
``(NumTrueInteractions, "nominal"|"up"|"down")``; muon scale factors take
``(year, abseta, pt, "sf"|"systup"|"systdown")``; electron scale factors
``(year, "sf"|"sfup"|"sfdown", WorkingPoint, eta, pt)``; b-tagging shape scale factors
``(systematic, flavor, abseta, pt, discriminant)`` and fixed working points
``(systematic, method, working_point, flavor, abseta, pt)``.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import correctionlib
import numpy as np

from brewflow.arrays import lib
from brewflow.errors import BrewflowError

__all__ = [
    "BTAG_C_ONLY",
    "CorrectionError",
    "btag_shape_weights",
    "btag_wp_weights",
    "category_keys",
    "check_keys",
    "evaluate_by_name",
    "input_range",
    "load",
    "load_all",
    "pileup_weights",
]
BTAG_C_ONLY = ("cferr1", "cferr2")  # shape uncertainties for c jets; all others for b and light


class CorrectionError(BrewflowError, ValueError):
    """A payload or correction that cannot be used, named with what is available."""


@functools.lru_cache(maxsize=16)
def _payload(path: str, mtime_ns: int) -> Any:
    """A parsed payload, cached while the file is unchanged (large JERC files take ~1 s)."""
    try:
        return correctionlib.CorrectionSet.from_file(path)
    except Exception as err:  # correctionlib raises several types for malformed payloads
        raise CorrectionError(f"cannot read correction payload {path!r}: {err}") from err


def load(path: str | Path, name: str) -> Any:
    """The correction (or compound correction) ``name`` of the payload at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise CorrectionError(f"correction payload {str(path)!r} does not exist")
    source = (str(path.resolve()), path.stat().st_mtime_ns)
    corrections = _payload(*source)
    if name in corrections.compound:
        return _named(corrections.compound[name], *source, name)
    available = [*corrections.keys(), *corrections.compound.keys()]
    if name not in available:
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise CorrectionError(
            f"no correction {name!r} in {str(path)!r}{hint}; available: {', '.join(available)}"
        )
    correction = _named(corrections[name], *source, name)
    _SOURCES[id(correction)] = (str(path), correction)  # keeps it alive: the id stays unique
    return correction


def _named(correction: Any, path: str, mtime_ns: int, name: str) -> Any:
    """``correction`` with its dask token: its payload file (path, modification time) and name.
    dask otherwise tokenizes an argument of a lazy operation by pickling it, and a
    correctionlib object pickles (and unpickles) its whole payload: ~4 s for a b-tag payload
    in every graph that passes one to ``map_partitions``."""
    correction._brewflow_token = ("correctionlib", type(correction).__name__, path, mtime_ns, name)
    return correction


def _tokenize(correction: Any) -> Any:
    token = getattr(correction, "_brewflow_token", None)
    if token is not None:
        return token
    from dask.tokenize import normalize_object  # one loaded otherwise: dask's way

    return normalize_object(correction)


def _register_tokens() -> None:
    from dask.base import normalize_token

    for kind in (correctionlib.highlevel.Correction, correctionlib.highlevel.CompoundCorrection):
        normalize_token.register(kind)(_tokenize)


_register_tokens()


_SOURCES: dict[int, tuple[str, Any]] = {}  # id(correction) -> (payload path, correction)


def _nodes(path: str, name: str) -> list[dict]:
    """Every node (dict) of correction ``name``'s data in the payload at ``path``."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as handle:
        document = json.load(handle)
    found: list[dict] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for correction in document.get("corrections", []):
        if correction["name"] == name:
            walk(correction["data"])
    return found


def _category_keys(path: str, name: str, input_name: str) -> list[str]:
    """The keys of every category node on ``input_name`` of correction ``name`` in ``path``."""
    return sorted({str(item["key"]) for node in _nodes(path, name)
                   if node.get("nodetype") == "category" and node.get("input") == input_name
                   for item in node["content"]})  # fmt: skip


def input_range(correction: Any, input_name: str) -> tuple[float, float]:
    """The lowest and highest bin edge of a real input of ``correction`` (loaded with
    :func:`load`) over its binning nodes; ``(-inf, inf)`` where it has none."""
    path = _SOURCES.get(id(correction), ("", None))[0]
    low, high = np.inf, -np.inf
    for node in _nodes(path, correction.name) if path else []:
        if node.get("nodetype") == "binning" and node.get("input") == input_name:
            edges = node["edges"]
            if isinstance(edges, dict):  # uniform binning
                edges = [edges["low"], edges["high"]]
            low, high = min(low, float(edges[0])), max(high, float(edges[-1]))
    return (low, high) if low < high else (-np.inf, np.inf)


def category_keys(correction: Any, input_name: str) -> list[str]:
    """The keys a string input of ``correction`` (loaded with :func:`load`) accepts."""
    path = _SOURCES.get(id(correction), ("", None))[0]
    return _category_keys(path, correction.name, input_name) if path else []


def check_keys(correction: Any, **keys: str | int) -> None:
    """Fail now, with the accepted values, if a string input (e.g. year, working point) is not
    among the payload's categories. Give every string input; numeric ones get a placeholder.
    Cheap: one scalar evaluation."""
    names = [i.name for i in correction.inputs]
    unknown = [k for k in keys if k not in names]
    if unknown:
        raise CorrectionError(f"correction {correction.name!r} has no input {unknown}: {names}")
    args = [keys.get(i.name, 0 if i.type == "int" else 1.0) for i in correction.inputs]
    try:
        correction.evaluate(*args)
    except (IndexError, RuntimeError) as err:  # correctionlib's lookup errors
        message = str(err)
        if "Category" not in message:
            return  # e.g. a numeric placeholder outside a binning: not what is checked here
        index = int(message.split("argument")[1].split()[0])
        input_name = names[index]
        path, _ = _SOURCES.get(id(correction), (None, None))
        accepted = _category_keys(path, correction.name, input_name) if path else []
        raise CorrectionError(
            f"correction {correction.name!r}: {input_name} = {args[index]!r} is not in the "
            f"payload{f' {path!r}' if path else ''}; accepted: {', '.join(accepted) or '?'}"
        ) from None


def load_all(specs: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """``{key: correction}`` from config entries ``{key: {"file": ..., "name": ...}}``."""
    return {key: load(spec["file"], spec["name"]) for key, spec in specs.items()}


def evaluate_by_name(correction: Any, values: Mapping[str, Any]) -> Any:
    """Evaluate ``correction`` taking each input by name from ``values``."""
    names = [i.name for i in correction.inputs]
    missing = [n for n in names if n not in values]
    if missing:
        raise CorrectionError(
            f"correction {correction.name!r} needs input(s) {missing}; brewflow provides "
            f"{sorted(values)}"
        )
    return correction.evaluate(*(values[n] for n in names))


def pileup_weights(correction: Any, n_true_int: Any) -> dict[str, Any]:
    """Per-event pileup weights ``{"nominal", "up", "down"}`` from ``Pileup_nTrueInt``."""
    return {v: correction.evaluate(n_true_int, v) for v in ("nominal", "up", "down")}


def btag_shape_weights(
    correction: Any, jets: Any, systematics: Sequence[str] = (), *, jes: Any = None
) -> dict[str, Any]:
    """Event weights from b-tag shape (iterative-fit) scale factors: the product over ``jets``.

    Returns ``{"nominal": ..., "<syst>Up": ..., "<syst>Down": ...}`` for each name in
    ``systematics`` (e.g. ``"hf"``, ``"lf"``, ``"cferr1"``: the payload's
    ``up_<syst>``/``down_<syst>``). ``cferr*`` vary c jets only; all others vary b and light
    jets, c jets keeping the central value (the CMS prescription). ``jets`` need ``pt``,
    ``eta``, ``hadronFlavour`` and ``btagDeepFlavB``, inside the payload's range
    (pT > 20 GeV, |eta| < 2.5).

    ``jes`` is the analysis's ``context.jes``: on JES-varied jets the "nominal" SF of b and
    light jets is the payload's ``up_jes``/``down_jes<Source>`` instead of ``central``, as CMS
    prescribes to correlate the b-tag shape with JES (c jets keep ``central``).
    """
    ak = lib(jets.pt)
    flavor = jets.hadronFlavour
    abseta, discriminant = np.abs(jets.eta), jets.btagDeepFlavB

    def sf(systematic: str, flav: Any) -> Any:
        return correction.evaluate(systematic, flav, abseta, jets.pt, discriminant)

    for name in systematics:
        check_keys(correction, systematic=f"up_{name}", flavor=4 if name in BTAG_C_ONLY else 5)
    central = _btag_central(correction, jes, flavor, abseta, jets.pt, discriminant)
    out = {"nominal": ak.prod(central, axis=1)}
    is_c = flavor == 4
    for name in systematics:
        c_only = name in BTAG_C_ONLY
        varies = is_c if c_only else ~is_c
        # evaluate the variation only where the payload defines it (others: any valid flavour)
        flav = ak.where(varies, flavor, 4 if c_only else 0)
        for direction in ("up", "down"):
            varied = ak.where(varies, sf(f"{direction}_{name}", flav), central)
            out[f"{name}{direction.title()}"] = ak.prod(varied, axis=1)
    return out


def _btag_central(correction: Any, jes: Any, *inputs: Any) -> Any:
    """Per jet, the SF the event weight is the product of: ``central``, or on JES-varied jets
    (``jes``: :class:`~brewflow.analysis.JESVariation`, or ``PerBlock`` of them when object
    variations are stacked) the JES-correlated one for b and light jets. ``inputs``: flavour,
    abs(eta), pt, discriminant."""
    from brewflow.analysis import PerBlock

    if not isinstance(jes, PerBlock):
        name = None if jes is None else jes.btag_systematic
        if name is not None:
            check_keys(correction, systematic=name, flavor=5)
        return _jes_correlated(correction, name, *inputs)
    names = tuple(None if v is None else v.btag_systematic for v in jes.values)
    for name in {n for n in names if n}:
        check_keys(correction, systematic=name, flavor=5)
    import dask_awkward as dak

    return dak.map_partitions(
        _btag_block, jes.codes, *inputs, correction, names, label="btag-sf-per-variation"
    )


def _jes_correlated(
    correction: Any, name: str | None, flavor: Any, abseta: Any, pt: Any, discriminant: Any
) -> Any:
    """Per jet: the payload's ``name`` (e.g. ``up_jes``) for b and light jets, ``central`` for
    c jets (and for every jet when ``name`` is None). Eager or lazy."""
    central = correction.evaluate("central", flavor, abseta, pt, discriminant)
    if name is None:
        return central
    ak = lib(flavor)
    light_or_b = flavor != 4
    varied = correction.evaluate(name, ak.where(light_or_b, flavor, 0), abseta, pt, discriminant)
    return ak.where(light_or_b, varied, central)


def _btag_block(
    codes: Any, flavor: Any, abseta: Any, pt: Any, discriminant: Any, correction: Any,
    names: tuple[str | None, ...],
) -> Any:  # fmt: skip
    """One partition of stacked object variations (one variation): its jets' SFs."""
    from brewflow.arrays import metadata_pass, typetracer_like

    if metadata_pass(flavor, codes, abseta, pt, discriminant):
        return typetracer_like([[1.0]])
    code = int(codes[0]) if len(codes) else 0
    if len(codes) and np.any(np.asarray(codes) != code):
        raise ValueError("a partition of stacked object variations mixes variations")
    return _jes_correlated(correction, names[code], flavor, abseta, pt, discriminant)


def btag_wp_weights(
    correction: Any,
    jets: Any,
    tagged: Any,
    efficiency: Any,
    working_point: str,
    *,
    methods: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Event weights for a fixed working point (CMS "method 1a").

    ``w = prod_tagged(SF) * prod_untagged((1 - SF eff) / (1 - eff))`` with ``eff`` the MC
    tagging efficiency of each jet (``efficiency``, same shape as ``jets``), ``tagged`` the
    per-jet decision at ``working_point`` (``"L"``, ``"M"``, ``"T"``). Scale factors come from
    ``methods[flavour]`` (default ``comb`` for b and c jets, ``incl`` for light jets), with
    ``central``/``up``/``down``.
    """
    ak = lib(jets.pt)
    methods = dict(methods or {5: "comb", 4: "comb", 0: "incl"})
    flavor = jets.hadronFlavour
    abseta = np.abs(jets.eta)
    out = {}
    for key, systematic in (("nominal", "central"), ("up", "up"), ("down", "down")):
        sf = None
        for flav, method in methods.items():
            value = correction.evaluate(systematic, method, working_point, flav, abseta, jets.pt)
            sf = value if sf is None else ak.where(flavor == flav, value, sf)
        factor = ak.where(tagged, sf, (1.0 - sf * efficiency) / (1.0 - efficiency))
        out[key] = ak.prod(factor, axis=1)
    return out
