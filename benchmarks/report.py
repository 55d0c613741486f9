"""Writing a benchmark's section of ``benchmarks/results.md`` (the report of every script)."""

from __future__ import annotations

from pathlib import Path


def replace_section(results: Path, header: str, text: str) -> None:
    """Put ``text`` (starting with ``header``, a ``## `` line) in ``results`` in place of the
    section that starts with ``header`` (up to the next ``## ``), or at the end."""
    current = results.read_text() if results.is_file() else ""
    if header in current:
        head, rest = current.split(header, 1)
        tail = rest[rest.index("\n## ") + 1 :] if "\n## " in rest else ""
        current = (
            head.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
        )
    else:
        current = current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    results.write_text(current)
