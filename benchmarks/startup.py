"""CLI start-up: `imaging-biobank --help` and `stats` against a bare Python start, same run.

Baseline: the interpreter alone (`python -c pass`), so the ratios say how much our start-up
adds on this machine. Run: `make bench` (or `.venv/bin/python benchmarks/startup.py`).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "imaging_biobank"]
REPEAT = 9


def median_seconds(command: list[str]) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        subprocess.run([*CLI, "init", "--db", url], check=True, capture_output=True)
        subprocess.run(
            [*CLI, "register", str(ROOT / "examples" / "primage.yaml"), "--db", url],
            check=True,
            capture_output=True,
        )
        baseline = median_seconds([sys.executable, "-c", "pass"])
        rows = [
            ("python -c pass (baseline)", baseline),
            ("imaging-biobank --help", median_seconds([*CLI, "--help"])),
            ("imaging-biobank vocab list", median_seconds([*CLI, "vocab", "list"])),
            ("imaging-biobank stats", median_seconds([*CLI, "stats", "--db", url])),
            (
                "imaging-biobank stats --json",
                median_seconds([*CLI, "stats", "--json", "--db", url]),
            ),
        ]
    print(f"CLI start-up, median of {REPEAT} runs (warm cache)")
    print(f"{'command':34} {'seconds':>8} {'x baseline':>11}")
    for name, seconds in rows:
        print(f"{name:34} {seconds:8.3f} {seconds / baseline:11.1f}")


if __name__ == "__main__":
    main()
