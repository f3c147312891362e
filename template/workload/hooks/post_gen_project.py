"""Keep the chosen kind's modules, then move the workload into its project.

Rendered, the template is a staging folder: ``package/`` (the workload
package), ``tests/`` and ``kinds/<kind>/`` (the modules that differ by kind).
With ``project_dir`` set, the package goes to
``<project>/src/<package>/workloads/<workload>/``, the tests into
``<project>/tests/``, and the workload is registered with loopml by an entry
point in ``<project>/pyproject.toml``. Nothing existing is overwritten.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

KIND = "{{ cookiecutter.workload_kind }}"
PACKAGE = "{{ cookiecutter.package_name }}"
WORKLOAD = "{{ cookiecutter.workload_name }}"
TARGET = "{{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.workload:{{ cookiecutter.__class_name }}Workload"
PROJECT = r"{{ cookiecutter.project_dir }}"
GROUP = '[project.entry-points."loopml.workloads"]'


def fail(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def merge(source: Path, target: Path) -> list[Path]:
    """Move every file of ``source`` to the same place under ``target``."""
    files = sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        if (target / path.relative_to(source)).exists():
            fail(f"{target / path.relative_to(source)} already exists; nothing moved")
    moved = []
    for path in files:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), destination)
        moved.append(destination)
    return moved


def format_python(files: list[Path], project: Path) -> None:
    """ruff-format the new files with the project's settings (if ruff is here)."""
    ruff = Path(sys.executable).with_name("ruff")
    command = [str(ruff)] if ruff.exists() else ["ruff"] if shutil.which("ruff") else []
    python = [str(f) for f in files if f.suffix == ".py"]
    if command and python:
        # format first (long names), then sort imports, then format what moved.
        for step in (["format", "-q"], ["check", "--fix", "--silent"], ["format", "-q"]):
            subprocess.run([*command, *step, "--no-cache", *python], cwd=project)


def register(pyproject: Path) -> None:
    """Add the workload's entry point (the table is created if missing)."""
    text = pyproject.read_text(encoding="utf-8")
    line = f'{WORKLOAD} = "{TARGET}"'
    if GROUP in text:
        text = text.replace(GROUP, f"{GROUP}\n{line}", 1)
    else:
        text = text.rstrip("\n") + f"\n\n{GROUP}\n{line}\n"
    points = tomllib.loads(text)["project"]["entry-points"]["loopml.workloads"]
    assert points[WORKLOAD] == TARGET
    pyproject.write_text(text, encoding="utf-8")


here = Path.cwd()
merge(here / "kinds" / KIND, here)
shutil.rmtree(here / "kinds")
if not PROJECT:
    print(f"{WORKLOAD}: package/ and tests/ are in {here}; see template/README.md")
    sys.exit(0)

project = Path(PROJECT).resolve()
pyproject = project / "pyproject.toml"
if not pyproject.is_file():
    fail(f"{project} has no pyproject.toml: is it a project?")
workloads = project / "src" / PACKAGE / "workloads"
if (workloads / WORKLOAD).exists():
    fail(f"{workloads / WORKLOAD} already exists")
workloads.mkdir(parents=True, exist_ok=True)
init = workloads / "__init__.py"
if not init.exists():
    init.write_text('"""The workloads of this project, registered with loopml."""\n')
created = merge(here / "package", workloads / WORKLOAD)
created += merge(here / "tests", project / "tests")
register(pyproject)
format_python(created, project)
os.chdir(project)
shutil.rmtree(here)
print(f"added workload {WORKLOAD!r} ({KIND}) to {project}")
