"""A Markdown summary of the last run and the champions, for CI.

``python -m loopml.devtools.ci_summary [WORKLOAD ...]`` prints it; CI appends it to
``$GITHUB_STEP_SUMMARY`` (GitHub Actions) or keeps it as a report artifact
(GitLab CI), so a merge request shows what its model did at the gate.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


def _cell(value: object) -> str:
    """A value fit for a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(status: dict[str, Any], workloads: Sequence[str] | None = None) -> str:
    """The summary of a status document (``loopml.monitoring.status.collect``).

    Args:
        status: the document ``loopml status --json`` prints.
        workloads: the workloads to show (default: all in the document).

    Returns:
        Markdown: one section per workload with its last run's stages and its
        champion.
    """
    names = list(workloads or status["workloads"])
    lines = [f"## loopml ({status['profile']})", ""]
    for name in names:
        info = status["workloads"].get(name)
        if info is None:
            lines += [f"### {name}", "", "unknown workload", ""]
            continue
        last, champion = info["last_run"], info["champion"]
        lines += [f"### {name}", ""]
        if last:
            verdict = "ok" if last["ok"] else "failed"
            lines += [
                f"Last run finished {last['finished']}: **{verdict}**.",
                "",
                "| stage | status | seconds | summary |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {s['stage']} | {s['status']} | {s['seconds']} "
                f"| {_cell(s['summary'])} |"
                for s in last["stages"]
            ]
            lines.append("")
        else:
            lines += ["No run yet.", ""]
        if champion:
            metrics = ", ".join(f"{k}={v:.4g}" for k, v in champion["metrics"].items())
            lines += [f"Champion: version {champion['version']} ({metrics}).", ""]
        else:
            lines += ["Champion: none yet.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary of the active settings' home and registry."""
    from loopml.core.config import load_settings
    from loopml.monitoring.status import collect

    parser = argparse.ArgumentParser(prog="python -m loopml.devtools.ci_summary")
    parser.add_argument("workloads", nargs="*", help="default: every workload")
    args = parser.parse_args(argv)
    sys.stdout.write(render(collect(load_settings()), args.workloads) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
