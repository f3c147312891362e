"""Secret scanning: fail when a file holds a credential the baseline does not know.

Runs detect-secrets with the plugins and filters recorded in the committed
``.secrets.baseline``, over the files git knows (tracked, plus untracked ones
that are not ignored), or over every file under the root outside a git work
tree. Unlike ``detect-secrets-hook`` it never rewrites the baseline, and it
matches findings to the baseline by file, type and hashed secret only, so an
audited false positive that moves to another line stays accepted.

``make lint`` and the pre-commit hook run ``python -m loopml.devtools.secret_scan``; a
project made by ``loopml new`` does the same. To accept a false positive, add
``# pragma: allowlist secret`` to its line, or re-create the baseline and
audit it (``detect-secrets scan ... > .secrets.baseline``, then
``detect-secrets audit .secrets.baseline``); CONTRIBUTING.md says how.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BASELINE = ".secrets.baseline"
#: Folders never scanned outside git (tool caches, environments, artefacts).
SKIP_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        "mlruns",
        "mlartifacts",
        "build",
        "dist",
    }
)


@dataclass(frozen=True)
class Finding:
    """A credential-looking string the baseline does not accept."""

    path: str
    line: int
    kind: str

    def __str__(self) -> str:
        """``path:line: kind``, as compilers print locations."""
        return f"{self.path}:{self.line}: {self.kind}"


def _skipped(relative: Path) -> bool:
    parts = relative.parts
    return any(p in SKIP_DIRS or p.startswith(".loopml") for p in parts) or (
        parts[:2] in ((".dvc", "cache"), (".dvc", "tmp"))
    )


def files_to_scan(root: Path) -> list[str]:
    """The files to scan under ``root``, relative to it.

    Args:
        root: a folder; inside a git work tree, git decides what is ignored.

    Returns:
        Sorted relative paths of existing regular files.
    """
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()
        candidates = [Path(p) for p in out.split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        candidates = [
            (Path(folder) / name).relative_to(root)
            for folder, dirs, names in os.walk(root)
            for name in names
        ]
    return sorted(
        str(p) for p in candidates if (root / p).is_file() and not _skipped(p)
    )


def scan(
    root: Path, baseline: Path | None = None, files: Sequence[str] | None = None
) -> list[Finding]:
    """Scan files for secrets and drop those the baseline accepts.

    Args:
        root: the project folder; paths are reported relative to it.
        baseline: the baseline file (default ``<root>/.secrets.baseline``).
        files: paths relative to ``root`` (default: :func:`files_to_scan`).

    Returns:
        The new findings, sorted by path and line.

    Raises:
        FileNotFoundError: when the baseline does not exist.
    """
    from detect_secrets.core import baseline as ds_baseline
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import transient_settings

    baseline = baseline or root / BASELINE
    if not baseline.is_file():
        raise FileNotFoundError(f"no secrets baseline at {baseline}")
    recorded = ds_baseline.upgrade(ds_baseline.load_from_file(str(baseline)))
    accepted = {
        (name, item["hashed_secret"], item["type"])
        for name, items in recorded.get("results", {}).items()
        for item in items
    }
    # The baseline holds hashes that look like secrets themselves.
    own = os.path.relpath(baseline, root)
    names = [f for f in (files_to_scan(root) if files is None else files) if f != own]
    findings: list[Finding] = []
    with transient_settings(recorded):
        for name in names:
            for secret in scan_file(str(root / name)):
                if (name, secret.secret_hash, secret.type) not in accepted:
                    findings.append(Finding(name, secret.line_number, secret.type))
    return sorted(findings, key=lambda f: (f.path, f.line, f.kind))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print each new finding and exit 1 if there is any.

    Args:
        argv: ``[--root DIR] [--baseline FILE] [FILES...]``.

    Returns:
        The exit status: 0 clean, 1 findings, 2 no baseline.
    """
    parser = argparse.ArgumentParser(
        prog="python -m loopml.devtools.secret_scan",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("files", nargs="*", help="default: every file git knows")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    given = [os.path.relpath(Path(f).resolve(), root) for f in args.files]
    files = given or files_to_scan(root)
    try:
        findings = scan(root, args.baseline, files)
    except FileNotFoundError as error:
        print(f"secret scan: {error}", file=sys.stderr)
        return 2
    for finding in findings:
        print(f"{finding}  <- possible secret", file=sys.stderr)
    if findings:
        print(
            f"secret scan: {len(findings)} possible secret(s) not in the baseline. "
            "Move real credentials to the environment (.env is git-ignored); mark "
            "a false positive with '# pragma: allowlist secret' on its line.",
            file=sys.stderr,
        )
        return 1
    print(f"secret scan: {len(files)} files clean")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
