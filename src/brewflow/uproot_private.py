"""Everything brewflow does with uproot's private state, in one module, for the uproot versions it
was verified on (:data:`VERIFIED`, the range ``pyproject.toml`` pins): the partial TTree parse
(:func:`open_partial`), the class names read without a copy per object (:func:`_classname`)
and the fixed clock of written ROOT files (:func:`fixed_clock`). On an uproot outside that
range they fall back to uproot's public path (the first and last with a one-line warning: a
full parse; the wall clock in written files), never a wrong read. CI runs the reader tests
against the lowest version of the range as well as the highest (``.ci/run``).

**The partial parse.** uproot parses every ``TBranch`` of a tree when it opens it (about 0.6 ms
each: 0.5-1 s for a NanoAOD ``Events`` tree), although reading a chunk needs only the branches
read. Here the tree's ``TBranch`` class (version 13, what ROOT 6 writes; uproot's
``custom_classes``) reads a branch's name and title from its header and, when the branch is not
wanted, jumps over its bytes (ROOT writes each object's byte count) instead of deserializing
it; the tree then holds only the wanted branches, each exactly as a full parse gives it.

ROOT's streams refer back to earlier objects and classes by position, so skipping must keep
those references resolvable:

- class definitions inside a skipped branch (``TLeafF`` and the like, written once per tree)
  are registered at their positions, found by their new-class tag;
- an object defined inside a skipped branch and referred to by a wanted one (a jagged
  branch's counter leaf, e.g. ``nJet``, is written inside whichever branch points to it
  first) is detected: the reference table records every lookup that fails while a wanted
  branch is read, and the tree is parsed again with the branch holding that position
  wanted too. A failed lookup can have no other cause (ROOT writes an object before any
  reference to it), so the result never depends on a guess.

Anything else (other ``TBranch`` versions, ``TBranchElement``) is parsed in full as usual.

**The class names.** uproot's ``Cursor.classname`` copies the whole rest of the metadata
chunk to find the end of each object's class name: quadratic in a tree's metadata (for a
NanoAOD ``Events`` tree, 0.07 s of the 0.12 s partial parse of 20 branches, 0.14 s of a full
parse). :func:`_classname`, installed in its place on a verified uproot when this module is
imported, looks for the end in the name's first bytes (uproot's own path for a longer name):
the same strings, the same cursor moves.

**The clock.** uproot stamps every key and directory header it writes with
``datetime.now()`` and has no option for another time; :func:`fixed_clock` replaces the
``datetime`` its writing modules see.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import os
import re
import struct
import threading
import types
from collections.abc import Iterable, Iterator
from numbers import Integral
from typing import Any, ClassVar

import uproot
from packaging.specifiers import SpecifierSet
from packaging.version import Version

__all__ = ["LOWEST", "VERIFIED", "fixed_clock", "open_partial", "supported"]

log = logging.getLogger(__name__)

LOWEST = "5.6.4"
VERIFIED = SpecifierSet(f">={LOWEST},<5.8")
"""The uproot versions this module was verified on: ``pyproject.toml`` pins this range (a
test checks they agree); CI runs the reader tests on :data:`LOWEST` and the newest in range."""
_WARNED: set[str] = set()
_WHOLE = "every branch of a TTree parsed (no partial parse)"
_LOCK = threading.Lock()  # one block at a time swaps uproot's clock


def supported(what: str = "", force: bool = False) -> bool:
    """Whether the installed uproot is in :data:`VERIFIED` (``force``: taken as not); else,
    once per process and ``what``, a one-line warning that ``what`` takes uproot's public
    path."""
    version = uproot.__version__
    if Version(version) in VERIFIED and not force:
        return True
    if what not in _WARNED:
        _WARNED.add(what)
        log.warning("uproot %s is outside the versions brewflow was verified on (%s): %s",
                    version, VERIFIED, what)  # fmt: skip
    return False


_NAME_WINDOW = 256  # bytes searched for the end of a class name before uproot's own path
_INSTALLED = uproot.source.cursor.Cursor.classname
_UPROOT_CLASSNAME = getattr(_INSTALLED, "uproot_classname", _INSTALLED)  # uproot's own, also
# when this module is imported again (importlib.reload, a notebook's autoreload): never ours


def _classname(self: Any, chunk: Any, context: dict, move: bool = True) -> str:
    """``uproot.source.cursor.Cursor.classname`` without copying the chunk's remainder."""
    remainder = chunk.remainder(self._index, self, context)
    end = remainder[:_NAME_WINDOW].tobytes().find(0)
    if end < 0:  # longer (or unterminated: uproot's error)
        return _UPROOT_CLASSNAME(self, chunk, context, move)
    if move:
        self._index += end + 1
    return remainder[:end].tobytes().decode(errors="surrogateescape")


