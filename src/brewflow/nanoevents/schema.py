"""The NanoAOD schema: branches grouped into records (the awkward form) and their behaviours.

Branches are grouped by the NanoAOD naming convention, as coffea's ``NanoAODSchema`` does:

- ``nMuon`` + jagged ``Muon_*``  -> ``events.Muon``, a list of records per event whose offsets
  come from the ``nMuon`` counter alone (so touching the structure reads one small branch);
- flat ``MET_pt``, ``MET_phi``   -> ``events.MET``; ``HLT_*`` -> ``events.HLT``; ``Flag_*`` ...;
- anything else (``run``, ``genWeight``, ``LHEScaleWeight``) stays a top-level field.

Records with ``pt, eta, phi, mass`` get ``vector``'s ``Momentum4D`` behaviour (``pt, eta, phi``
-> ``Momentum3D``, ``pt, phi`` -> ``Momentum2D``), so ``(a + b).mass`` and ``a.deltaR(b)`` work
on both paths.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np
import vector

__all__ = [
    "SEP",
    "behavior",
    "branch_of",
    "buffers_of",
    "counters",
    "form_keys",
    "nanoaod_form",
    "record_name",
]

log = logging.getLogger(__name__)


SEP = "!"  # form keys are "<branch>!<role>"; buffer keys "<form key>-<attribute>"
_VECTOR_NAMES = (
    ({"pt", "eta", "phi", "mass"}, "Momentum4D"),
    ({"pt", "eta", "phi"}, "Momentum3D"),
    ({"pt", "phi"}, "Momentum2D"),
)


class _DeltaMethods:
    """snake_case spellings of vector's angular distances (coffea's names)."""

    def delta_phi(self, other: Any) -> Any:
        """Signed azimuthal difference in (-pi, pi]."""
        return self.deltaphi(other)  # type: ignore[attr-defined]  # vector's method


class _DeltaMethods3D(_DeltaMethods):
    def delta_eta(self, other: Any) -> Any:
        """Pseudorapidity difference."""
        return self.deltaeta(other)  # type: ignore[attr-defined]  # vector's method

    def delta_r(self, other: Any) -> Any:
        """sqrt(delta_eta^2 + delta_phi^2)."""
        return self.deltaR(other)  # type: ignore[attr-defined]  # vector's method


_V = vector.backends.awkward
_BEHAVIOR = dict(_V.behavior)
for _name, _classes, _mixin in (
    ("Momentum2D", (_V.MomentumRecord2D, _V.MomentumArray2D), _DeltaMethods),
    ("Momentum3D", (_V.MomentumRecord3D, _V.MomentumArray3D), _DeltaMethods3D),
    ("Momentum4D", (_V.MomentumRecord4D, _V.MomentumArray4D), _DeltaMethods3D),
):
    _record, _array = _classes
    _BEHAVIOR[_name] = type(_record.__name__, (_mixin, _record), {})
    _BEHAVIOR["*", _name] = type(_array.__name__, (_mixin, _array), {})


def behavior() -> dict:
    """The awkward behaviours of NanoAOD records: vector's, plus ``delta_r``/``delta_phi``."""
    return _BEHAVIOR


def record_name(fields: Sequence[str]) -> str | None:
    names = set(fields)
    for required, name in _VECTOR_NAMES:
        if required <= names:
            return name
    return None


def _numpy_form(content: ak.forms.Form, key: str) -> ak.forms.NumpyForm:
    if not isinstance(content, ak.forms.NumpyForm) or content.inner_shape:
        raise TypeError(f"branch {key.split(SEP)[0]!r} is not a flat numeric column")
    return ak.forms.NumpyForm(content.primitive, form_key=key)


