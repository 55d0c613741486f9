"""NanoAOD RNTuples in the layout CMSSW writes, seen under NanoAOD's flat branch names.

CMSSW's RNTuple output module (cms-sw/cmssw pull requests 33825, 48071, 51832) groups what a
TTree NanoAOD spreads over flat branches:

- an object table is an untyped collection of records: ``Muon`` holds ``pt``, ``eta``, ...
  per muon, and there is no ``nMuon`` field (the collection's offsets count the muons);
- a singleton table is an untyped record: ``MET`` holds ``pt``, ``phi``;
- the trigger and filter bits are records of booleans, one per prefix: ``HLT.IsoMu24``,
  ``Flag.goodVertices``, ``L1.SingleMu22``; a path that is not ``<prefix>_<rest>``
  (``HLTriggerFinalPath``) keeps its whole name as the member, and as its flat name;
- top-level projections (``Muon_pt``, ``HLT_IsoMu24``) may repeat members under flat names.

:func:`layout` maps every flat name (``nMuon``, ``Muon_pt``, ``MET_pt``, ``HLT_IsoMu24``,
``run``) to the member it is read from, so everything above (:mod:`.trees`) reads such a file
with the same names, forms and column projection as a TTree: a member of a collection reads
that member's column (and the collection's offsets); a lone counter reads the narrowest member.
A name present both grouped and as a top-level field (a projection) is read from the group. A
top-level list field without a counter gets one, as in a TTree (``LHEPdfWeight``:
``nLHEPdfWeight``; ``Foo_bar``: ``nFoo``, counted through the first such field). An RNTuple
with flat fields only (as uproot writes a TTree's branches) maps each name to itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import awkward as ak
import numpy as np

__all__ = ["TRIGGER_GROUPS", "Flat", "form", "layout", "read"]

TRIGGER_GROUPS = ("HLT", "Flag", "L1")  # the records of trigger and filter bits
COUNTER = "int32"  # NanoAOD's n<Collection> branches (Int_t since NanoAOD v10)


class Flat(NamedTuple):
    """Where a flat name is read from: the top-level ``field`` and its ``member`` (None: the
    field itself); ``counter``: the number of items of the collection ``field`` (read through
    ``member``); ``form``: the form of the flat branch (no form keys)."""

    field: str
    member: str | None
    counter: bool
    form: ak.forms.Form


class _Known(NamedTuple):
    """What is kept of an open ntuple: a reference to it, its layout, and the field id of each
    of its keys (``Muon.pt``), which a read selects its fields by."""

    ref: weakref.ref
    layout: dict[str, Flat]
    ids: dict[str, int]


_KNOWN: dict[int, _Known] = {}  # id of an open ntuple -> _Known; an entry goes with its ntuple


def _known(rntuple: Any) -> _Known:
    key = id(rntuple)
    cached = _KNOWN.get(key)
    if cached is not None and cached.ref() is rntuple:
        return cached
    found = _Known(
        weakref.ref(rntuple),
        _layout(rntuple.to_akform()[0]),
        {name: field.field_id for name, field in rntuple.iteritems()},
    )
    _KNOWN[key] = found
    weakref.finalize(rntuple, _KNOWN.pop, key, None)
    return found


def layout(rntuple: Any) -> dict[str, Flat]:
    """Flat name -> where it is read from, for an open RNTuple (computed once per ntuple)."""
    return _known(rntuple).layout


def _layout(top: ak.forms.RecordForm) -> dict[str, Flat]:
    grouped: dict[str, Flat] = {}
    plain: dict[str, ak.forms.Form] = {}
    for name, content in zip(top.fields, top.contents, strict=True):
        content = _without_form_keys(content)
        if isinstance(content, ak.forms.ListOffsetForm) and isinstance(
            content.content, ak.forms.RecordForm
        ):
            grouped.update(_collection(name, content.content))
        elif isinstance(content, ak.forms.RecordForm):
            for member, member_form in zip(content.fields, content.contents, strict=True):
                grouped[_flat_name(name, member)] = Flat(name, member, False, member_form)
        else:
            plain[name] = content
    out = dict(grouped)
    for name, content in plain.items():
        if name in grouped:
            continue  # a projection of a grouped member: read from the group
        out[name] = Flat(name, None, False, content)
        counter = f"n{name.partition('_')[0]}"  # Foo_bar is counted by nFoo, LHEPdfWeight by
        if _is_list(content) and counter not in out and counter not in plain:  # nLHEPdfWeight
            out[counter] = Flat(name, None, True, ak.forms.NumpyForm(COUNTER))
    return out


def _collection(name: str, record: ak.forms.RecordForm) -> dict[str, Flat]:
    """The flat names of collection ``name``: its counter and one jagged branch per member."""
    members = dict(zip(record.fields, record.contents, strict=True))
    out = {
        f"{name}_{member}": Flat(name, member, False, ak.forms.ListOffsetForm("i64", content))
        for member, content in members.items()
    }
    if members:
        narrowest = min(members, key=lambda m: _itemsize(members[m]))
        out[f"n{name}"] = Flat(name, narrowest, True, ak.forms.NumpyForm(COUNTER))
    return out


def _flat_name(record: str, member: str) -> str:
    """The TTree branch of ``member`` of the record ``record``: ``MET_pt``, ``HLT_IsoMu24``;
    a trigger path kept under its whole name (``HLTriggerFinalPath``) is its own."""
    if record in TRIGGER_GROUPS and member.startswith(record):
        return member
    return f"{record}_{member}"


def form(rntuple: Any) -> ak.forms.RecordForm:
    """One field per flat name, with the form it is read as (no form keys)."""
    flat = layout(rntuple)
    return ak.forms.RecordForm([f.form for f in flat.values()], list(flat))


def read(rntuple: Any, branches: Sequence[str], start: int, stop: int) -> dict[str, Any]:
    """``{flat name: awkward array}`` of entries ``[start, stop)``: every member needed read in
    one pass (a counter through a member of its collection already read, when one is)."""
    if not branches:
        return {}
    known = _known(rntuple)
    needed = [known.layout[b] for b in branches]
    members = {f.field: f.member for f in needed if not f.counter and f.member is not None}
    sources = [(f.field, members.get(f.field, f.member) if f.counter else f.member) for f in needed]
    keys = {field if member is None else f"{field}.{member}" for field, member in sources}
    ids = {known.ids[key] for key in keys}
    arrays = rntuple.arrays(
        filter_field=lambda field: field.field_id in ids, entry_start=start, entry_stop=stop
    )
    out = {}
    for name, f, (field, member) in zip(branches, needed, sources, strict=True):
        value = arrays[field] if member is None else arrays[field][member]
        if f.counter:
            value = ak.values_astype(ak.num(value, axis=1), np.dtype(COUNTER))
        out[name] = value
    return out


def _is_list(content: ak.forms.Form) -> bool:
    return isinstance(content, ak.forms.ListOffsetForm | ak.forms.ListForm)


def _itemsize(content: ak.forms.Form) -> int:
    """Bytes per value of a member (nested members count as wide)."""
    if isinstance(content, ak.forms.NumpyForm):
        return int(np.dtype(content.primitive if content.primitive != "bool" else "?").itemsize)
    return 64


def _without_form_keys(content: ak.forms.Form) -> ak.forms.Form:
    """``content`` without uproot's column keys (brewflow assigns its own)."""
    return ak.forms.from_dict(_strip(content.to_dict()))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "form_key"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value
