"""``loopml new`` checks names, kinds and folders before writing anything."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.devtools import scaffold


@pytest.mark.parametrize(
    ("name", "slug", "package"),
    [
        ("demo", "demo", "demo"),
        ("Acme Shop", "acme-shop", "acme_shop"),
        ("sales_2", "sales-2", "sales_2"),
    ],
)
def test_project_names_follow_the_template(name: str, slug: str, package: str) -> None:
    names = scaffold.project_names(name)
    assert (names.slug, names.package) == (slug, package)


@pytest.mark.parametrize("name", ["9lives", "", "shop!", "-x"])
def test_bad_project_names_are_refused(name: str) -> None:
    with pytest.raises(scaffold.ScaffoldError, match="bad project name"):
        scaffold.project_names(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Bad", "bad workload name"),
        ("a-b", "bad workload name"),
        ("demand", "built-in"),
        ("recsys", "built-in"),
    ],
)
def test_bad_workload_names_are_refused(name: str, message: str) -> None:
    with pytest.raises(scaffold.ScaffoldError, match=message):
        scaffold.check_workload_name(name)


def test_the_template_offers_its_kinds_and_its_prompts_list_them() -> None:
    kinds = scaffold.workload_kinds()
    assert kinds == ["classification", "regression"]
    for config in ("cookiecutter.json", "workload/cookiecutter.json"):
        listed = json.loads((scaffold.template_dir() / config).read_text("utf-8"))
        assert sorted(listed["workload_kind"]) == kinds, config


def test_new_kind_help_names_every_kind() -> None:
    result = CliRunner().invoke(app, ["new", "--help"], terminal_width=200)
    for kind in scaffold.workload_kinds():
        assert kind in result.output


@pytest.fixture(scope="module")
def fake_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A loopml checkout (pyproject + template) somewhere under a temp folder."""
    root = tmp_path_factory.mktemp("clone") / "loopml"
    shutil.copytree(scaffold.template_dir(), root / "template")
    (root / "pyproject.toml").write_text('[project]\nname = "loopml"\n', "utf-8")
    return root


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("work", "../../loopml"),  # next to the checkout
        ("loopml/examples/a/b", "../../../.."),  # inside it, however deep
        ("far/away/from/it", "loopml"),  # too far: the pip requirement
    ],
)
def test_the_makefile_names_loopml_relatively_never_by_this_machines_path(
    fake_checkout: Path, monkeypatch: pytest.MonkeyPatch, where: str, source: str
) -> None:
    monkeypatch.setenv("LOOPML_TEMPLATE_DIR", str(fake_checkout / "template"))
    out = fake_checkout.parent / where
    project = scaffold.new_project(f"p-{len(where)}", out, ci="none")
    makefile = (project / "Makefile").read_text("utf-8")
    assert f"LOOPML_SOURCE ?= {source}\n" in makefile
    assert str(fake_checkout) not in makefile
    if source != "loopml":
        assert (project / source / "pyproject.toml").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["taken"], "already exists"),
        (["9lives"], "bad project name"),
        (["shop", "--workload", "Bad-Name"], "bad workload name"),
        (["shop", "--workload", "demand"], "built-in"),
        (["shop", "--kind", "astrology"], "unknown workload kind"),
        (["shop", "--ci", "jenkins"], "unknown CI provider"),
    ],
)
def test_new_fails_clearly_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "taken").mkdir()
    result = CliRunner().invoke(app, ["new", *args, "--no-input", "-o", str(tmp_path)])
    assert result.exit_code == 2  # a mistake, as the README says of every command
    assert message in " ".join(result.output.split())
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_new_without_a_terminal_asks_for_no_input(tmp_path: Path) -> None:
    """Its questions need a terminal: a clear line, not 'interrupted' (130)."""
    result = CliRunner().invoke(app, ["new", "shop", "-o", str(tmp_path)], input="")
    assert result.exit_code == 2
    assert "pass --no-input" in " ".join(result.output.split())
    assert list(tmp_path.iterdir()) == []


def test_a_broken_template_is_a_failure_not_a_mistake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_TEMPLATE_DIR", str(tmp_path / "nowhere"))
    result = CliRunner().invoke(app, ["new", "shop", "--no-input", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "no cookiecutter template" in " ".join(result.output.split())


def test_workload_only_needs_a_project(tmp_path: Path) -> None:
    with pytest.raises(scaffold.ScaffoldError, match="no pyproject.toml"):
        scaffold.new_workload("orders", tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(scaffold.ScaffoldError, match="exactly one package"):
        scaffold.new_workload("orders", tmp_path)


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A project rendered with each CI provider choice."""
    out = tmp_path_factory.mktemp("projects")
    return {
        ci: scaffold.new_project(f"shop-{ci}", out, ci=ci)
        for ci in scaffold.CI_PROVIDERS
    }


@pytest.mark.parametrize("ci", ["github", "gitlab", "none"])
def test_the_readme_describes_the_ci_chosen(projects: dict[str, Path], ci: str) -> None:
    readme = " ".join((projects[ci] / "README.md").read_text("utf-8").split())
    ci_only = ("tests on every push", "CI posts it", "what CI checks")
    if ci == "none":
        assert "No CI:" in readme
        assert f'loopml new "shop-{ci}" --ci github --no-input -o /tmp/ci' in readme
        assert f"/tmp/ci/shop-{ci}/.github/" in readme
        assert not [phrase for phrase in ci_only if phrase in readme]
    else:
        path = ".github/workflows/ci.yml" if ci == "github" else ".gitlab-ci.yml"
        assert f"CI (`{path}`): tests on every push" in readme
        assert (projects[ci] / path).is_file()
        assert "No CI" not in readme


def test_the_notebook_is_as_nbstripout_leaves_it(projects: dict[str, Path]) -> None:
    """A fresh project's first commit passes its own nbstripout hook."""
    notebooks = sorted((projects["none"] / "notebooks").glob("*.ipynb"))
    assert notebooks
    check = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", *map(str, notebooks)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