_classname.uproot_classname = _UPROOT_CLASSNAME  # type: ignore[attr-defined]


def _install_classname(version: str) -> bool:
    """:func:`_classname` as uproot's, on a verified ``version`` (else nothing changes)."""
    if Version(version) not in VERIFIED:
        return False
    uproot.source.cursor.Cursor.classname = _classname
    return True


_install_classname(uproot.__version__)
os.register_at_fork(before=lambda: supported(_WHOLE))  # said once, here, not once in each
# worker process (forked processes parse partially, and inherit what was said)


_BYTE_COUNT = 0x40000000  # ROOT's kByteCountMask
_IS_REFERENCED = 1 << 4  # TObject's kIsReferenced bit: a process id follows fBits
_NEW_CLASS = re.compile(rb"(?s)[\x40-\x7f]...\xff\xff\xff\xff([A-Za-z_][A-Za-z0-9_:<>, ]*)\x00")
_COUNTER = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)\]")
_STATE = threading.local()  # the parse in progress on this thread
MAX_PASSES = 8


class _Skipped:
    """What the tree's branch list holds for a branch not parsed (removed afterwards)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def member(self, key: str) -> str:
        return self.name  # TTree.postprocess asks only for fName


class _References(dict):
    """The stream's reference table; records the lookups that fail inside a wanted branch."""

    def __init__(self, refs: dict) -> None:
        super().__init__(refs)
        self.missed: list[int] = []

    def __contains__(self, key: object) -> bool:
        found = dict.__contains__(self, key)
        if not found and getattr(_STATE, "inside", False) and isinstance(key, Integral):
            self.missed.append(int(key))  # (uproot < 5.7.x looks up numpy integers)
        return found


def _string(blob: bytes, at: int) -> tuple[str, int]:
    """A ROOT string (1-byte length, or 255 and a 4-byte length) at ``at``; and where it ends."""
    size = blob[at]
    at += 1
    if size == 255:
        (size,) = struct.unpack_from(">I", blob, at)
        at += 4
    return blob[at : at + size].decode(errors="surrogateescape"), at + size


@functools.cache
def _partial_classes() -> dict[str, Any] | None:
    """uproot's classes with ``TBranch`` v13 parsing only wanted branches; None where uproot
    no longer has the private models they extend (then the public path, with the warning)."""
    try:
        from uproot.models.TBranch import Model_TBranch, Model_TBranch_v13
    except ImportError:
        return None

    class _PartialTBranch_v13(Model_TBranch_v13):
        """``TBranch`` v13 that parses only wanted branches while :func:`open_partial` runs."""

        @classmethod
        def read(cls, chunk, cursor, context, file, selffile, parent, concrete=None):
            wanted = getattr(_STATE, "wanted", None)
            if wanted is None:
                return super().read(chunk, cursor, context, file, selffile, parent, concrete)
            if not isinstance(cursor._refs, _References):
                cursor._refs = _STATE.refs = _References(cursor.refs)
            if _STATE.blob is None or _STATE.blob[0] is not chunk:
                _STATE.blob = (chunk, chunk.raw_data.tobytes())
            blob = _STATE.blob[1]
            at = cursor.index - chunk.start
            (count,) = struct.unpack_from(">I", blob, at)
            if not count & _BYTE_COUNT:
                return super().read(chunk, cursor, context, file, selffile, parent, concrete)
            end = cursor.index + (count & ~_BYTE_COUNT) + 4
            # the branch's byte count and version (6), TNamed's (6), TObject: version (2),
            # fUniqueID (4), fBits (4) [, process id (2)]; then fName and fTitle
            (bits,) = struct.unpack_from(">I", blob, at + 18)
            name, at = _string(blob, at + 22 + (2 if bits & _IS_REFERENCED else 0))
            title, _ = _string(blob, at)
            counter = _COUNTER.search(title)
            first_of_counter = counter and counter[1] in wanted and counter[1] not in _STATE.seen
            if name in wanted or first_of_counter:
                _STATE.seen.update([name, *([counter[1]] if counter else [])])
                _STATE.inside = True
                try:
                    return super().read(chunk, cursor, context, file, selffile, parent, concrete)
                finally:
                    _STATE.inside = False
            for match in _NEW_CLASS.finditer(blob, cursor.index - chunk.start, end - chunk.start):
                tag = chunk.start + match.start() + 4  # read_object_any keys a class by its tag
                position = tag - cursor.origin + uproot.const.kMapOffset
                cursor.refs[position] = file.class_named(match[1].decode())
            _STATE.skipped.append((name, cursor.index, end))
            cursor.move_to(end)
            return _Skipped(name)

    _PartialTBranch_v13.__name__ = "Model_TBranch_v13"  # uproot derives the C++ name from it

    class _PartialTBranch(Model_TBranch):
        known_versions: ClassVar[dict] = {**Model_TBranch.known_versions, 13: _PartialTBranch_v13}

    _PartialTBranch.__name__ = "Model_TBranch"

    return {**uproot.classes, "TBranch": _PartialTBranch}


