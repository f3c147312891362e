"""Refresh ``tests/durations.json`` from a JUnit XML report of a full run.

    .venv/bin/pytest -q -n 3 --dist loadfile --junitxml=/tmp/junit.xml
    .venv/bin/python tests/durations.py /tmp/junit.xml

The file gives each test file's seconds; ``conftest.py`` starts the slowest
files first.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET  # noqa: S405 - our own pytest report
from collections import Counter
from pathlib import Path

OUT = Path(__file__).with_name("durations.json")


def main(report: str) -> None:
    """Sum each file's test times and write them, slowest first."""
    per_file: Counter[str] = Counter()
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
        name = str(case.get("classname", "")).replace(".", "/") + ".py"
        per_file[name] += float(case.get("time", 0.0))
    ranked = {name: round(s, 1) for name, s in per_file.most_common() if s >= 1.0}
    OUT.write_text(json.dumps(ranked, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(ranked)} files to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
