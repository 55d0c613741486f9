"""NanoAOD events as awkward records: lazily (dask-awkward) or eagerly (awkward virtual arrays).

The records follow the schema of :mod:`.schema` (``events.Muon``, ``events.MET``, ... with
``vector`` behaviours). :class:`NanoReader` builds, per partition, only the collections the
graph uses and reads only the buffers an analysis touches; trees stay open once per process
(:mod:`.trees`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import awkward as ak
import dask
import dask_awkward as dak
import numpy as np
import uproot
from awkward._nplikes.numpy import Numpy
from dask_awkward.lib import utils as dak_utils

from brewflow.errors import BrewflowError, InputError
from brewflow.locations import RemoteSettings, is_url
from brewflow.nanoevents import metadata, parquet, trees
from brewflow.nanoevents.filelists import file_map
from brewflow.nanoevents.inputs import check_branches, open_checked
from brewflow.nanoevents.remote import (
    READ_ERRORS,
    Locations,
    ReplicasFailed,
    check_uuid,
    remote_errors,
    with_failover,
)
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
    "FileChangedError",
    "NanoReader",
    "behavior",
    "eager_events",
    "lazy_events",
    "nanoaod_form",
    "partition_sources",
]

log = logging.getLogger(__name__)

numpy_like = Numpy.instance()


class ChunkReadError(BrewflowError, OSError):
    """A chunk that could not be read, after the configured retries (names file and entries;
    ``path``, ``start``, ``stop`` say which, for ``on_bad_file: skip``)."""

    def __init__(self, message: str, path: str = "", start: int = 0, stop: int = 0) -> None:
        super().__init__(message)
        self.path, self.start, self.stop = path, start, stop


class FileChangedError(ChunkReadError, InputError):
    """A file whose tree has another number of entries than the graph reading it was built for
    (from the tree cache or the inventory): it changed since, or what described it was wrong.
    Never read partly; under ``on_bad_file: skip`` the whole file is skipped."""


def changed(
    path: str, tree: str, entries: int, expected: int | None, start: int, stop: int | None
) -> FileChangedError | None:
    """The :class:`FileChangedError` of reading entries ``[start, stop)`` of ``tree`` in
    ``path``, which has ``entries``, for a graph built for ``expected`` entries (None:
    unknown); None when they agree."""
    if expected is not None and entries != expected:
        built = f"the graph was built for {expected}"
    elif stop is not None and stop > entries:
        built = f"the graph reads entries [{start}, {stop})"
    else:
        return None
    return FileChangedError(
        f"file {path!r}, tree {tree!r}: has {entries} entries, {built}: the file changed (or "
        "what described it was wrong: its cached description is dropped); rerun (a workflow: "
        "snakemake --forcerun preprocess)",
        path, start, -1 if stop is None else stop,
    )  # fmt: skip


class _Changed(Exception):
    """Carries a :class:`FileChangedError` out of a replica's read (not an OSError:
    :func:`~brewflow.nanoevents.remote.with_failover` must not retry it)."""


class NanoReader:
    """The dask-awkward IO function of NanoAOD partitions ``(source index, start, stop)``.

    It implements dask-awkward's column projection: at optimization the graph runs on a
    typetracer and the reader is replaced by one that reads only the branches whose buffers
    were touched (a collection whose fields are not needed reads only its ``n<Name>``
    counter). Trees come from the process-wide cache of :mod:`.trees`, so a file is
    parsed once however many partitions it has, and the reader tokenizes by file identity
    (path, tree, inode, size, mtime, ctime), not by pickling open trees. ``entries``: per
    source, the entries the graph was built for (None: unknown); a tree with other entries is
    never read (:class:`FileChangedError`).
    """

    buffer_key = "{form_key}-{attribute}"

    def __init__(
        self,
        sources: Sequence[tuple[str, str]],
        form: ak.forms.RecordForm,
        branches: frozenset[str] | None = None,
        retries: tuple[int, float] = (0, 0.0),
        locations: Locations | None = None,
        report: bool = False,
        entries: Sequence[int | None] | None = None,
    ) -> None:
        self.sources = tuple(sources)
        self.entries = tuple(entries) if entries is not None else (None,) * len(self.sources)
        self.form = form
        self.branches = branches
        self.retries = retries
        self.locations = locations or Locations()
        self.report = report
        self._keys_by_branch = form_keys(form)
        self._counters = counters(form)
        self._fields = [
            (field, content, frozenset(form_keys(content)))
            for field, content in zip(form.fields, form.contents, strict=True)
        ]

    @property
    def return_report(self) -> bool:
        """dask-awkward's protocol: each partition also returns which replica it was read from
        (:func:`lazy_events` with ``report=True``)."""
        return self.report

    def __dask_tokenize__(self) -> tuple:
        files = tuple(
            (
                path,
                tree,
                None if path in self.locations.urls else trees.signature(path),
                self.locations.identity(path),
            )
            for path, tree in self.sources
        )
        return ("brewflow.NanoReader", files, self.form.to_json(), sorted(self.branches or ()),
                self.report, self.entries)  # fmt: skip

    def _read(self, index: int, start: int, stop: int | None, branches: list[str]) -> tuple:
        """``(arrays, stop, replica, failures)`` of one chunk from the first replica of its file
        that reads (a local file is its own only replica). A transient read error (``OSError``,
        a damaged basket, a timeout) is retried with exponential backoff (``retries`` for a
        local file, config key ``remote`` for a URL), reopening the file, then the next replica
        is tried; when none reads, a :class:`ChunkReadError` names the file, the chunk and
        each replica's error. A tree with other entries than the graph was built for raises
        :class:`FileChangedError` (and drops the file's cached description)."""
        path, tree = self.sources[index]
        urls, uuid = self.locations.replicas(path), self.locations.uuids.get(path)
        settings = self.locations.remote

        def action(url: str) -> tuple[dict, int]:
            ttree = trees.open_tree(url, tree, settings, branches)  # parses only these
            check_uuid(str(ttree.file.uuid), uuid)  # the inventory's (ROOT files)
            # the tree's header is parsed anyway: its entries are free to check
            error = changed(path, tree, int(ttree.num_entries), self.entries[index], start,
                            stop)  # fmt: skip
            if error is not None:
                trees.forget(url, tree)
                _forget_description(url, tree, settings)
                raise _Changed(error)
            end = ttree.num_entries if stop is None else stop
            return trees.read(ttree, branches, start, end), end

        try:
            (arrays, end), url, failures = with_failover(
                path, urls, action, settings, local=self.retries,
                on_error=lambda url: trees.forget(url, tree),
                what=f", entries [{start}, {stop})",
            )  # fmt: skip
        except _Changed as err:
            raise err.args[0] from None
        except uproot.KeyInFileError:
            # a missing tree or branch: InputError naming the file and what it lacks
            check_branches(open_checked(urls[0], tree, settings=settings), branches)
            raise
        except ReplicasFailed as err:
            where = f"file {path!r}, tree {tree!r}, entries [{start}, {stop})"
            if urls == [path] and not is_url(path):
                message = (
                    f"{where}: {err.failures[-1][1]} (read {len(err.failures)} time(s)); check "
                    "the file is readable, or raise config key 'retries.read' if the storage "
                    "is flaky"
                )
            else:
                message = (
                    f"{where}: every replica failed: "
                    + "; ".join(f"{u}: {e}" for u, e in err.failures)
                    + "; check the servers (or the redirectors), or raise config keys "
                    "'remote.timeout' / 'remote.retries'"
                )
            raise ChunkReadError(message, path, start, -1 if stop is None else stop) from err
        return arrays, end, url, failures

    def __call__(self, part: tuple[int, int, int | None]) -> Any:
        index, start, stop = part
        branches = sorted(self.branches if self.branches is not None else self._keys_by_branch)
        arrays, stop, url, failures = self._read(index, start, stop, branches)
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
        events = ak.from_buffers(
            form, stop - start, container, buffer_key=self.buffer_key, behavior=behavior()
        )
        if not self.report:
            return events
        record = {"path": self.sources[index][0], "start": start, "stop": stop, "replica": url,
                  "failed": [f"{u}: {e}" for u, e in failures]}  # fmt: skip
        return events, ak.Array([record])

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
        return NanoReader(self.sources, self.form, frozenset(columns), self.retries,
                          self.locations, self.report, self.entries)  # fmt: skip


def lazy_events(
    files: Mapping[str, str] | Sequence[str] | str,
    *,
    tree: str = "Events",
    step_size: int = 100_000,
    steps: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    open_files: bool = True,
    retries: tuple[int, float] = (0, 0.0),
    locations: Locations | None = None,
    report: bool = False,
    entries: Mapping[str, int] | None = None,
) -> Any:
    """A lazy ``dask_awkward.Array`` of NanoAOD events, one partition per step.

    ``files`` is a path or URL, a glob (local, or on an XRootD folder), a list of them, or a
    ``{path: tree}`` mapping; the trees may be TTrees or RNTuples. With ``steps``
    (``{path: [(start, stop), ...]}``, e.g. from preprocessing) only the first file is opened
    (for its form); otherwise every file is opened to find its entries, cut in ``step_size``.
    With ``open_files=False`` and no ``steps``, only the first file is opened and each file is
    one partition of unknown length (enough to build and inspect a graph without reading data).
    Opened trees stay in the process cache of :mod:`.trees` for the partitions to use.
    ``retries``: ``(re-reads, first backoff in s)`` of a chunk of a local file after a
    transient read error. ``locations``: the replicas (URLs) of each file and how to read
    them (:class:`~brewflow.nanoevents.remote.Locations`; a chunk fails over to the next
    replica). With ``report=True``, returns ``(events, report)``: ``report`` has a record per
    partition (``path``, ``start``, ``stop``, ``replica`` it was read from, ``failed`` replicas
    with their errors), computed with the events (None for parquet skims: local files).
    ``entries``: ``{path: entries}`` the ``steps`` were made for (e.g. the inventory's); a
    chunk whose file has other entries (or, without them, fewer than its steps read) raises
    :class:`FileChangedError`, as does a file that no longer has the entries its opening (or
    the tree cache) found.
    """
    if step_size < 1:  # (range() would raise for 0, and make no partition below it)
        raise ValueError(f"step_size is {step_size}: a partition needs at least 1 event")
    locations = locations or Locations()
    sources = list(file_map(files, tree, locations).items())
    if not sources:
        raise FileNotFoundError(f"no input file in {files!r}")
    if all(not is_url(path) and parquet.is_parquet(path) for path, _ in sources):
        skim = parquet.lazy([path for path, _ in sources])  # skims: a partition per file
        return (skim, None) if report else skim
    parts: list[tuple[int, int, int | None]] = []
    built: list[int | None] = [None] * len(sources)  # the entries the graph is built for
    first = None
    if steps is not None:
        parts = [(i, a, b) for i, (path, _) in enumerate(sources) for a, b in steps[path]]
        built = [(entries or {}).get(path) for path, _ in sources]
    elif not open_files:
        parts = [(i, 0, None) for i in range(len(sources))]
    else:
        for i, (path, name) in enumerate(sources):
            info = _describe(path, name, locations)
            first = first or info
            n = built[i] = info.entries
            parts += [(i, a, min(a + step_size, n)) for a in range(0, n, step_size)]
        parts = parts or [(0, 0, 0)]
    if any(stop is None for _, _, stop in parts):
        divisions = None
    else:
        divisions = tuple(np.cumsum([0] + [(b or 0) - a for _, a, b in parts]).tolist())
    first = first or _describe(*sources[0], locations)
    form = nanoaod_form(first.record_form())
    reader = NanoReader(sources, form, retries=retries, locations=locations, report=report,
                        entries=built)  # fmt: skip
    return dak.from_map(
        reader, parts, label="from-nanoaod", token=dask.base.tokenize(reader, parts),
        divisions=divisions,
    )  # fmt: skip


def partition_sources(events: Any) -> list[tuple[str, int, int]] | None:
    """The ``(path, start, stop)`` each partition of ``events`` reads, as :func:`lazy_events`
    made them (a lost worker named by what it read); None for another collection (e.g. a
    parquet skim's, or one whose stops are unknown)."""
    layer = events.dask.layers.get(events.name)
    reader = getattr(layer, "io_func", None)
    if not isinstance(reader, NanoReader):
        return None
    parts = list(layer.inputs)
    if any(stop is None for _, _, stop in parts):
        return None
    return [(reader.sources[i][0], a, b) for i, a, b in parts]


def _open(path: str, tree: str, locations: Locations) -> Any:
    """The tree of file ``path`` from its first replica that opens."""
    ttree, _, _ = with_failover(
        path, locations.replicas(path), lambda url: trees.open_tree(url, tree, locations.remote),
        locations.remote, on_error=lambda url: trees.forget(url, tree),
    )  # fmt: skip
    return ttree


def _describe(path: str, tree: str, locations: Locations) -> metadata.TreeInfo:
    """Entries, clusters and branch form of file ``path`` from its first replica that opens
    (cached on disk by file identity: :mod:`.metadata`)."""
    info, _, _ = with_failover(
        path, locations.replicas(path),
        lambda url: metadata.describe(url, tree, locations.remote),
        locations.remote, on_error=lambda url: trees.forget(url, tree),
    )  # fmt: skip
    return info


def _forget_description(url: str, tree: str, settings: RemoteSettings) -> None:
    """Drop the tree cache's description of a file its tree contradicted (best effort: the
    error that follows names the file)."""
    try:
        metadata.forget(url, tree, settings)
    except remote_errors() as err:
        log.debug("cannot drop the tree cache entry of %s: %s", url, err)


def eager_events(
    path: str,
    *,
    tree: str = "Events",
    start: int = 0,
    stop: int | None = None,
    locations: Locations | None = None,
):
    """Events of one file (a path, a URL, or a logical file name of ``locations``) as an
    ``awkward.Array`` whose columns are read on first access; entries ``[start, stop)`` of it
    (a ``stop`` past its end raises :class:`FileChangedError`: never a partial read)."""
    if not is_url(path) and parquet.is_parquet(path):
        return parquet.eager(path, start, stop)
    ttree = _open(path, tree, locations or Locations())
    if (error := changed(path, tree, int(ttree.num_entries), None, start, stop)) is not None:
        raise error
    stop = ttree.num_entries if stop is None else stop
    form = nanoaod_form(trees.branch_form(ttree))
    keys_by_branch = form_keys(form)
    cache: dict[str, dict[str, np.ndarray]] = {}

    def loader(branch: str, buffer_key: str) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            if branch not in cache:
                arrays = trees.read(ttree, [branch], start, stop)
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
