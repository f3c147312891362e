"""loopml: an end-to-end MLOps loop on tools the field already trusts."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

__version__ = "0.1.0"


def _feast_classes_unchecked() -> None:
    """Make typeguard's ``@typechecked`` a no-op for Feast's own classes.

    Feast decorates about twenty classes with typeguard's ``@typechecked``,
    which instruments each method at import by re-parsing and recompiling
    its whole module: about 2.9 of the 4.5 CPU seconds that ``import
    feast.feature_store`` costs, in every process that reads or writes
    features (measured, docs/benchmarks.md, "Importing Feast"). Under ``python -O`` the
    decorator returns the class unchanged; loopml does the same for classes
    defined in ``feast.*`` only. Every other use of ``@typechecked`` (a
    user's code, another library) keeps its checks. What is lost: Feast's
    run-time type checks of its constructors' arguments; loopml's Feast
    objects are built by its own code, which mypy checks.
    """
    import typeguard

    checked = typeguard.typechecked
    if getattr(checked, "_loopml_skips_feast", False):
        return

    def typechecked(target: Any = None, **options: Any) -> Any:
        if target is None:
            return lambda inner: typechecked(inner, **options)
        if str(getattr(target, "__module__", "")).startswith("feast."):
            return target
        return checked(target, **options)

    typechecked._loopml_skips_feast = True  # type: ignore[attr-defined]
    typeguard.typechecked = typechecked


class _BeforeFeast:
    """Runs :func:`_feast_classes_unchecked` when ``feast`` is first imported.

    A finder on ``sys.meta_path`` that finds nothing: it only notices the
    import of ``feast`` (Feast's modules bind ``typechecked`` when they
    run), removes itself and lets the normal finders import Feast.
    """

    @classmethod
    def find_spec(
        cls,
        name: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if name == "feast":
            if cls in sys.meta_path:
                sys.meta_path.remove(cls)
            _feast_classes_unchecked()
        return None


if "feast" not in sys.modules and _BeforeFeast not in sys.meta_path:
    sys.meta_path.insert(0, _BeforeFeast)
