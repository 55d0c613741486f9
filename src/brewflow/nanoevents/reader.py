"""NanoAOD events as awkward records: lazily (dask-awkward) or eagerly (awkward virtual arrays).

The records follow the schema of :mod:`.schema` (``events.Muon``, ``events.MET``, ... with
``vector`` behaviours). :class:`NanoReader` builds, per partition, only the collections the
graph uses and reads only the buffers an analysis touches; trees stay open once per process
(:mod:`.trees`).
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import logging
import lzma
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import dask
import dask_awkward as dak
import numpy as np
import uproot
from awkward._nplikes.numpy import Numpy
from dask_awkward.lib import utils as dak_utils

from brewflow.errors import BrewflowError
from brewflow.nanoevents import parquet, trees
from brewflow.nanoevents.inputs import check_branches, one_line, open_checked
from brewflow.nanoevents.schema import (
    behavior,
    branch_of,
    buffers_of,
    counters,
    form_keys,
    nanoaod_form,
)

__all__ = [
    "READ_ERRORS",
    "ChunkReadError",
    "NanoReader",
    "behavior",
    "eager_events",
    "lazy_events",
    "nanoaod_form",
]

log = logging.getLogger(__name__)

numpy_like = Numpy.instance()


def _read_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [
        OSError,
        uproot.deserialization.DeserializationError,
        zlib.error,
        lzma.LZMAError,
    ]
    for module, name in (("lz4.block", "LZ4BlockError"), ("zstandard", "ZstdError")):
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


READ_ERRORS = _read_errors()
"""What reading a damaged file raises: I/O errors, undecodable bytes, failed decompression."""


class ChunkReadError(BrewflowError, OSError):
    """A chunk that could not be read, after the configured retries (names file and entries;
    ``path``, ``start``, ``stop`` say which, for ``on_bad_file: skip``)."""

    def __init__(self, message: str, path: str = "", start: int = 0, stop: int = 0) -> None:
        super().__init__(message)
        self.path, self.start, self.stop = path, start, stop


class NanoReader:
    """The dask-awkward IO function of NanoAOD partitions ``(source index, start, stop)``.

    It implements dask-awkward's column projection: at optimization the graph runs on a
    typetracer and the reader is replaced by one that reads only the branches whose buffers
    were touched (a collection whose fields are not needed reads only its ``n<Name>``
    counter). Trees come from the process-wide cache of :mod:`.trees`, so a file is
    parsed once however many partitions it has, and the reader tokenizes by file identity
    (path, tree, size, mtime), not by pickling open trees.
    """

    buffer_key = "{form_key}-{attribute}"

    def __init__(
        self,
        sources: Sequence[tuple[str, str]],
        form: ak.forms.RecordForm,
        branches: frozenset[str] | None = None,
        retries: tuple[int, float] = (0, 0.0),
    ) -> None:
        self.sources = tuple(sources)
        self.form = form
        self.branches = branches
        self.retries = retries
        self._keys_by_branch = form_keys(form)
        self._counters = counters(form)
        self._fields = [
            (field, content, frozenset(form_keys(content)))
            for field, content in zip(form.fields, form.contents, strict=True)
        ]

    def __dask_tokenize__(self) -> tuple:
        files = tuple((path, tree, trees.signature(path)) for path, tree in self.sources)
        return ("brewflow.NanoReader", files, self.form.to_json(), sorted(self.branches or ()))

    def _read(self, index: int, start: int, stop: int | None, branches: list[str]) -> tuple:
        """``(arrays, stop)`` of one chunk; a transient read error (``OSError``, a damaged
        basket) is retried ``retries[0]`` times with exponential backoff from ``retries[1]`` s,
        reopening the file, then reported as a :class:`ChunkReadError` naming file and chunk."""
        path, tree = self.sources[index]
        attempts, backoff = self.retries
        for attempt in range(attempts + 1):
            try:
                ttree = trees.open_tree(path, tree)
                stop = ttree.num_entries if stop is None else stop
                return ttree.arrays(branches, entry_start=start, entry_stop=stop, how=dict), stop
            except uproot.KeyInFileError:
                # a missing tree or branch: InputError naming the file and what it lacks
                check_branches(open_checked(path, tree), branches)
                raise
            except READ_ERRORS as err:
                trees.forget(path, tree)
                if attempt == attempts:
                    raise ChunkReadError(
                        f"file {path!r}, tree {tree!r}, entries [{start}, {stop}): "
                        f"{one_line(err)} "
                        f"(read {attempts + 1} time(s)); check the file is readable, or raise "
                        "config key 'retries.read' if the storage is flaky",
                        path,
                        start,
                        -1 if stop is None else stop,
                    ) from err
                wait = backoff * 2**attempt
                log.warning(
                    "%s entries [%s, %s): %s; reading again in %.1f s", path, start, stop, err, wait
                )
                time.sleep(wait)
        raise AssertionError("unreachable")

    def __call__(self, part: tuple[int, int, int | None]) -> ak.Array:
        index, start, stop = part
        branches = sorted(self.branches if self.branches is not None else self._keys_by_branch)
        arrays, stop = self._read(index, start, stop, branches)
        buffers = buffers_of(arrays, [k for b in branches for k in self._keys_by_branch.get(b, [])])
        form = self._projected(frozenset(branches))
        container = {  # placeholders: never read, fail if touched, survive pickling
            key: buffers[key]
            if key in buffers
            else ak.typetracer.PlaceholderArray(
                numpy_like, (ak.typetracer.unknown_length,), dtype, buffer_key=key
            )
            for key, dtype in form.expected_from_buffers(self.buffer_key).items()
        }
        return ak.from_buffers(
            form, stop - start, container, buffer_key=self.buffer_key, behavior=behavior()
        )

    def _projected(self, branches: frozenset[str]) -> ak.forms.RecordForm:
        """The event form with only the top-level fields (whole collections) ``branches`` fill.

        Kept collections keep all their fields (unread ones are placeholders), so records keep
        their vector behaviour; the other few thousand buffers are never built per partition.
        """
        kept = [(f, c) for f, c, used in self._fields if not branches.isdisjoint(used)]
        return ak.forms.RecordForm([c for _, c in kept], [f for f, _ in kept])

    def mock(self) -> ak.Array:
        return ak.typetracer.typetracer_from_form(self.form, highlevel=True, behavior=behavior())

    def mock_empty(self, backend: str = "cpu") -> ak.Array:
        empty = self.form.length_zero_array(highlevel=False)
        return ak.to_backend(empty, backend, highlevel=True, behavior=behavior())

    def prepare_for_projection(self) -> tuple[ak.Array, Any, Any]:
        meta, report = ak.typetracer.typetracer_with_report(
            self.form, highlevel=True, behavior=behavior(), buffer_key=self.buffer_key
        )
        structure = dak_utils.trace_form_structure(self.form, dak_utils.render_buffer_key)
        return meta, report, structure

    def necessary_columns(self, report: Any, state: dict) -> frozenset[str]:
        """Branches whose buffers the typetracer run touched (offsets above shapes included)."""
        touched = {
            *report.data_touched,
            *dak_utils.buffer_keys_required_to_compute_shapes(
                dak_utils.parse_buffer_key,
                report.shape_touched,
                state["form_key_to_parent_form_key"],
                state["form_key_to_buffer_keys"],
            ),
        }
        branches = {branch_of(dak_utils.parse_buffer_key(k)[0]) for k in touched}
        return frozenset(branches | {self._counters[b] for b in branches if b in self._counters})

    def project(self, report: Any, state: dict) -> NanoReader:
        return self.project_manually(self.necessary_columns(report, state))

    def project_manually(self, columns: frozenset[str]) -> NanoReader:
        return NanoReader(self.sources, self.form, frozenset(columns), self.retries)


def lazy_events(
    files: Mapping[str, str] | Sequence[str] | str,
    *,
    tree: str = "Events",
    step_size: int = 100_000,
    steps: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    open_files: bool = True,
    retries: tuple[int, float] = (0, 0.0),
) -> Any:
    """A lazy ``dask_awkward.Array`` of NanoAOD events, one partition per step.

    ``files`` is a path, a glob, a list of them, or a ``{path: tree}`` mapping. With ``steps``
    (``{path: [(start, stop), ...]}``, e.g. from preprocessing) only the first file is opened
    (for its form); otherwise every file is opened to find its entries, cut in ``step_size``.
    With ``open_files=False`` and no ``steps``, only the first file is opened and each file is
    one partition of unknown length (enough to build and inspect a graph without reading data).
    Opened trees stay in the process cache of :mod:`.trees` for the partitions to use.
    ``retries``: ``(re-reads, first backoff in s)`` of a chunk after a transient read error.
    """
    sources = list(_file_map(files, tree).items())
    if not sources:
        raise FileNotFoundError(f"no input file in {files!r}")
    if all(parquet.is_parquet(path) for path, _ in sources):  # skims: a partition per file
        return parquet.lazy([path for path, _ in sources])
    parts: list[tuple[int, int, int | None]] = []
    if steps is not None:
        parts = [(i, a, b) for i, (path, _) in enumerate(sources) for a, b in steps[path]]
    elif not open_files:
        parts = [(i, 0, None) for i in range(len(sources))]
    else:
        for i, (path, name) in enumerate(sources):
            entries = trees.open_tree(path, name).num_entries
            parts += [(i, a, min(a + step_size, entries)) for a in range(0, entries, step_size)]
        parts = parts or [(0, 0, 0)]
    if any(stop is None for _, _, stop in parts):
        divisions = None
    else:
        divisions = tuple(np.cumsum([0] + [(b or 0) - a for _, a, b in parts]).tolist())
    form = nanoaod_form(trees.branch_form(trees.open_tree(*sources[0])))
    reader = NanoReader(sources, form, retries=retries)
    return dak.from_map(
        reader, parts, label="from-nanoaod", token=dask.base.tokenize(reader, parts),
        divisions=divisions,
    )  # fmt: skip


def eager_events(path: str, *, tree: str = "Events", start: int = 0, stop: int | None = None):
    """Events of one file as an ``awkward.Array`` whose columns are read on first access."""
    if parquet.is_parquet(path):
        return parquet.eager(path, start, stop)
    ttree = trees.open_tree(path, tree)
    stop = ttree.num_entries if stop is None else min(stop, ttree.num_entries)
    form = nanoaod_form(trees.branch_form(ttree))
    keys_by_branch = form_keys(form)
    cache: dict[str, dict[str, np.ndarray]] = {}

    def loader(branch: str, buffer_key: str) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            if branch not in cache:
                arrays = ttree.arrays([branch], entry_start=start, entry_stop=stop, how=dict)
                cache[branch] = buffers_of(arrays, keys_by_branch[branch])
            return cache[branch][buffer_key]

        return load

    key_format = NanoReader.buffer_key
    container = {
        key: loader(branch_of(dak_utils.parse_buffer_key(key)[0]), key)
        for key in form.expected_from_buffers(key_format)
    }
    return ak.from_buffers(
        form, stop - start, container, buffer_key=key_format, behavior=behavior()
    )


def _file_map(files: Mapping[str, str] | Sequence[str] | str, tree: str) -> dict[str, str]:
    """``{path: tree}``; globs are expanded (sorted), other paths kept as given."""
    if isinstance(files, Mapping):
        return {str(k): v for k, v in files.items()}
    if isinstance(files, str | Path):
        files = [str(files)]
    out: dict[str, str] = {}
    for pattern in map(str, files):
        for path in sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]:
            out[path] = tree
    return out
