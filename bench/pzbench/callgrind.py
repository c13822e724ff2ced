"""Instructions a command executes, counted by callgrind: this VM has no hardware
counters for `perf stat` (hit_instructions.py, miss_instructions.py)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


def instructions(command: list[str], src: Path) -> int:
    """Instructions `command` (a Python child) executes with PYTHONPATH=`src`. One hash
    seed for every run: string hashing decides how many probes dict lookups take, which
    would differ from run to run otherwise."""
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}
    with tempfile.NamedTemporaryFile(prefix="callgrind-") as out_file:
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file.name}", *command],
            env=env,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise RuntimeError(f"the measured run failed:\n{run.stderr[-3000:]}")
        for line in Path(out_file.name).read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"callgrind gave no count:\n{run.stderr[-3000:]}")
