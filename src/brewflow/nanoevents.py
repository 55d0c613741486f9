"""NanoAOD events as awkward records: lazily (dask-awkward) or eagerly (awkward virtual arrays).

Branches are grouped by the NanoAOD naming convention, as coffea's ``NanoAODSchema`` does:

- ``nMuon`` + jagged ``Muon_*``  -> ``events.Muon``, a list of records per event whose offsets
  come from the ``nMuon`` counter alone (so touching the structure reads one small branch);
- flat ``MET_pt``, ``MET_phi``   -> ``events.MET``; ``HLT_*`` -> ``events.HLT``; ``Flag_*`` ...;
- anything else (``run``, ``genWeight``, ``LHEScaleWeight``) stays a top-level field.

Records with ``pt, eta, phi, mass`` get ``vector``'s ``Momentum4D`` behaviour (``pt, eta, phi``
-> ``Momentum3D``, ``pt, phi`` -> ``Momentum2D``), so ``(a + b).mass`` and ``a.deltaR(b)`` work
on both paths. Only the buffers an analysis touches are ever read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot
import vector

__all__ = [
    "NanoAODMapping",
    "behavior",
    "eager_events",
    "lazy_events",
    "nanoaod_form",
]

log = logging.getLogger(__name__)

_SEP = "!"  # form keys are "<branch>!<role>"; buffer keys "<form key>-<attribute>"
_VECTOR_NAMES = (
    ({"pt", "eta", "phi", "mass"}, "Momentum4D"),
    ({"pt", "eta", "phi"}, "Momentum3D"),
    ({"pt", "phi"}, "Momentum2D"),
)


class _DeltaMethods:
    """snake_case spellings of vector's angular distances (coffea's names)."""

    def delta_phi(self, other: Any) -> Any:
        """Signed azimuthal difference in (-pi, pi]."""
        return self.deltaphi(other)


class _DeltaMethods3D(_DeltaMethods):
    def delta_eta(self, other: Any) -> Any:
        """Pseudorapidity difference."""
        return self.deltaeta(other)

    def delta_r(self, other: Any) -> Any:
        """sqrt(delta_eta^2 + delta_phi^2)."""
        return self.deltaR(other)


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


def _record_name(fields: Sequence[str]) -> str | None:
    names = set(fields)
    for required, name in _VECTOR_NAMES:
        if required <= names:
            return name
    return None


def _numpy_form(content: ak.forms.Form, key: str) -> ak.forms.NumpyForm:
    if not isinstance(content, ak.forms.NumpyForm) or content.inner_shape:
        raise TypeError(f"branch {key.split(_SEP)[0]!r} is not a flat numeric column")
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
        contents.append(_numpy_form(content, f"{name}{_SEP}data"))
    for name, content in plain_lists.items():
        fields.append(name)
        contents.append(
            ak.forms.ListOffsetForm(
                "i64", _numpy_form(content, f"{name}{_SEP}content"), form_key=f"{name}{_SEP}list"
            )
        )
    for prefix, members in groups.items():
        fields.append(prefix)
        contents.append(_record_form(prefix, members, "data"))
    for prefix, members in collections.items():
        fields.append(prefix)
        record = _record_form(prefix, members, "content")
        contents.append(ak.forms.ListOffsetForm("i64", record, form_key=f"n{prefix}{_SEP}counts"))
    return ak.forms.RecordForm(contents, fields)


def _record_form(prefix: str, members: Mapping[str, Any], role: str) -> ak.forms.RecordForm:
    """Record of the ``<prefix>_<field>`` branches; vector behaviour where the fields allow."""
    name = _record_name(list(members))
    return ak.forms.RecordForm(
        [_numpy_form(c, f"{prefix}_{f}{_SEP}{role}") for f, c in members.items()],
        list(members),
        parameters={"__record__": name} if name else {},
    )


def _branch_of(form_key: str) -> str:
    return form_key.split(_SEP, 1)[0]


def _buffers(arrays: Mapping[str, ak.Array], form_keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The buffers of the given form keys from per-branch arrays read with uproot."""
    out: dict[str, np.ndarray] = {}
    for form_key in form_keys:
        branch, role = form_key.split(_SEP, 1)
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


def _form_keys(form: ak.forms.Form) -> dict[str, list[str]]:
    """Branch name -> the form keys (in this form) whose buffers it fills."""
    out: dict[str, list[str]] = {}

    def visit(node: ak.forms.Form) -> None:
        if node.form_key is not None:
            out.setdefault(_branch_of(node.form_key), []).append(node.form_key)
        if isinstance(node, ak.forms.RecordForm):
            for child in node.contents:
                visit(child)
        elif hasattr(node, "content"):
            visit(node.content)

    visit(form)
    return out


