"""How long `relieve --help` and `relieve profiles list` take, from process start to exit.

python benchmarks/cli_bench.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RELIEVE = str(Path(sys.executable).parent / "relieve")
COMMANDS = (["--help"], ["profiles", "list"])


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([RELIEVE, *args], capture_output=True, check=True)  # noqa: S603 - our own CLI
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    results = {}
    for args in COMMANDS:
        samples = sorted(timed(args) for _ in range(opts.runs))
        results[" ".join(args)] = {
            "p50_ms": round(statistics.median(samples) * 1000, 1),
            "max_ms": round(samples[-1] * 1000, 1),
        }
    if opts.json:
        print(json.dumps(results, indent=2))
        return
    for command, figures in results.items():
        p50, worst = figures["p50_ms"], figures["max_ms"]
        print(f"relieve {command:<16} p50 {p50:7.1f} ms   max {worst:7.1f} ms")
    print("target: relieve --help well under 500 ms")


if __name__ == "__main__":
    main()
