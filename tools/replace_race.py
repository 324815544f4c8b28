"""Read a dataset in a loop while another process keeps replacing it.

Usage::

    python tools/replace_race.py {npy,hdf5} [SECONDS]

A writer process rewrites the dataset at one path with ``overwrite=True``,
version after version, every value of version ``v`` derived from ``v``; this
process opens and reads every array of it over and over and counts reads
whose arrays came from different versions ("mixed"), reads that raised
(by kind), and consistent ones.  An ooc that reads only what it opened
reports 0 mixed and no ChecksumError.  Run from the repository root.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ooc
from tests.store_suite import read_version, write_version


def main() -> None:
    fmt, seconds = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
    with tempfile.TemporaryDirectory() as tmp:
        path = write_version(Path(tmp) / ("d.h5" if fmt == "hdf5" else "d"), fmt, 0)
        writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path[:0] = {sys.path[:1]!r}
            from tests.store_suite import write_version
            end, v = time.monotonic() + {seconds}, 1
            while time.monotonic() < end:
                write_version({str(path)!r}, {fmt!r}, v)
                v += 1
            print(v - 1)""")], stdout=subprocess.PIPE, text=True)
        outcomes: Counter[str] = Counter()
        while writer.poll() is None:
            try:
                with ooc.open(path) as ds:
                    read_version(ds)
                outcomes["consistent"] += 1
            except AssertionError:
                outcomes["mixed"] += 1
            except Exception as exc:  # counted by kind: the point is to see them
                outcomes[type(exc).__name__] += 1
        written = writer.stdout.read().strip() if writer.stdout else "?"
    print(f"{fmt}: {sum(outcomes.values())} reads while {written} versions were written: "
          + ", ".join(f"{kind} {n}" for kind, n in outcomes.most_common())
          + ("" if outcomes["mixed"] else ", mixed 0"))


if __name__ == "__main__":
    main()
