"""Refuse names that would not work as Python packages or loopml workloads."""

import re
import sys

PACKAGE = "{{ cookiecutter.package_name }}"
WORKLOAD = "{{ cookiecutter.workload_name }}"
BUILT_IN = {"demand", "recsys"}

problems = []
for label, value in (("package_name", PACKAGE), ("workload_name", WORKLOAD)):
    if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        problems.append(f"{label} {value!r} must be a lower-case Python identifier")
if WORKLOAD in BUILT_IN:
    problems.append(f"workload_name {WORKLOAD!r} is a built-in loopml workload")
if problems:
    print("ERROR: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
