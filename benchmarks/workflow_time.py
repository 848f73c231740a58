"""The wall time of a whole workflow command (run only with ``run.py --workflow``)."""

from __future__ import annotations

import shlex
import subprocess
import time


def bench_workflow(cmd: str) -> dict:
    print(f"\n== workflow: {cmd} ==")
    t0 = time.perf_counter()
    proc = subprocess.run(shlex.split(cmd), check=False)
    wall = time.perf_counter() - t0
    print(f"exit {proc.returncode}, {wall:.1f} s")
    return {"cmd": cmd, "returncode": proc.returncode, "wall_s": wall}
