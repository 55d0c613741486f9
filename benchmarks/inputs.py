"""Large benchmark inputs made from the real NanoAOD samples: every branch kept, events replicated.

    python benchmarks/inputs.py ../shared/data/nanoaod/nano_dy.root OUT.root --events 400000 \
        --compression zlib --cluster 10000

The source's events are repeated (``event`` numbers made unique per copy) and written with
uproot in clusters of ``--cluster`` events (one basket per branch per cluster, as in real
files), keeping the NanoAOD layout: jagged branches grouped by their counter (``nJet`` +
``Jet_*``; uproot writes the counters as int32 where NanoAOD has uint32). The benchmarks make
such inputs at run time in a temporary folder; never committed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

COMPRESSION = {
    "zlib": lambda: uproot.ZLIB(4),
    "lz4": lambda: uproot.LZ4(4),
    "zstd": lambda: uproot.ZSTD(4),
    "none": lambda: None,
}


def _groups(tree: uproot.TTree) -> tuple[list[str], dict[str, list[str]]]:
    """Flat branch names, and jagged branch names per counter branch."""
    flat, jagged = [], {}
    counters = {b.count_branch.name for b in tree.branches if b.count_branch is not None}
    for branch in tree.branches:
        if branch.name in counters:
            continue  # written by uproot from the jagged groups
        if branch.count_branch is None:
            flat.append(branch.name)
        else:
            jagged.setdefault(branch.count_branch.name, []).append(branch.name)
    return flat, jagged


def _layout(arrays: ak.Array, flat: list[str], jagged: dict[str, list[str]]) -> dict:
    """Branches to write: flat arrays, and one record of fields per counter (``nX`` -> ``X``)."""
    out = {name: arrays[name] for name in flat}
    for counter, names in jagged.items():
        group = counter[1:]  # nJet -> Jet
        fields = {n.removeprefix(f"{group}_"): arrays[n] for n in names}
        if names == [group]:  # a lone jagged branch named like its counter (LHEPdfWeight)
            out[group] = arrays[names[0]]
        else:
            out[group] = ak.zip(fields)
    return out


def replicate(
    source: str | Path,
    output: str | Path,
    events: int,
    *,
    compression: str = "zlib",
    cluster: int = 10_000,
    tree: str = "Events",
) -> dict:
    """Write ``events`` events (copies of the source's) to ``output``; returns what was done."""
    started = time.perf_counter()
    with uproot.open(source) as f:
        t = f[tree]
        flat, jagged = _groups(t)
        arrays = t.arrays(library="ak")
    n = len(arrays)
    if n == 0:
        raise ValueError(f"{source}: no events to replicate")
    copies = -(-cluster // n)
    block = ak.concatenate([arrays] * copies)[:cluster]
    offsets = np.arange(len(block)) // n  # which copy within the block
    base = _layout(block, flat, jagged)
    types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in base.items()}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with uproot.recreate(output, compression=COMPRESSION[compression]()) as out:
        out_tree = out.mktree(tree, types, title=tree)
        while written < events:
            size = min(cluster, events - written)
            chunk = {k: v[:size] for k, v in base.items()}
            if "event" in chunk:  # unique event numbers: copy index x 10^7 + original
                copy = (written // n) + offsets[:size]
                chunk["event"] = ak.to_numpy(chunk["event"]).astype(np.uint64) + (
                    copy.astype(np.uint64) * np.uint64(10_000_000)
                )
            out_tree.extend(chunk)
            written += size
    return {
        "source": str(source),
        "output": str(output),
        "events": written,
        "branches": len(t.keys()),
        "compression": compression,
        "cluster": cluster,
        "bytes": output.stat().st_size,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--compression", choices=sorted(COMPRESSION), default="zlib")
    parser.add_argument("--cluster", type=int, default=10_000, help="events per basket/cluster")
    args = parser.parse_args()
    print(
        replicate(
            args.source,
            args.output,
            args.events,
            compression=args.compression,
            cluster=args.cluster,
        )
    )


if __name__ == "__main__":
    main()
