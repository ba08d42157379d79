"""Run every benchmark script in turn and collect their markdown into one file (`make bench`).

Each script prints its own table and machine; this runner only sequences them, so a single one can also be
run by hand. The full set takes a couple of hours on 2 cores (the 1M-document BM25 and 1M-vector ANN runs
dominate); `--quick` runs the same scripts on SciFact only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent

FULL = [
    ("BM25: our inverted index against bm25s", ["bm25.py"]),
    ("ANN backends on 1M seeded vectors", ["ann.py"]),
    ("Build stages, rebuild with no change, torch against ONNX int8", ["build_stages.py"]),
    ("Ranker scoring latency", ["ranker_latency.py"]),
    ("Long queries: 20,000 characters", ["long_query.py"]),
    ("HTTP load: searchrec against txtai", ["http_load.py"]),
    ("One search, stage by stage", ["query_path.py"]),
    ("Query encoder: fp32 against int8, one thread each", ["query_encoder.py", "--threads", "1"]),
    ("Soak: 10 minutes of mixed requests with a version published every minute", ["soak.py"]),
    ("Real-time writes: events and deletes per second, visibility on the other worker", ["writes.py"]),
    (
        "Streaming equals rebuilding: /recommend after streamed events against a rebuild",
        ["streaming_vs_rebuild.py"],
    ),
    ("Growth: 10k and 100k synthetic items", ["growth.py", "--max-docs", "100000", "--ray"]),
]
QUICK = [
    ("BM25 on SciFact", ["bm25.py", "--skip-zipf"]),
    ("ANN backends on 100k seeded vectors", ["ann.py", "--n", "100000"]),
    ("Build stages", ["build_stages.py"]),
    ("Ranker scoring latency", ["ranker_latency.py"]),
    ("Long queries: 20,000 characters", ["long_query.py"]),
    ("HTTP load: searchrec against txtai (100 queries)", ["http_load.py", "--queries", "100"]),
    ("One search, stage by stage", ["query_path.py", "--rounds", "1"]),
    ("Query encoder: fp32 against int8, one thread", ["query_encoder.py", "--threads", "1", "--rounds", "1"]),
    ("Soak: 2 minutes", ["soak.py", "--minutes", "2", "--publish-every", "30"]),
    (
        "Real-time writes (fewer of each)",
        ["writes.py", "--requests", "200", "--events", "5000", "--deletes", "100", "--samples", "50"],
    ),
    ("Growth: 10k synthetic items", ["growth.py", "--max-docs", "10000", "--ray"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="markdown file to write")
    parser.add_argument("--quick", action="store_true", help="smaller corpora; minutes instead of hours")
    args = parser.parse_args()
    sections = [f"# Benchmark run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"]
    failed = 0
    for title, command in QUICK if args.quick else FULL:
        script = BENCH / command[0]
        if not script.is_file():
            sections.append(f"## {title}\n\n(skipped: {script.name} is missing)\n")
            continue
        print(f"== {title}", flush=True)
        done = subprocess.run([sys.executable, str(script), *command[1:]], capture_output=True, text=True)
        print(done.stdout[-2000:], flush=True)
        if done.returncode != 0:
            failed += 1
            sections.append(
                f"## {title}\n\nFAILED (exit {done.returncode}):\n\n```\n{done.stderr[-3000:]}\n```\n"
            )
        else:
            sections.append(f"## {title}\n\n`python bench/{' '.join(command)}`\n\n{done.stdout}\n")
    args.out.write_text("\n".join(sections), encoding="utf-8")
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
