"""Feast's classes import without typeguard's instrumentation; nothing else changes.

``loopml/__init__.py`` makes ``@typechecked`` a no-op for classes defined in
``feast.*`` (as ``python -O`` does for every class). Each check runs in a
fresh interpreter, because the pytest process has imported Feast already.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
if sys.argv[1] == "loopml":
    import loopml
import feast.feature_view
import typeguard
import user_code

init = feast.feature_view.FeatureView.__init__.__code__
print("feast instrumented:", "check_argument_types_internal" in init.co_names)
# The same test of typeguard's instrumentation, on a function it did check.
double = user_code.double.__code__
print("user code instrumented:", "check_argument_types_internal" in double.co_names)
try:
    user_code.double("2")
except typeguard.TypeCheckError:
    print("user code checked: True")
else:
    print("user code checked: False")
"""

USER_CODE = """
from typeguard import typechecked


@typechecked
def double(x: int) -> int:
    return 2 * x
"""


def _probe(tmp_path: Path, first: str) -> str:
    (tmp_path / "user_code.py").write_text(USER_CODE, encoding="utf-8")
    (tmp_path / "probe.py").write_text(PROBE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "probe.py", first],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_feast_imported_after_loopml_is_not_instrumented(tmp_path: Path) -> None:
    out = _probe(tmp_path, "loopml")
    assert "feast instrumented: False" in out
    # A user's own @typechecked function is instrumented (so the probe does
    # see instrumentation) and still raises on a wrong type.
    assert "user code instrumented: True" in out
    assert "user code checked: True" in out
