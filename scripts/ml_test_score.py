"""Score loopml on the ML Test Score rubric and render the card.

Reads ``docs/ml-test-score.yaml`` (the 28 tests of Breck et al. 2017, each
with a status and its evidence), scores it under the paper's 2017 rules
(automated 1, manual 0.5, none 0; a section is the sum of its 7 tests; the
final score is the minimum of the four sections) and writes
``docs/ml-test-score.md``.

Regenerate the card after editing the YAML::

    .venv/bin/python scripts/ml_test_score.py

Check that the committed card is what the YAML renders to (exit 1 if not)::

    .venv/bin/python scripts/ml_test_score.py --check
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
YAML_PATH = ROOT / "docs" / "ml-test-score.yaml"
MD_PATH = ROOT / "docs" / "ml-test-score.md"
COMMAND = ".venv/bin/python scripts/ml_test_score.py"

#: Section key in the YAML -> heading, in the paper's order.
SECTIONS = {
    "data": "Data",
    "model": "Model development",
    "infrastructure": "ML infrastructure",
    "monitoring": "Monitoring",
}
TESTS_PER_SECTION = 7
#: The score issue 10 asks for.
GOAL = 6.0
POINTS = {"automated": 1.0, "manual": 0.5, "none": 0.0}
#: Commands that run by themselves (CI or the loop), besides the loop's stages.
ALWAYS_AUTOMATED = ("make test", "make run", "loopml run")
FIELDS = {"number", "title", "status", "evidence", "note", "code"}


@dataclass(frozen=True)
class Entry:
    """One test of the rubric as loopml meets it."""

    section: str
    number: int
    title: str
    status: str
    evidence: tuple[str, ...]
    note: str
    code: tuple[str, ...] = field(default=())

    @property
    def points(self) -> float:
        """The test's points under the 2017 rules."""
        return POINTS[self.status]


def is_node_id(evidence: str) -> bool:
    """Whether an evidence item is a pytest node id (``tests/...py::name``)."""
    return evidence.startswith("tests/") and ".py::" in evidence


def loop_stages(
    pipeline: Path = ROOT / "src" / "loopml" / "stages" / "runner.py",
) -> set[str]:
    """The stage names of ``loopml run`` (``STAGES`` in stages/runner.py).

    Parsed rather than imported, so the script does not load MLflow and Feast.
    """
    tree = ast.parse(pipeline.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        target = getattr(node, "target", None)
        value = getattr(node, "value", None)
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(target, ast.Name)
            and target.id == "STAGES"
            and isinstance(value, ast.Dict)
        ):
            return {
                key.value
                for key in value.keys
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            }
    raise ValueError(f"no STAGES dict in {pipeline}")


def is_automated_command(evidence: str, stages: set[str]) -> bool:
    """Whether a command runs by itself: ``make test``/``run``, a loop stage."""
    words = evidence.split()
    if " ".join(words[:2]) in ALWAYS_AUTOMATED:
        return True
    return len(words) >= 2 and words[0] == "loopml" and words[1] in stages


def load(path: Path = YAML_PATH) -> list[Entry]:
    """Read and check the card's YAML.

    Raises:
        ValueError: a section is missing or extra, a section does not number
            its tests 1..7, or a status or field is invalid.
    """
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or set(raw) != set(SECTIONS):
        raise ValueError(f"{path} must have exactly the sections {list(SECTIONS)}")
    entries = []
    for section in SECTIONS:
        items = raw[section]
        numbers = [item.get("number") for item in items]
        if numbers != list(range(1, TESTS_PER_SECTION + 1)):
            raise ValueError(f"{section}: tests must be numbered 1..7, got {numbers}")
        for item in items:
            unknown = set(item) - FIELDS
            if unknown:
                raise ValueError(f"{section} {item['number']}: unknown {unknown}")
            if item.get("status") not in POINTS:
                raise ValueError(
                    f"{section} {item['number']}: status must be one of "
                    f"{list(POINTS)}, got {item.get('status')!r}"
                )
            entries.append(
                Entry(
                    section=section,
                    number=int(item["number"]),
                    title=str(item["title"]),
                    status=str(item["status"]),
                    evidence=tuple(str(e) for e in item.get("evidence") or ()),
                    note=" ".join(str(item["note"]).split()),
                    code=tuple(str(c) for c in item.get("code") or ()),
                )
            )
    return entries