def nanoaod_form(base: ak.forms.RecordForm) -> ak.forms.RecordForm:
    """Map the flat per-branch form of a NanoAOD tree to the grouped NanoAOD form."""
    flat: dict[str, ak.forms.Form] = {}
    jagged: dict[str, ak.forms.Form] = {}
    for name, content in zip(base.fields, base.contents, strict=True):
        if isinstance(content, ak.forms.NumpyForm) and not content.inner_shape:
            flat[name] = content
        elif isinstance(content, ak.forms.ListOffsetForm | ak.forms.ListForm) and isinstance(
            content.content, ak.forms.NumpyForm
        ):
            jagged[name] = content.content
        else:
            log.debug("skipping branch %s of unsupported type %s", name, content)

    collections: dict[str, dict[str, ak.forms.Form]] = {}
    plain_lists: dict[str, ak.forms.Form] = {}
    for name, content in jagged.items():
        prefix, _, field = name.partition("_")
        if field and f"n{prefix}" in flat:
            collections.setdefault(prefix, {})[field] = content
        else:
            plain_lists[name] = content

    groups: dict[str, dict[str, ak.forms.Form]] = {}
    top: dict[str, ak.forms.Form] = {}
    for name, content in flat.items():
        if name.startswith("n") and name[1:] in collections:
            continue  # the counter becomes the collection's offsets
        prefix, _, field = name.partition("_")
        if field and prefix not in collections and prefix not in flat:
            groups.setdefault(prefix, {})[field] = content
        else:
            top[name] = content

    fields: list[str] = []
    contents: list[ak.forms.Form] = []
    for name, content in top.items():
        fields.append(name)
        contents.append(_numpy_form(content, f"{name}{SEP}data"))
    for name, content in plain_lists.items():
        fields.append(name)
        contents.append(
            ak.forms.ListOffsetForm(
                "i64", _numpy_form(content, f"{name}{SEP}content"), form_key=f"{name}{SEP}list"
            )
        )
    for prefix, members in groups.items():
        fields.append(prefix)
        contents.append(_record_form(prefix, members, "data"))
    for prefix, members in collections.items():
        fields.append(prefix)
        record = _record_form(prefix, members, "content")
        contents.append(ak.forms.ListOffsetForm("i64", record, form_key=f"n{prefix}{SEP}counts"))
    return ak.forms.RecordForm(contents, fields)


def _record_form(prefix: str, members: Mapping[str, Any], role: str) -> ak.forms.RecordForm:
    """Record of the ``<prefix>_<field>`` branches; vector behaviour where the fields allow."""
    name = record_name(list(members))
    return ak.forms.RecordForm(
        [_numpy_form(c, f"{prefix}_{f}{SEP}{role}") for f, c in members.items()],
        list(members),
        parameters={"__record__": name} if name else {},
    )


def branch_of(form_key: str) -> str:
    return form_key.split(SEP, 1)[0]


def buffers_of(arrays: Mapping[str, ak.Array], form_keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The buffers of the given form keys from per-branch arrays read with uproot."""
    out: dict[str, np.ndarray] = {}
    for form_key in form_keys:
        branch, role = form_key.split(SEP, 1)
        array = arrays[branch]
        if role == "data":
            out[f"{form_key}-data"] = ak.to_numpy(array)
        elif role == "counts":
            counts = ak.to_numpy(array).astype(np.int64)
            offsets = np.zeros(len(counts) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            out[f"{form_key}-offsets"] = offsets
        else:
            layout = ak.to_layout(array)
            offsets = np.asarray(layout.offsets.data, dtype=np.int64)
            if role == "list":
                out[f"{form_key}-offsets"] = offsets - offsets[0]
            else:
                out[f"{form_key}-data"] = np.asarray(layout.content.data)[offsets[0] : offsets[-1]]
    return out


def form_keys(form: ak.forms.Form) -> dict[str, list[str]]:
    """Branch name -> the form keys (in this form) whose buffers it fills."""
    out: dict[str, list[str]] = {}

    def visit(node: ak.forms.Form) -> None:
        if node.form_key is not None:
            out.setdefault(branch_of(node.form_key), []).append(node.form_key)
        if isinstance(node, ak.forms.RecordForm):
            for child in node.contents:
                visit(child)
        elif hasattr(node, "content"):
            visit(node.content)

    visit(form)
    return out


def counters(form: ak.forms.RecordForm) -> dict[str, str]:
    """Branch of a collection field -> its counter branch (``Muon_pt`` -> ``nMuon``)."""
    out = {}
    for content in form.contents:
        if isinstance(content, ak.forms.ListOffsetForm) and content.form_key.endswith("!counts"):
            for branch in form_keys(content.content):
                out[branch] = branch_of(content.form_key)
    return out
