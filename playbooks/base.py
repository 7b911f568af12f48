"""Playbooks: the catalog format, its validation, and the Playbook protocol.

A playbook is data (``playbooks/catalog/*.yaml``), validated here by
pydantic; its actions are typed operations that code renders, never string
templates filled with device or ticket text. Parameters are checked against
the playbook's schema before any plan exists.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autonoc.core.errors import PlaybookValidationError
from autonoc.core.settings import Autonomy
from autonoc.core.types import ActionPlan, ActionResult, StepResult, Verdict

__all__ = [
    "CATALOG_DIR",
    "ActionStep",
    "Catalog",
    "Condition",
    "ParamSpec",
    "Playbook",
    "PlaybookSpec",
    "Risk",
    "VerifySpec",
]

CATALOG_DIR = Path(__file__).parent / "catalog"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamSpec(_Strict):
    type: Literal["interface", "float", "int", "bool"]
    description: str = ""
    default: float | int | bool | None = None
    minimum: float | None = None
    maximum: float | None = None


ParamRef = float | str  # a number, or "param:NAME"


class Condition(_Strict):
    """A check on the target component's fresh telemetry."""

    metric: str
    equals: ParamRef | None = None
    at_least: ParamRef | None = None
    at_most: ParamRef | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_comparison(self) -> Condition:
        given = [v for v in (self.equals, self.at_least, self.at_most) if v is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of equals, at_least, at_most")
        return self


class ActionStep(_Strict):
    """One typed operation. The engine owns how each is rendered per protocol."""

    op: Literal["snmp_set"]
    object: Literal["ifAdminStatus"]
    value: Literal["up", "down"]


class VerifySpec(_Strict):
    within_s: ParamRef = 30.0
    interval_s: float = Field(1.0, gt=0)
    conditions: tuple[Condition, ...] = Field(min_length=1)


class PlaybookSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    description: str
    fault_kinds: tuple[str, ...] = Field(min_length=1)
    roles: tuple[str, ...] = Field(min_length=1)
    risk: Risk
    autonomy: Autonomy = Autonomy.APPROVE
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    prechecks: tuple[Condition, ...] = ()
    actions: tuple[ActionStep, ...] = Field(min_length=1)
    verify: VerifySpec
    rollback: tuple[ActionStep, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _refs_exist(self) -> PlaybookSpec:
        refs: list[ParamRef | None] = [self.verify.within_s]
        for cond in (*self.prechecks, *self.verify.conditions):
            refs += [cond.equals, cond.at_least, cond.at_most]
        for ref in refs:
            if isinstance(ref, str):
                name = ref.removeprefix("param:")
                if not ref.startswith("param:") or name not in self.params:
                    raise ValueError(f"{ref!r} must be 'param:NAME' with NAME in params")
        return self

    def validate_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """Typed, bounded parameters with defaults filled; raises PlaybookValidationError."""
        unknown = set(given) - set(self.params)
        if unknown:
            raise PlaybookValidationError(
                f"{self.name}: unknown parameter(s) {sorted(unknown)}; "
                f"allowed: {sorted(self.params)}"
            )
        out: dict[str, Any] = {}
        for name, spec in self.params.items():
            value = given.get(name, spec.default)
            if value is None:
                raise PlaybookValidationError(f"{self.name}: parameter {name!r} is required")
            out[name] = _coerce(self.name, name, spec, value)
        return out

    def resolve(self, ref: ParamRef | None, params: dict[str, Any]) -> float | None:
        if ref is None:
            return None
        if isinstance(ref, str):
            return float(params[ref.removeprefix("param:")])
        return float(ref)


def _coerce(playbook: str, name: str, spec: ParamSpec, value: Any) -> Any:
    where = f"{playbook}: parameter {name!r}"
    if spec.type == "interface":
        if not isinstance(value, str) or not value or len(value) > 64:
            raise PlaybookValidationError(f"{where} must be an interface name")
        return value
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise PlaybookValidationError(f"{where} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlaybookValidationError(f"{where} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise PlaybookValidationError(f"{where} must be a finite number, got {value}")
    if spec.type == "int" and value != int(value):
        raise PlaybookValidationError(f"{where} must be a whole number, got {value}")
    number = int(value) if spec.type == "int" else float(value)
    if spec.minimum is not None and number < spec.minimum:
        raise PlaybookValidationError(f"{where} = {number} is below its minimum {spec.minimum}")
    if spec.maximum is not None and number > spec.maximum:
        raise PlaybookValidationError(f"{where} = {number} is above its maximum {spec.maximum}")
    return number


class Catalog:
    """The playbooks an installation may run, loaded from YAML files."""

    def __init__(self, specs: dict[str, PlaybookSpec]) -> None:
        self._specs = dict(specs)

    @classmethod
    def load(cls, directory: Path = CATALOG_DIR) -> Catalog:
        """Load and validate every ``*.yaml`` in ``directory``.

        Raises:
            PlaybookValidationError: naming the file and the field at fault.
        """
        specs: dict[str, PlaybookSpec] = {}
        for path in sorted(directory.glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
                spec = PlaybookSpec.model_validate(data)
            except yaml.YAMLError as exc:
                raise PlaybookValidationError(f"{path}: not valid YAML: {exc}") from exc
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"]) or "(top level)"
                raise PlaybookValidationError(f"{path}: {field}: {first['msg']}") from exc
            if spec.name in specs:
                raise PlaybookValidationError(f"{path}: playbook {spec.name!r} is defined twice")
            specs[spec.name] = spec
        return cls(specs)

    def get(self, name: str) -> PlaybookSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise PlaybookValidationError(
                f"no playbook {name!r} in the catalog (known: {', '.join(sorted(self._specs))})"
            ) from None

    def for_fault(self, fault_kind: str, role: str) -> list[PlaybookSpec]:
        """Playbooks that treat ``fault_kind`` on a device of ``role``, lowest risk first."""
        order = {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.HIGH: 2}
        found = [s for s in self._specs.values() if fault_kind in s.fault_kinds and role in s.roles]
        return sorted(found, key=lambda s: (order[s.risk], s.name))

    def __iter__(self) -> Iterator[PlaybookSpec]:
        return iter(self._specs.values())


class Playbook(Protocol):
    """What an executable playbook offers the worker."""

    def plan(
        self, device: str, target: str, params: dict[str, Any], incident_id: int | None = None
    ) -> ActionPlan: ...

    async def apply(self, plan: ActionPlan) -> ActionResult: ...

    async def verify(self, plan: ActionPlan) -> Verdict: ...

    async def rollback(self, plan: ActionPlan) -> list[StepResult]: ...