def section_sums(entries: list[Entry]) -> dict[str, float]:
    """The sum of the points of each section's tests, in the paper's order."""
    return {
        section: sum(e.points for e in entries if e.section == section)
        for section in SECTIONS
    }


def final_score(entries: list[Entry]) -> float:
    """The 2017 final score: the minimum of the four section sums."""
    return min(section_sums(entries).values())


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def _evidence_cell(entry: Entry) -> str:
    if not entry.evidence:
        return "-"
    items = []
    for evidence in entry.evidence:
        path, _, name = evidence.partition("::")
        shown = f"`{path}::{name}`" if name else f"`{evidence}`"
        items.append(_cell(shown))
    return "<br>".join(items)


def render(entries: list[Entry]) -> str:
    """The card as Markdown: a table per section, the sums, the final score."""
    lines = [
        "# ML Test Score",
        "",
        "loopml scored on the 28 tests of Breck et al. 2017, *The ML Test Score:",
        "A Rubric for ML Production Readiness and Technical Debt Reduction*",
        "(IEEE Big Data 2017), under its rules: a test done manually (a documented",
        "command a person runs and judges) scores 0.5, an automated one (a test",
        "under `tests/`, run by `make test`, or a stage of `loopml run`) scores 1;",
        "a section scores the sum of its 7 tests and the final score is the",
        "minimum of the four sections. Code that no command runs scores nothing.",
        "",
        "Generated from `docs/ml-test-score.yaml`; do not edit by hand.",
        "",
    ]
    sums = section_sums(entries)
    for section, heading in SECTIONS.items():
        lines += [
            f"## {heading}",
            "",
            "| # | test | points | evidence | note |",
            "|---|---|---:|---|---|",
        ]
        for entry in (e for e in entries if e.section == section):
            note = entry.note
            if entry.code:
                note += " Code: " + ", ".join(f"`{c}`" for c in entry.code) + "."
            lines.append(
                f"| {entry.number} | {_cell(entry.title)} | {entry.points:g} "
                f"({entry.status}) | {_evidence_cell(entry)} | {_cell(note)} |"
            )
        lines += ["", f"{heading}: **{sums[section]:g}** / 7", ""]
    lines += [
        "## Score",
        "",
        "| section | automated | manual | none | points |",
        "|---|---:|---:|---:|---:|",
    ]
    for section, heading in SECTIONS.items():
        mine = [e for e in entries if e.section == section]
        counts = [sum(e.status == s for e in mine) for s in POINTS]
        lines.append(
            f"| {heading} | {counts[0]} | {counts[1]} | {counts[2]} "
            f"| {sums[section]:g} |"
        )
    lines += [
        "",
        f"**Final ML Test Score: {final_score(entries):g}** "
        "(the minimum of the section sums).",
        "",
    ]
    short = {s: GOAL - v for s, v in sums.items() if v < GOAL}
    if short:
        lacking = ", ".join(f"{SECTIONS[s]} {v:g}" for s, v in short.items())
        lines += [
            f"Points still needed to reach the goal of {GOAL:g} in every "
            f"section: {lacking} (the tests scoring below 1 are the candidates).",
            "",
        ]
    lines += [
        f"Regenerate: `{COMMAND}`; check that this file is current: "
        f"`{COMMAND} --check`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the card, or with ``--check`` compare it; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if docs/ml-test-score.md is not what the YAML renders to",
    )
    parser.add_argument("--yaml", type=Path, default=YAML_PATH)
    parser.add_argument("--output", type=Path, default=MD_PATH)
    args = parser.parse_args(argv)
    entries = load(args.yaml)
    text = render(entries)
    if args.check:
        current = (
            args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        )
        if current != text:
            print(f"{args.output} is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        print(f"{args.output} is current (final score {final_score(entries):g})")
        return 0
    args.output.write_text(text, encoding="utf-8")
    sums = ", ".join(f"{s} {v:g}" for s, v in section_sums(entries).items())
    print(f"wrote {args.output}: {sums}; final score {final_score(entries):g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
