"""Finish the project: CI files, loopml's source, the first workload, formatting.

1. Keep only the chosen CI provider's files.
2. Write where loopml comes from into the Makefile (``LOOPML_SOURCE``): the
   value given, else the loopml checkout this template lives in, else the
   pip requirement ``loopml``.
3. Render the workload template (``template/workload``) into the project.
4. Format the result with ruff when it is installed (names change line
   lengths), so ``make lint`` passes from the first commit.
"""

import shutil
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

CI = "{{ cookiecutter.ci_provider }}"
SOURCE = r"{{ cookiecutter.loopml_source }}"
REPO_DIR = Path(r"{{ cookiecutter._repo_dir }}").resolve()
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


def loopml_checkout() -> str | None:
    """The loopml checkout holding this template, if it is one."""
    root = REPO_DIR.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "loopml"' in pyproject.read_text("utf-8"):
        return str(root)
    return None


source = SOURCE or loopml_checkout() or "loopml"
makefile = project / "Makefile"
makefile.write_text(makefile.read_text("utf-8").replace("@LOOPML_SOURCE@", source))

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