class NanoAODMappingInfo:
    """Tells ``uproot.dask`` how the grouped form's buffers map to branches and reads them."""

    buffer_key = "{form_key}-{attribute}"

    def __init__(self, form: ak.forms.RecordForm) -> None:
        self._form = form
        self._keys_by_branch = _form_keys(form)

    @property
    def behavior(self) -> dict:
        return behavior()

    def parse_buffer_key(self, buffer_key: str) -> tuple[str, str]:
        form_key, attribute = buffer_key.rsplit("-", maxsplit=1)
        return form_key, attribute

    def keys_for_buffer_keys(self, buffer_keys: frozenset[str]) -> frozenset[str]:
        return frozenset(_branch_of(self.parse_buffer_key(k)[0]) for k in buffer_keys)

    def load_buffers(
        self,
        tree: Any,
        keys: frozenset[str],
        start: int,
        stop: int,
        decompression_executor: Any,
        interpretation_executor: Any,
        options: Any,
    ) -> dict[str, np.ndarray]:
        arrays = tree.arrays(
            sorted(keys),
            entry_start=start,
            entry_stop=stop,
            how=dict,
            decompression_executor=decompression_executor,
            interpretation_executor=interpretation_executor,
        )
        return _buffers(arrays, [fk for b in keys for fk in self._keys_by_branch.get(b, [])])


class NanoAODMapping:
    """``form_mapping`` for ``uproot.dask``: flat NanoAOD branches -> grouped NanoAOD records."""

    def __call__(self, form: ak.forms.Form) -> tuple[ak.forms.RecordForm, NanoAODMappingInfo]:
        new_form = nanoaod_form(form)
        return new_form, NanoAODMappingInfo(new_form)


@dataclass(frozen=True)
class Chunk:
    """Entries ``[start, stop)`` of one tree in one file."""

    path: str
    tree: str
    start: int
    stop: int


def lazy_events(
    files: Mapping[str, str] | Sequence[str] | str,
    *,
    tree: str = "Events",
    step_size: int = 100_000,
    steps: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    open_files: bool = True,
) -> Any:
    """A lazy ``dask_awkward.Array`` of NanoAOD events, one partition per step.

    ``files`` is a path, a glob, a list of them, or a ``{path: tree}`` mapping. With ``steps``
    (``{path: [(start, stop), ...]}``, e.g. from preprocessing) no file is opened but the first
    (for its form); otherwise files are opened to find their entries and cut in ``step_size``.
    With ``open_files=False`` and no ``steps``, only the first file is opened and each file is one
    partition of unknown length (enough to build and inspect a graph without reading data).
    """
    mapping = _file_map(files, tree)
    if steps is not None:
        spec = {
            path: {"object_path": obj, "steps": [list(s) for s in steps[path]]}
            for path, obj in mapping.items()
        }
        return uproot.dask(spec, open_files=False, form_mapping=NanoAODMapping())
    if not open_files:
        return uproot.dask(mapping, open_files=False, form_mapping=NanoAODMapping())
    return uproot.dask(mapping, step_size=step_size, form_mapping=NanoAODMapping())


def eager_events(path: str, *, tree: str = "Events", start: int = 0, stop: int | None = None):
    """Events of one file as an ``awkward.Array`` whose columns are read on first access."""
    ttree = uproot.open(path)[tree]
    stop = ttree.num_entries if stop is None else min(stop, ttree.num_entries)
    base = ttree.arrays(entry_stop=0, how=dict)
    form = nanoaod_form(ak.forms.RecordForm([base[k].layout.form for k in base], list(base)))
    keys_by_branch = _form_keys(form)
    cache: dict[str, dict[str, np.ndarray]] = {}

    def loader(branch: str, buffer_key: str) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            if branch not in cache:
                arrays = ttree.arrays([branch], entry_start=start, entry_stop=stop, how=dict)
                cache[branch] = _buffers(arrays, keys_by_branch[branch])
            return cache[branch][buffer_key]

        return load

    container = {
        key: loader(_branch_of(key.rsplit("-", 1)[0]), key)
        for key in form.expected_from_buffers("{form_key}-{attribute}")
    }
    return ak.from_buffers(
        form,
        stop - start,
        container,
        buffer_key="{form_key}-{attribute}",
        behavior=behavior(),
    )


def _file_map(files: Mapping[str, str] | Sequence[str] | str, tree: str) -> dict[str, str]:
    if isinstance(files, Mapping):
        return {str(k): v for k, v in files.items()}
    if isinstance(files, str | Path):
        files = [str(files)]
    return {str(f): tree for f in files}
