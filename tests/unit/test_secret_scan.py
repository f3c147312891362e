"""The secret scan (detect-secrets, committed baseline) catches a planted token."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from loopml.devtools import secret_scan

REPO = Path(__file__).resolve().parents[2]


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    (root / "src").mkdir(parents=True)
    shutil.copy2(REPO / secret_scan.BASELINE, root / secret_scan.BASELINE)
    shutil.copy2(
        REPO / "src" / "loopml" / "core" / "config.py", root / "src" / "config.py"
    )
    return root


def test_a_clean_copy_passes(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    assert secret_scan.main(["--root", str(root)]) == 0


def test_a_planted_token_fails_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy(tmp_path)
    # Built at run time, so this test file holds no secret-looking literal.
    key = "AKIA" + "Q3EGRIT5" + "DXJWLN7Y"
    (root / "src" / "settings_local.py").write_text(
        f'AWS_ACCESS_KEY_ID = "{key}"\n', encoding="utf-8"
    )
    assert secret_scan.main(["--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "settings_local.py:1" in err and "AWS Access Key" in err


def test_a_missing_baseline_is_an_error(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / secret_scan.BASELINE).unlink()
    assert secret_scan.main(["--root", str(root)]) == 2
