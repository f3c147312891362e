"""The ML Test Score card: its evidence exists and its score is computed.

Every pytest node id the card names is found by parsing the test file (no
pytest inside pytest), every ``make`` target in the Makefile, every ``loopml``
command (and option) in the Typer app; ``docs/ml-test-score.md`` must be what
``scripts/ml_test_score.py`` renders from ``docs/ml-test-score.yaml``.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ml_test_score.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ml_test_score", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while building the class.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


score = _load_script()
ENTRIES = score.load()
EVIDENCE = sorted({e for entry in ENTRIES for e in entry.evidence})


@cache
def _test_names(path: Path) -> frozenset[str]:
    """``test_x`` and ``TestY::test_x`` names defined in a test file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names |= {
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, functions) and item.name.startswith("test")
            }
    return frozenset(names)


@cache
def _make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


@cache
def _cli() -> Any:
    """loopml's root command (Typer vendors its own click: duck-typed here)."""
    from loopml.cli import app

    return typer.main.get_command(app)


def _check_loopml(words: list[str]) -> None:
    """``loopml SUB [SUB] [--option ...]``: each command and option exists."""
    command = _cli()
    rest = words[1:]
    while rest and rest[0] in getattr(command, "commands", {}):
        command = command.commands[rest.pop(0)]
    assert command is not _cli(), f"no loopml command in {' '.join(words)!r}"
    options = {opt for param in command.params for opt in param.opts}
    for word in rest:
        if word.startswith("--"):
            assert word in options, f"{' '.join(words)!r}: no option {word}"


@pytest.mark.parametrize("evidence", EVIDENCE)
def test_every_evidence_exists(evidence: str) -> None:
    words = evidence.split()
    if score.is_node_id(evidence):
        path, _, name = evidence.partition("::")
        file = ROOT / path
        assert file.name.startswith("test_") and file.is_file(), f"no {path}"
        assert name in _test_names(file), f"no test {name} in {path}"
    elif words[0] == "make":
        assert len(words) >= 2 and words[1] in _make_targets(), (
            f"no Makefile target in {evidence!r}"
        )
    elif words[0] == "loopml":
        _check_loopml(words)
    elif words[0] == ".venv/bin/python":
        assert (ROOT / words[1]).is_file(), f"no script {words[1]}"
    else:
        pytest.fail(f"{evidence!r} is neither a node id nor a known command")


def test_code_paths_exist() -> None:
    missing = [c for e in ENTRIES for c in e.code if not (ROOT / c).exists()]
    assert missing == []


def test_the_card_has_the_28_tests_of_the_rubric() -> None:
    assert len(ENTRIES) == 28
    for section in score.SECTIONS:
        numbers = [e.number for e in ENTRIES if e.section == section]
        assert numbers == list(range(1, 8)), section


def test_automated_tests_name_a_test_or_an_automated_command() -> None:
    stages = score.loop_stages()
    assert {"validate", "train", "promote"} <= stages
    unbacked = [
        f"{e.section} {e.number}"
        for e in ENTRIES
        if e.status == "automated"
        and not any(
            score.is_node_id(ev) or score.is_automated_command(ev, stages)
            for ev in e.evidence
        )
    ]
    assert unbacked == []


def test_manual_tests_name_a_command_a_person_runs() -> None:
    unbacked = [
        f"{e.section} {e.number}"
        for e in ENTRIES
        if e.status == "manual" and not any(not score.is_node_id(v) for v in e.evidence)
    ]
    assert unbacked == []


def test_scoring_follows_the_2017_rules() -> None:
    statuses = ["automated"] * 3 + ["manual"] * 3 + ["none"]
    entries = [
        score.Entry(section, i + 1, "t", status, (), "n")
        for section in score.SECTIONS
        for i, status in enumerate(statuses if section != "model" else ["manual"] * 7)
    ]
    assert score.section_sums(entries) == {
        "data": 4.5,
        "model": 3.5,
        "infrastructure": 4.5,
        "monitoring": 4.5,
    }
    assert score.final_score(entries) == 3.5


def test_committed_card_is_the_rendering_of_the_yaml() -> None:
    rendered = score.render(ENTRIES)
    committed = (ROOT / "docs" / "ml-test-score.md").read_text(encoding="utf-8")
    assert committed == rendered, "run .venv/bin/python scripts/ml_test_score.py"
    final = score.final_score(ENTRIES)
    assert final == min(score.section_sums(ENTRIES).values())
    assert f"**Final ML Test Score: {final:g}**" in committed


def test_check_mode_fails_on_a_stale_card(tmp_path: Path) -> None:
    card = tmp_path / "card.md"
    card.write_text("# hand-edited\n", encoding="utf-8")
    assert score.main(["--check", "--output", str(card)]) == 1
    assert score.main(["--output", str(card)]) == 0
    assert score.main(["--check", "--output", str(card)]) == 0
