"""Every user mistake is one line on stderr and exit 2, never a traceback.

The commands run in this process through ``loopml.cli.main`` (the entry
point of the ``loopml`` script), on an empty home.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml import cli

BAD = [
    (["run", "-w", "nope"], "unknown workload 'nope'"),
    (["train", "-w", "nope"], "unknown workload 'nope'"),
    (["history", "-w", "nope"], "unknown workload 'nope'"),
    (["status", "-w", "nope"], "unknown workload 'nope'"),
    (["status", "--card", "nope"], "unknown workload 'nope'"),
    (["monitor", "-w", "nope"], "unknown workload 'nope'"),
    (["ingest", "--dataset", "nope"], "--dataset nope does not apply to demand"),
    (["run", "--dataset", "nope"], "--dataset nope does not apply"),
    (
        ["ingest", "-w", "recsys", "--dataset", "bike-sharing"],
        "does not apply to recsys",
    ),
    (
        ["ingest", "--dataset", "online-retail", "--data-path", "/nonexistent"],
        "/nonexistent",
    ),
    (["ingest", "--date", "2025-13-01"], "is not a date like"),
    (["ingest", "--force"], "only applies with --date"),
    (
        ["ingest", "--file", "/nonexistent.parquet"],
        "/nonexistent.parquet does not exist",
    ),
    (["ingest", "--file", "/tmp"], "/tmp is a folder, not a parquet file"),
    (["batch", "--date", "tomorrow"], "is not a date like"),
    (["monitor", "--date", "2025-02-30"], "is not a date like"),
    (["serve", "--port", "99999"], "65535"),
    (["serve", "--workers", "0"], "--workers"),
    (["replay", "--days", "0"], "--days"),
    (["replay", "--days", "3", "--drift-from", "5"], "at most --days"),
    (["tune", "--trials", "0"], "--trials"),
    (["features", "push", "store_id=S01"], "demand push needs item_id, sales"),
    (["features", "push", "oops"], "KEY=VALUE"),
    (
        ["features", "push", "store_id=S01", "item_id=I001", "sales=inf"],
        "sales must be a finite number >= 0, got inf",
    ),
    (
        ["features", "push", "store_id=S01", "item_id=I001", "sales=2", "bogus=1"],
        "unknown ['bogus']",
    ),
    (["--profile", "nope", "status"], "profile 'nope' not found"),
    (["nope"], "No such command"),
    (["train", "--bogus"], "No such option: --bogus"),
    (["serve", "--port", "-1"], "greater than or equal to 0"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_mistake_is_one_clear_line(
    tiny_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.setattr("sys.argv", ["loopml", *args])
    monkeypatch.setattr(cli._State, "verbose", False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    out = capsys.readouterr()
    text = out.out + out.err
    assert exit_info.value.code == 2, text
    assert "Traceback" not in text
    assert message in " ".join(text.split()), text
    # One line, usage errors too (no boxed "Usage: ... Try ..." block).
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert len(lines) == 1, out.err


def test_a_failed_stage_is_one_line_exit_1(
    tiny_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.argv", ["loopml", "train", "-w", "demand"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    text = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert "Traceback" not in text and "run `loopml validate` first" in text


def test_every_command_help_has_an_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer.main

    group = typer.main.get_command(cli.app)
    names = list(group.commands)  # type: ignore[attr-defined]
    missing = []
    for name in names:
        monkeypatch.setattr("sys.argv", ["loopml", name, "--help"])
        with pytest.raises(SystemExit):
            cli.main()
        if "Example" not in capsys.readouterr().out:
            missing.append(name)
    assert not missing, f"--help without an example: {missing}"


@pytest.mark.parametrize("text", ['{"version": "1', "", "[1, 2]", "\xff"])
def test_a_damaged_hand_over_record_names_its_file(tiny_env: Path, text: str) -> None:
    """Before: 'promote failed: Unterminated string starting at: line 1 ...'."""
    from loopml.core.errors import StageError
    from loopml.core.io import read_json

    path = tiny_env / "state" / "demand" / "evaluate.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(StageError) as caught:
        read_json(path, "evaluate")
    assert str(path) in str(caught.value)
    assert "run `loopml evaluate` again" in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LOOPML_GATE__MARGIN", "abc", "gate.margin: Input should be a valid number"),
        ("LOOPML_MONITOR__WINDOW_DAYS", "0", "monitor.window_days: Input should be"),
        ("LOOPML_WORKLOADS__DEMAND__START", "notadate", "demand.start: String should"),
        ("LOOPML_WORKLOADS__DEMAND__START", "2025-02-30", "day is out of range"),
    ],
)
def test_a_bad_top_level_setting_is_one_line_naming_it(
    tiny_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    message: str,
) -> None:
    """pydantic's dump took three lines a field and a link."""
    monkeypatch.setenv(variable, value)
    # A workload's section is read by the commands that run it.
    command = "ingest" if "WORKLOADS" in variable else "status"
    monkeypatch.setattr("sys.argv", ["loopml", command])
    monkeypatch.setattr(cli._State, "verbose", False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert message in " ".join(err.split()), err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert "errors.pydantic.dev" not in err


def test_a_broken_profile_is_one_line_naming_file_and_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "default.yaml").write_text("profile: default\nhome: [unclosed\n")
    monkeypatch.setenv("LOOPML_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("LOOPML_PROFILE", "default")
    monkeypatch.setattr("sys.argv", ["loopml", "status"])
    monkeypatch.setattr(cli._State, "verbose", False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 2, err
    assert f"{tmp_path / 'default.yaml'}, line 3, column 1, is not valid YAML" in err


def test_a_damaged_table_names_its_file(tiny_env: Path) -> None:
    """pyarrow says "Could not open Parquet input source '<Buffer>'"."""
    from loopml.core.errors import StageError
    from loopml.core.io import read_table

    path = tiny_env / "data" / "demand" / "validated.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a parquet file")
    with pytest.raises(StageError) as caught:
        read_table(path, "validate")
    said = str(caught.value)
    assert str(path) in said and "run `loopml validate` again" in said
    import conftest

    done = conftest.loopml(tiny_env, "train", COLUMNS="2000")
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1 and str(path) in said, said
