"""Finish the project: CI files, loopml's source, the first workload, formatting.

1. Keep only the chosen CI provider's files.
2. Write where loopml comes from into the Makefile (``LOOPML_SOURCE``): the
   value given, else the loopml checkout this template lives in as a path
   relative to the project (when it is inside or next to it), else the pip
   requirement ``loopml``. Never an absolute path of this machine.
3. Render the workload template (``template/workload``) into the project.
4. Format the result with ruff when it is installed (names change line
   lengths), so ``make lint`` passes from the first commit.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

CI = "{{ cookiecutter.ci_provider }}"
SOURCE = r"{{ cookiecutter.loopml_source }}"
REPO_DIR = Path(r"{{ cookiecutter._repo_dir }}").resolve()
#: how many folders up a checkout may be and still count as "next to" it.
MAX_UP = 2
CONTEXT = {
    "package_name": "{{ cookiecutter.package_name }}",
    "workload_name": "{{ cookiecutter.workload_name }}",
    "workload_kind": "{{ cookiecutter.workload_kind }}",
}

project = Path.cwd()
if CI != "github":
    shutil.rmtree(project / ".github")
if CI != "gitlab":
    (project / ".gitlab-ci.yml").unlink()


def loopml_checkout() -> Path | None:
    """The loopml checkout holding this template, if it is one."""
    root = REPO_DIR.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "loopml"' in pyproject.read_text("utf-8"):
        return root
    return None


def default_source() -> str:
    """LOOPML_SOURCE's default: never this machine's absolute path.

    A checkout the project is inside of, or next to (``../loopml``, at most
    ``MAX_UP`` folders up), is written relative to the project, so a
    teammate's clone with the same layout works; otherwise the pip
    requirement ``loopml`` (the LOOPML_SOURCE environment variable can name
    a checkout instead).
    """
    checkout = loopml_checkout()
    if checkout is None:
        return "loopml"
    relative = Path(os.path.relpath(checkout, project))
    inside = project.resolve().is_relative_to(checkout)
    if inside or relative.parts.count("..") <= MAX_UP:
        return relative.as_posix()
    return "loopml"


source = SOURCE or default_source()
makefile = project / "Makefile"
makefile.write_text(makefile.read_text("utf-8").replace("@LOOPML_SOURCE@", source))
if source == "loopml" and loopml_checkout() is not None:
    print(
        f"note: loopml's checkout {loopml_checkout()} is far from {project}; "
        "`make setup` installs the pip requirement `loopml` unless the "
        "LOOPML_SOURCE variable names a checkout (see the README)"
    )

staging = project / ".workload-staging"
cookiecutter(
    str(REPO_DIR / "workload"),
    no_input=True,
    output_dir=str(staging),
    extra_context={**CONTEXT, "project_dir": str(project)},
    default_config={"replay_dir": str(staging / ".replay")},
)
shutil.rmtree(staging, ignore_errors=True)

ruff = Path(sys.executable).with_name("ruff")
ruff_cmd = [str(ruff)] if ruff.exists() else ["ruff"] if shutil.which("ruff") else []
if ruff_cmd:
    targets = ["src", "tests", "notebooks"]
    for step in (["format", "-q"], ["check", "--fix", "--silent"], ["format", "-q"]):
        subprocess.run([*ruff_cmd, *step, "--no-cache", *targets], cwd=project)
print(f"created {project}: cd {project.name} && make test && make run")
