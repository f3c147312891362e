"""The CI files (loopml's and the template's) are valid and call what exists.

They cannot run here, so each is checked against its schema (the ones bundled
with check-jsonschema: nothing is downloaded), and every ``make X`` they call
must be a target of the Makefile next to them, every loopml command a
command of the CLI.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from loopml.cli import app
from loopml.devtools import scaffold

REPO = Path(__file__).resolve().parents[2]
MAKE_CALL = re.compile(r"\bmake\s+([a-z][\w-]*)")
LOOPML_CALL = re.compile(r"(?:bin/loopml|-m loopml|\$\(LOOPML\))\s+([a-z][\w-]*)")
MAKE_TARGET = re.compile(r"^([a-z][\w-]*)\s*:(?!=)", re.MULTILINE)


def check_schema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with one of its bundled schemas."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
    )


def code_lines(path: Path) -> str:
    """The file without its comment lines (they mention make targets in prose)."""
    lines = path.read_text("utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def makefile_targets(makefile: Path) -> set[str]:
    """Targets the Makefile defines (variables assigned with ``:=`` excluded)."""
    return set(MAKE_TARGET.findall(makefile.read_text("utf-8")))


def cli_commands() -> set[str]:
    """The loopml CLI's commands."""
    group = typer.main.get_command(app)
    return set(getattr(group, "commands", {}))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One project per CI provider, made by ``loopml new``."""
    out = tmp_path_factory.mktemp("ci")
    return {
        ci: scaffold.new_project(f"ci-{ci}", out, ci=ci)
        for ci in ("github", "gitlab", "none")
    }


def test_loopml_ci_files_match_their_schemas() -> None:
    github = check_schema("vendor.github-workflows", REPO / ".github/workflows/ci.yml")
    assert github.returncode == 0, github.stdout + github.stderr
    gitlab = check_schema("vendor.gitlab-ci", REPO / ".gitlab-ci.yml")
    assert gitlab.returncode == 0, gitlab.stdout + gitlab.stderr


def test_template_ci_files_match_their_schemas(rendered: dict[str, Path]) -> None:
    github = rendered["github"]
    result = check_schema(
        "vendor.github-workflows", github / ".github/workflows/ci.yml"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    action = check_schema(
        "vendor.github-actions", github / ".github/actions/setup/action.yml"
    )
    assert action.returncode == 0, action.stdout + action.stderr
    gitlab = check_schema("vendor.gitlab-ci", rendered["gitlab"] / ".gitlab-ci.yml")
    assert gitlab.returncode == 0, gitlab.stdout + gitlab.stderr


def test_a_broken_workflow_fails_the_schema(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text("name: ci\non: push\njobs:\n  test:\n    steps: []\n")
    assert check_schema("vendor.github-workflows", broken).returncode != 0


def test_only_the_chosen_provider_is_kept(rendered: dict[str, Path]) -> None:
    present = {
        ci: ((p / ".github").exists(), (p / ".gitlab-ci.yml").exists())
        for ci, p in rendered.items()
    }
    assert present == {
        "github": (True, False),
        "gitlab": (False, True),
        "none": (False, False),
    }


def _ci_files(rendered: dict[str, Path]) -> list[tuple[Path, Path]]:
    """Each CI file with the Makefile it calls."""
    return [
        (REPO / ".github/workflows/ci.yml", REPO / "Makefile"),
        (REPO / ".gitlab-ci.yml", REPO / "Makefile"),
        (
            rendered["github"] / ".github/workflows/ci.yml",
            rendered["github"] / "Makefile",
        ),
        (rendered["gitlab"] / ".gitlab-ci.yml", rendered["gitlab"] / "Makefile"),
    ]


def test_every_make_target_called_by_ci_exists(rendered: dict[str, Path]) -> None:
    for ci_file, makefile in _ci_files(rendered):
        called = set(MAKE_CALL.findall(code_lines(ci_file)))
        assert {"test", "run"} <= called, ci_file
        missing = called - makefile_targets(makefile)
        assert not missing, f"{ci_file} calls make {sorted(missing)}, not in {makefile}"


def test_every_loopml_command_called_exists(rendered: dict[str, Path]) -> None:
    commands = cli_commands()
    files = [ci for ci, _ in _ci_files(rendered)] + [rendered["github"] / "Makefile"]
    used: set[str] = set()
    for path in files:
        used |= set(LOOPML_CALL.findall(code_lines(path)))
    assert {"run", "ingest", "promote"} <= used
    assert used <= commands, sorted(used - commands)


def test_ci_covers_tests_merge_requests_main_and_a_schedule() -> None:
    github = (REPO / ".github/workflows/ci.yml").read_text("utf-8")
    for needle in (
        "pull_request",
        "schedule",
        "refs/heads/main",
        "GITHUB_STEP_SUMMARY",
    ):
        assert needle in github, needle
    gitlab = (REPO / ".gitlab-ci.yml").read_text("utf-8")
    for needle in (
        "merge_request_event",
        '"schedule"',
        "CI_DEFAULT_BRANCH",
        "expose_as",
    ):
        assert needle in gitlab, needle
