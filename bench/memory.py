"""Benchmark: peak resident memory per pipeline stage.

Runs one `selftrain` command (default: the pipeline on the embedded default) and samples, twice a second, the
resident memory of its whole process tree (the CLI, its Prefect server, any workers) from /proc. Each sample is
tagged with the stage the run is in, read from Prefect's "Beginning subflow run" lines (a stage is a subflow the
pipeline names, `evaluate-sft` say; the subflows a stage starts count as its own). Reports per stage the peak of
the largest single process (what GNU time's maximum RSS shows) and of the tree, its minutes, and the run's.

    .venv/bin/python bench/memory.py                              # `selftrain pipeline`
    .venv/bin/python bench/memory.py -- pipeline --set simulate.n_tasks=400
    .venv/bin/python bench/memory.py --json runs/memory.json -- evaluate --set n_tasks=20

Target (issue 31): the default pipeline's peak under 4 GB (figures here in GiB, as GNU time's). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
STAGE = re.compile(r"Beginning (?:subflow|flow) run '([^']+)' for flow '([^']+)'")
PARTS = {"bootstrap", "warm-start", "personas", "simulate-shards", "evaluate-shards"}  # subflows inside a stage


def tree_rss(root: int) -> list[int]:
    """Resident bytes of `root` and every descendant."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            children[int(stat[1])].append(int(proc.name))
            rss[int(proc.name)] = int((proc / "statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(rss.get(pid, 0))
        todo.extend(children.get(pid, []))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the per-stage peaks here")
    parser.add_argument("command", nargs="*", default=["pipeline"], help="selftrain arguments (after --)")
    args = parser.parse_args()
    selftrain = Path(sys.executable).with_name("selftrain")
    proc = subprocess.Popen([str(selftrain), *args.command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    stage = ["start"]
    order: list[str] = ["start"]

    def follow() -> None:
        for line in proc.stdout:
            sys.stdout.write(line)
            if (match := STAGE.search(line)) and (match.group(2) not in PARTS or stage[0] == "start"):
                stage[0] = match.group(1) if match.group(2) != "pipeline" else "pipeline"
                if stage[0] not in order:
                    order.append(stage[0])

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    peaks: dict[str, dict[str, float]] = defaultdict(lambda: {"process": 0, "tree": 0, "seconds": 0.0})
    start = last = time.time()
    while proc.poll() is None:
        sizes = tree_rss(proc.pid)
        peak = peaks[stage[0]]
        peak["process"], peak["tree"] = max(peak["process"], max(sizes)), max(peak["tree"], sum(sizes))
        time.sleep(0.5)
        peak["seconds"] += time.time() - last
        last = time.time()
    reader.join(timeout=5)
    minutes = (time.time() - start) / 60
    gib = 2**30
    print(f"\n{'stage (as entered)':<28}{'largest process GiB':>20}{'whole tree GiB':>16}{'minutes':>10}")
    for name in order:
        if name in peaks:
            print(f"{name:<28}{peaks[name]['process'] / gib:>20.2f}{peaks[name]['tree'] / gib:>16.2f}"
                  f"{peaks[name]['seconds'] / 60:>10.1f}")
    overall = max(p["process"] for p in peaks.values()) / gib
    print(f"peak of the largest process: {overall:.2f} GiB; wall time {minutes:.1f} min; exit code {proc.returncode}; "
          f"load average at the end {os.getloadavg()[0]:.2f} (other work changes the time, not the memory)")
    if args.json:
        args.json.write_text(json.dumps({"command": args.command, "minutes": minutes, "exit_code": proc.returncode,
                                         "peaks_bytes": {k: peaks[k] for k in order if k in peaks}}, indent=2))
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