def open_partial(path: str, tree: str, branches: Iterable[str], **options: Any) -> Any:
    """The TTree ``tree`` of ``path`` (local or URL; ``options`` go to ``uproot.open``) with
    only ``branches`` (and what their leaves refer to) parsed. Names not in the tree are
    simply absent (as ``tree[name]`` on a full parse, reading them raises
    ``KeyInFileError``). Anything but a TTree is returned as uproot reads it; on an uproot
    outside :data:`VERIFIED`, every branch is parsed (uproot's public path)."""
    classes = _partial_classes() if supported(_WHOLE) else None
    if classes is None:
        supported(_WHOLE, force=True)
        return uproot.open(path, object_cache=None, **options)[tree]
    handle = uproot.open(path, custom_classes=classes, object_cache=None, **options)
    wanted = set(branches)
    for _ in range(MAX_PASSES):
        _STATE.wanted, _STATE.seen, _STATE.skipped = frozenset(wanted), set(), []
        _STATE.refs = _STATE.blob = None
        try:
            ttree = handle[tree]
        finally:
            _STATE.wanted = _STATE.blob = None
        missed = _STATE.refs.missed if _STATE.refs is not None else []
        if not missed or not hasattr(ttree, "cursor"):
            break
        origin = ttree.cursor.origin
        more = {
            name
            for name, begin, end in _STATE.skipped
            for key in missed
            if begin <= origin + key - uproot.const.kMapOffset < end
        }
        if not more - wanted:
            break
        wanted |= more
    else:  # references keep pointing into skipped branches: parse it all
        return uproot.open(path, object_cache=None, **options)[tree]
    if hasattr(ttree, "branches"):
        listed = ttree.member("fBranches")
        listed._data = [b for b in listed._data if not isinstance(b, _Skipped)]
        ttree._lookup = {k: v for k, v in ttree._lookup.items() if not isinstance(v, _Skipped)}
    return ttree


@contextlib.contextmanager
def fixed_clock(stamp: datetime.datetime) -> Iterator[None]:
    """Within the block, uproot stamps the ROOT files it writes with ``stamp`` (naive, UTC)
    instead of the wall clock; on an uproot outside :data:`VERIFIED`, with the wall clock."""
    if not supported("written ROOT files carry the wall clock (not byte-reproducible)"):
        yield
        return
    from uproot.writing import _cascade, _cascadentuple, _cascadetree, writable

    class _Fixed(datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return stamp

    shim = types.SimpleNamespace(datetime=_Fixed)
    modules = (_cascade, _cascadentuple, _cascadetree, writable)
    with _LOCK:
        originals = [m.datetime for m in modules]
        for module in modules:
            module.datetime = shim
        try:
            yield
        finally:
            for module, original in zip(modules, originals, strict=True):
                module.datetime = original
