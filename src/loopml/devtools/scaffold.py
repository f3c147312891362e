"""``loopml new``: a project, or one more workload, from the cookiecutter template.

The template lives in ``template/`` of the loopml checkout (``LOOPML_TEMPLATE_DIR``
points elsewhere): ``template/`` renders a project and its hooks render
``template/workload`` for the first workload; ``--workload-only`` renders
``template/workload`` alone into an existing project. Names are checked here
first, so a bad name or an existing folder fails before anything is written.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILT_IN_WORKLOADS = frozenset({"demand", "recsys"})
CI_PROVIDERS = ("github", "gitlab", "none")
_PROJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9 _-]*")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


class ScaffoldError(Exception):
    """A project or workload that cannot be made; the message says why.

    A mistake of the request (a bad name, kind or CI provider, a folder that
    exists or is not a project); :class:`ScaffoldFailedError` when the request
    was fine and making it failed.
    """


class ScaffoldFailedError(ScaffoldError):
    """The template is missing, or cookiecutter failed on a good request."""


@dataclass(frozen=True)
class ProjectNames:
    """The names derived from a project name, as the template derives them."""

    project_name: str
    slug: str
    package: str


def template_dir() -> Path:
    """The cookiecutter template folder.

    Raises:
        ScaffoldError: when it is missing (loopml installed without its checkout).
    """
    env = os.environ.get("LOOPML_TEMPLATE_DIR")
    folder = Path(env) if env else Path(__file__).resolve().parents[3] / "template"
    if not (folder / "cookiecutter.json").is_file():
        raise ScaffoldFailedError(
            f"no cookiecutter template at {folder}; set LOOPML_TEMPLATE_DIR to the "
            "template/ folder of a loopml checkout"
        )
    return folder


def workload_kinds(template: Path | None = None) -> list[str]:
    """The kinds of workload the template can make (``regression``, ...)."""
    root = (template or template_dir()) / "workload"
    return sorted(
        p.name
        for p in root.glob("*/kinds/*")
        if p.is_dir() and not p.name.startswith(".")
    )


def project_names(name: str) -> ProjectNames:
    """Slug and package of a project name (``My Shop`` -> ``my-shop``, ``my_shop``).

    Raises:
        ScaffoldError: for a name that gives no valid slug.
    """
    if not _PROJECT_NAME.fullmatch(name):
        raise ScaffoldError(
            f"bad project name {name!r}: start with a letter; use letters, "
            "digits, spaces, '-' or '_'"
        )
    slug = name.lower().strip().replace(" ", "-").replace("_", "-")
    return ProjectNames(name, slug, slug.replace("-", "_"))


def check_workload_name(name: str) -> None:
    """Refuse a workload name loopml cannot register.

    Raises:
        ScaffoldError: for a name that is not a lower-case identifier or is
            a built-in workload.
    """
    if not _IDENTIFIER.fullmatch(name):
        raise ScaffoldError(
            f"bad workload name {name!r}: a lower-case Python identifier "
            "(letters, digits, '_'), starting with a letter"
        )
    if name in BUILT_IN_WORKLOADS:
        raise ScaffoldError(f"workload name {name!r} is a built-in loopml workload")


def _check_kind(kind: str, template: Path) -> None:
    known = workload_kinds(template)
    if kind not in known:
        raise ScaffoldError(f"unknown workload kind {kind!r}; choose one of {known}")


def _cookiecutter(
    template: Path, output_dir: Path, no_input: bool, context: dict[str, Any]
) -> Path:
    """Run cookiecutter with its replay and clone folders in a temp folder."""
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.main import cookiecutter

    with tempfile.TemporaryDirectory(prefix="loopml-new-") as scratch:
        config = {"replay_dir": scratch, "cookiecutters_dir": scratch}
        try:
            made = cookiecutter(
                str(template),
                no_input=no_input,
                output_dir=str(output_dir),
                extra_context=context,
                default_config=config,
            )
        except CookiecutterException as error:
            raise ScaffoldFailedError(f"cookiecutter failed: {error}") from error
    return Path(made)


def new_project(
    name: str,
    output_dir: Path,
    *,
    no_input: bool = True,
    workload: str | None = None,
    kind: str = "regression",
    ci: str = "github",
    loopml_source: str | None = None,
) -> Path:
    """Make a project that depends on loopml, with its first workload.

    Args:
        name: project name; the folder is its slug (``My Shop`` -> ``my-shop``).
        output_dir: where the project folder is created.
        no_input: take every value from the arguments and defaults, no prompts.
        workload: the first workload (default: the package name).
        kind: the kind of workload (see :func:`workload_kinds`).
        ci: CI provider whose files are kept.
        loopml_source: a loopml checkout or pip requirement for the project's
            ``make setup`` (default: this checkout).

    Returns:
        The project folder.

    Raises:
        ScaffoldError: for a bad name or kind, an existing folder, or a failed
            template hook.
    """
    template = template_dir()
    names = project_names(name)
    workload = workload or names.package
    check_workload_name(names.package)
    check_workload_name(workload)
    _check_kind(kind, template)
    if ci not in CI_PROVIDERS:
        raise ScaffoldError(f"unknown CI provider {ci!r}; choose one of {CI_PROVIDERS}")
    target = output_dir / names.slug
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or -o")
    output_dir.mkdir(parents=True, exist_ok=True)
    context = {
        "project_name": name,
        "workload_name": workload,
        "workload_kind": kind,
        "ci_provider": ci,
        "loopml_source": loopml_source or "",
    }
    return _cookiecutter(template, output_dir, no_input, context)


def project_package(project: Path) -> str:
    """The one package under ``<project>/src`` of a loopml-style project.

    Raises:
        ScaffoldError: when the folder is not such a project.
    """
    if not (project / "pyproject.toml").is_file():
        raise ScaffoldError(f"{project} has no pyproject.toml: is it a project?")
    packages = sorted(
        p.name for p in (project / "src").glob("*") if (p / "__init__.py").is_file()
    )
    if len(packages) != 1:
        raise ScaffoldError(
            f"{project}/src should hold exactly one package, found {packages}"
        )
    return packages[0]


def new_workload(
    name: str, project: Path, *, no_input: bool = True, kind: str = "regression"
) -> Path:
    """Add a workload package (and its tests) to an existing project.

    Args:
        name: the workload name (a lower-case identifier).
        project: the project folder (with ``pyproject.toml`` and ``src/<pkg>``).
        no_input: no prompts.
        kind: the kind of workload.

    Returns:
        The new workload package folder.

    Raises:
        ScaffoldError: for a bad name or kind, a folder that is not a project,
            or a workload that already exists.
    """
    template = template_dir()
    check_workload_name(name)
    _check_kind(kind, template)
    project = project.resolve()
    package = project_package(project)
    target = project / "src" / package / "workloads" / name
    if target.exists():
        raise ScaffoldError(f"{target} already exists")
    context = {
        "package_name": package,
        "workload_name": name,
        "workload_kind": kind,
        "project_dir": str(project),
    }
    with tempfile.TemporaryDirectory(prefix="loopml-workload-") as staging:
        _cookiecutter(template / "workload", Path(staging), no_input, context)
    if not target.is_dir():
        raise ScaffoldFailedError(f"the workload template did not create {target}")
    return target
