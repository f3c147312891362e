"""A workload's own settings: a section ``workloads.<name>`` of the profile.

Subclass :class:`WorkloadSettings`, set ``section_name`` and give every field
a default; the workload declares the class as ``settings_class``. Values come,
highest first, from command-line options, ``params.yaml`` (under DVC),
``LOOPML_WORKLOADS__<NAME>__<FIELD>`` variables and the profile's YAML::

    workloads:
      churn:
        n_rows: 5000

Read them with ``ChurnSettings.of(settings)`` (validated once, cached).
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from loopml.core.config import Settings


class WorkloadSettings(BaseModel):
    """Base class of a workload's settings section."""

    model_config = ConfigDict(extra="forbid")

    #: the workload whose section this is (``workloads.<section_name>``).
    section_name: ClassVar[str] = ""

    @classmethod
    def of(cls, settings: Settings) -> Self:
        """This workload's section of ``settings``, validated.

        Raises:
            ValueError: naming ``workloads.<name>.<field>`` for a bad value.
        """
        if not cls.section_name:
            raise TypeError(f"{cls.__name__}.section_name is not set")
        return settings.section(cls.section_name, cls)


def choices(model: type[BaseModel], name: str) -> tuple[Any, ...] | None:
    """The values a ``Literal`` field accepts (``None``: no such field or any).

    Used by the CLI to route ``--dataset X`` to the workloads that read ``X``.
    """
    field = model.model_fields.get(name)
    if field is None:
        return None
    if typing.get_origin(field.annotation) is typing.Literal:
        return typing.get_args(field.annotation)
    return ()
