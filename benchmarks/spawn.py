"""Run one command and write its own wall time and peak memory to a JSON file.

    python benchmarks/spawn.py REPORT.json CMD [ARG ...]

Linux keeps a process's peak resident set across ``exec`` from the memory it was forked with: a
command forked straight from the benchmark process, once that process has loaded TensorFlow and
models in-process (hundreds of MB), reports at least that much whatever it used itself. Forked
from this small launcher instead, its ``ru_maxrss`` is its own. The time is taken here too, from
just before the fork to the exit, so the launcher's own start-up is not counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    report, cmd = argv[0], argv[1:]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)  # stdin, stdout and stderr are the launcher's
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    with open(report, "w", encoding="utf-8") as fh:
        json.dump({"seconds": seconds, "peak_kb": usage.ru_maxrss, "returncode": code}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
