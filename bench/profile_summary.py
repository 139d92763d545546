"""Print what a bench's ``--profile DIR`` recorded: CPU per unit of work, and where it went.

For each phase under DIR (``bench/profiling.py`` writes them): CPU seconds and µs per
unit (user, WebLog) of every process, the JVM's threads by CPU, and for each sampled
process the share of its samples in named groups (inclusive: a sample counts for every
group one of its frames belongs to, so groups overlap), its top functions inclusive and
its top functions by own time. Samples leave sleeping threads out but count a thread waiting
for a core: shares are close to CPU shares; the µs come from the CPU figures, never samples.
`.venv/bin/python bench/profile_summary.py DIR [--top N]`
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

# What to look for in a stack, Python (py-spy: "function (path:line)") and JVM (JFR:
# "package.Class.method") alike; a group counts a sample once, whichever frames match.
GROUPS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(pattern))
    for name, pattern in [
        ("protobuf encode/decode (botscore/wire)", r"\((botscore/wire|google/protobuf)/"),
        ("kafka-python record parse/build", r"\(kafka/record/"),
        ("kafka-python consumer (fetch, poll)", r"\(kafka/consumer/"),
        ("kafka-python producer (send, batch)", r"\(kafka/producer/"),
        ("kafka-python network + protocol", r"\(kafka/(conn|client_async|protocol/|net/)"),
        ("model call (scikit-learn)", r"\(sklearn/"),
        ("multilang read (pystorm)", r"read_(message|command|tuple|task_ids).*\(pystorm/"),
        ("multilang write (pystorm)", r"send_message.*\(pystorm/"),
        ("msgpack (Python)", r"\(msgpack/"),
        ("logging", r"\(logging/|org\.apache\.logging|org\.slf4j"),
        ("metrics", r"\(botscore/metrics|\(datadog/|\.metric"),
        ("redis-py", r"\(redis/"),
        ("JVM multilang (ShellBolt/ShellSpout)", r"\.(ShellBolt|ShellSpout|ShellProcess)\."),
        ("JVM msgpack serializer", r"botscore\.storm\.MsgpackSerializer|org\.msgpack"),
        ("JVM executor queues (JCQueue)", r"org\.apache\.storm\.utils\.JCQueue"),
        ("JVM acker", r"org\.apache\.storm\.daemon\.Acker"),
        ("JVM pipe I/O", r"java\.io\.|sun\.nio\.|java\.nio\."),
    ]
]
LINE = re.compile(r":\d+\)$")  # py-spy's line number: functions are summed over lines


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (``frame;frame;... count``, root first) with line numbers dropped."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(LINE.sub(")", f) for f in stack.split(";"))] += int(count)
    return stacks


def print_stacks(name: str, stacks: Counter[tuple[str, ...]], top: int) -> None:
    total = sum(stacks.values())
    print(f"\n  {name}: {total:,} samples")
    if not total:
        return
    groups: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for stack, count in stacks.items():
        for group, pattern in GROUPS:
            if any(pattern.search(frame) for frame in stack):
                groups[group] += count
        for frame in set(stack):
            inclusive[frame] += count
        own[stack[-1]] += count
    print("    groups (inclusive, overlapping):")
    for group, count in groups.most_common():
        print(f"      {count / total:6.1%}  {group}")
    print(f"    top {top} functions, inclusive:")
    for frame, count in inclusive.most_common(top):
        print(f"      {count / total:6.1%}  {frame}")
    print(f"    top {top} functions, own time:")
    for frame, count in own.most_common(top):
        print(f"      {count / total:6.1%}  {frame}")


def thread_group(name: str) -> str:
    """A thread's name with its numbers blurred, so a pool's threads add up; ``main`` kept."""
    return "main" if name.startswith("main (") else re.sub(r"\d+", "#", name)


def print_phase(directory: Path, top: int) -> None:
    summary: dict[str, Any] = json.loads((directory / "cpu.json").read_text())
    units, unit = summary["units"], summary["unit"]
    load = " ".join(f"{x:.1f}" for x in summary["load_average_1_5_15_start_end"])
    print(
        f"{directory.name}: {units:,} {unit}s, {summary['seconds']:.1f} s of phase; "
        f"load average (1, 5, 15 min) at start and end: {load}"
    )
    cpu: dict[str, float] = summary["cpu_seconds"]
    total = sum(cpu.values())
    print(f"  {'process':<24} {'CPU s':>8} {'µs/' + unit:>10} {'share':>7}")
    for name, seconds in sorted(cpu.items(), key=lambda item: -item[1]):
        per_unit = seconds / units * 1e6 if units else float("nan")
        print(f"  {name:<24} {seconds:8.2f} {per_unit:10.1f} {seconds / total:7.1%}")
    per_unit = total / units * 1e6 if units else float("nan")
    print(f"  {'all':<24} {total:8.2f} {per_unit:10.1f}")
    print(f"  (py-spy itself: {summary['py_spy_cpu_seconds']:.2f} CPU s, not counted above)")
    for process, by_name in summary["threads_cpu_seconds"].items():
        threads: Counter[str] = Counter()
        for name, seconds in by_name.items():
            threads[thread_group(name)] += seconds
        print(f"\n  {process}, threads by CPU (top {top}):")
        for name, seconds in threads.most_common(top):
            per_unit = seconds / units * 1e6 if units else float("nan")
            print(f"    {seconds:7.2f} s {per_unit:8.1f} µs/{unit}  {name}")
    for name in summary["sampled"]:
        path = directory / f"{name}.txt"
        if path.exists():
            print_stacks(name, read_stacks(path), top)
        else:
            print(f"\n  {name}: no samples ({path.name} missing)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path, help="what --profile DIR wrote, or one phase")
    parser.add_argument("--top", type=int, default=12, help="functions to list per process")
    options = parser.parse_args()
    phases = sorted(p.parent for p in options.directory.glob("cpu.json"))  # one phase's
    phases += sorted(p.parent for p in options.directory.glob("*/cpu.json"))
    if not phases:
        parser.error(f"no phase profiles (*/cpu.json) under {options.directory}")
    for phase in phases:
        print_phase(phase, options.top)


if __name__ == "__main__":
    main()
