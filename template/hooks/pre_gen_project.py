"""Refuse names that would not work as a project, a package or a workload."""

import re
import sys

SLUG = "{{ cookiecutter.project_slug }}"
PACKAGE = "{{ cookiecutter.package_name }}"
WORKLOAD = "{{ cookiecutter.workload_name }}"
PYTHON = "{{ cookiecutter.python_version }}"

problems = []
if not re.fullmatch(r"[a-z][a-z0-9-]*", SLUG):
    problems.append(f"project_slug {SLUG!r}: lower-case letters, digits and '-'")
for label, value in (("package_name", PACKAGE), ("workload_name", WORKLOAD)):
    if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        problems.append(f"{label} {value!r} must be a lower-case Python identifier")
if WORKLOAD in {"demand", "recsys"}:
    problems.append(f"workload_name {WORKLOAD!r} is a built-in loopml workload")
if PYTHON != "3.11":
    problems.append(f"python_version {PYTHON!r}: loopml supports 3.11 only")
if problems:
    print("ERROR: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
