"""Playbooks: the catalog format, its validation, and the Playbook protocol.

A playbook is data (``playbooks/catalog/*.yaml``), validated here by
pydantic. Its actions are typed operations (:data:`Action`) that code renders
per platform (:mod:`playbooks.platforms`), never string templates filled with
device or ticket text. Parameters are checked against the playbook's schema,
bounds included, before any plan exists.

The shape of one file::

    name: drain-link                   # [a-z][a-z0-9-]*
    description: ...
    fault_kinds: [congestion, ...]     # what it treats
    roles: [router]                    # device roles it applies to
    target: interface                  # the parameter the plan's target names (omit: the device)
    risk: low | medium | high
    autonomy: suggest | approve | auto # the default; policy may override it
    params: {NAME: {type, description, default, minimum, maximum, choices}}
    prechecks: [Condition, ...]        # on fresh telemetry, before any change
    actions: [Action, ...]             # typed operations, in order
    verify: {within_s, interval_s, conditions: [Condition, ...]}
    rollback: [Action, ...]            # usually [{op: restore}]

A condition reads one metric of fresh telemetry: by default on the plan's
device and target component; ``device`` and ``instance`` may name another
(``param:NAME`` or a literal), for fixes whose effect shows downstream.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autonoc.core.errors import PlaybookValidationError
from autonoc.core.settings import Autonomy
from autonoc.core.types import ActionPlan, ActionResult, StepResult, Verdict
from autonoc.core.yamlfile import text_line

__all__ = [
    "CATALOG_DIR",
    "CONFIG_OPS",
    "Action",
    "Catalog",
    "Condition",
    "ParamSpec",
    "Playbook",
    "PlaybookSpec",
    "Risk",
    "VerifySpec",
    "load_spec",
]

CATALOG_DIR = Path(__file__).parent / "catalog"

#: Margin (s) on top of a playbook's own worst case: connect, lock, commit, audit.
RUN_OVERHEAD_S = 60.0


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ParamType = Literal[
    "interface", "neighbor", "port", "process", "device", "float", "int", "bool", "choice"
]
_NAME_TYPES = {"interface", "port", "process", "device"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}$")


class ParamSpec(_Strict):
    type: ParamType
    description: str = ""
    default: float | int | bool | str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _choices_for_choice(self) -> ParamSpec:
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("a 'choice' parameter needs choices; other types take none")
        return self


ParamRef = float | str  # a number, or "param:NAME"


class Condition(_Strict):
    """A check on one metric of fresh telemetry."""

    metric: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    equals: ParamRef | None = None
    at_least: ParamRef | None = None
    at_most: ParamRef | None = None
    device: str | None = None
    """``param:NAME`` or a device name; default: the plan's device."""
    instance: str | None = None
    """``param:NAME``, a literal, or ``""`` (device level); default: the plan's target."""
    description: str = ""

    @model_validator(mode="after")
    def _one_comparison(self) -> Condition:
        given = [v for v in (self.equals, self.at_least, self.at_most) if v is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of equals, at_least, at_most")
        return self


# ---- actions: typed operations -------------------------------------------------


class SetInterfaceEnabled(_Strict):
    """Admin state of the target interface (NETCONF ``config/enabled`` or SNMP ifAdminStatus)."""

    op: Literal["set_interface_enabled"]
    enabled: bool


class BounceInterface(_Strict):
    """Shut the target interface, wait ``down_s``, bring it up: two commits, one rollback."""

    op: Literal["bounce_interface"]
    down_s: ParamRef = 2.0


class SetIgpMetric(_Strict):
    """The IGP metric out of the target interface; a high one drains it."""

    op: Literal["set_igp_metric"]
    metric: ParamRef


class SetBgpNeighborEnabled(_Strict):
    """Enable or shut the target BGP neighbour (by address)."""

    op: Literal["set_bgp_neighbor_enabled"]
    enabled: bool


class AdjustAmplifierGain(_Strict):
    """Change the target EDFA's target gain by ``delta_db`` from what it was before the run."""

    op: Literal["adjust_amplifier_gain"]
    delta_db: ParamRef


class AdjustTxPower(_Strict):
    """Change the target line port's launch power by ``delta_db`` from what it was."""

    op: Literal["adjust_tx_power"]
    delta_db: ParamRef


class SetProtection(_Strict):
    """Force the target line port's wavelength onto its working or protection path."""

    op: Literal["set_protection"]
    path: Literal["working", "protection"]


class RestartProcess(_Strict):
    """Restart the target process (an RPC: nothing in the configuration changes)."""

    op: Literal["restart_process"]


class RestoreConfig(_Strict):
    """Replace the device's whole configuration with its last known good one."""

    op: Literal["restore_config"]
    source: Literal["last_known_good"] = "last_known_good"


class OpenTicket(_Strict):
    """Open a ticket for people (a field visit, a vendor case); the device is not touched."""

    op: Literal["open_ticket"]
    queue: Literal["field", "noc", "vendor"]
    reason: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)


class Wait(_Strict):
    op: Literal["wait"]
    seconds: ParamRef


class Restore(_Strict):
    """Put back every configuration leaf this run changed, as read before the change."""

    op: Literal["restore"]


Action = Annotated[
    SetInterfaceEnabled
    | BounceInterface
    | SetIgpMetric
    | SetBgpNeighborEnabled
    | AdjustAmplifierGain
    | AdjustTxPower
    | SetProtection
    | RestartProcess
    | RestoreConfig
    | OpenTicket
    | Wait
    | Restore,
    Field(discriminator="op"),
]

#: Operations that change a device's configuration (and so go through a commit).
CONFIG_OPS = frozenset(
    {
        "set_interface_enabled",
        "set_igp_metric",
        "set_bgp_neighbor_enabled",
        "adjust_amplifier_gain",
        "adjust_tx_power",
        "set_protection",
        "restore_config",
    }
)


class VerifySpec(_Strict):
    within_s: ParamRef = 30.0
    interval_s: float = Field(2.0, gt=0)
    conditions: tuple[Condition, ...] = Field(min_length=1)


class PlaybookSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    description: str
    fault_kinds: tuple[str, ...] = Field(min_length=1)
    roles: tuple[str, ...] = Field(min_length=1)
    target: str | None = None
    """The parameter the plan's target names; None: the device itself."""
    risk: Risk
    autonomy: Autonomy = Autonomy.APPROVE
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    prechecks: tuple[Condition, ...] = ()
    actions: tuple[Action, ...] = Field(min_length=1)
    verify: VerifySpec
    rollback: tuple[Action, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> PlaybookSpec:
        if self.target is not None:
            spec = self.params.get(self.target)
            if spec is None or spec.type not in _NAME_TYPES | {"neighbor"}:
                raise ValueError(
                    f"target {self.target!r} must name an interface, neighbor, port, process "
                    "or device parameter"
                )
        for ref in self._refs():
            if isinstance(ref, str) and ref.startswith("param:"):
                if ref.removeprefix("param:") not in self.params:
                    raise ValueError(f"{ref!r}: no parameter of that name in params")
            elif isinstance(ref, str):
                raise ValueError(f"{ref!r} must be a number or 'param:NAME'")
        for cond in (*self.prechecks, *self.verify.conditions):
            for where in (cond.device, cond.instance):
                if (
                    where
                    and where.startswith("param:")
                    and where.removeprefix("param:") not in self.params
                ):
                    raise ValueError(f"{where!r}: no parameter of that name in params")
        for action in self.rollback:
            if action.op in ("adjust_amplifier_gain", "adjust_tx_power"):
                raise ValueError("rollback cannot adjust by a delta; use {op: restore}")
        return self

    def _refs(self) -> Iterator[ParamRef | None]:
        yield self.verify.within_s
        for cond in (*self.prechecks, *self.verify.conditions):
            yield from (cond.equals, cond.at_least, cond.at_most)
        for action in (*self.actions, *self.rollback):
            for field in ("metric", "delta_db", "seconds", "down_s"):
                yield getattr(action, field, None)

    @property
    def changes_config(self) -> bool:
        return any(a.op in CONFIG_OPS for a in self.actions)

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

    def place(self, where: str | None, params: dict[str, Any], default: str) -> str:
        """A condition's device or instance: a parameter's value, a literal, or ``default``."""
        if where is None:
            return default
        if where.startswith("param:"):
            return str(params[where.removeprefix("param:")])
        return where

    def worst_case_s(self, params: dict[str, Any] | None = None) -> float:
        """The longest this playbook can run: waits, verification, overhead.

        With no parameters, each parameter's maximum (else its default) is assumed.
        """
        values = params if params is not None else self._worst_params()
        total = RUN_OVERHEAD_S + (self.resolve(self.verify.within_s, values) or 0.0)
        for action in (*self.actions, *self.rollback):
            if isinstance(action, Wait):
                total += self.resolve(action.seconds, values) or 0.0
            elif isinstance(action, BounceInterface):
                total += self.resolve(action.down_s, values) or 0.0
        return total

    def _worst_params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, spec in self.params.items():
            if spec.maximum is not None:
                out[name] = spec.maximum
            elif isinstance(spec.default, int | float) and not isinstance(spec.default, bool):
                out[name] = spec.default
            else:
                out[name] = 0.0
        return out


def _coerce(playbook: str, name: str, spec: ParamSpec, value: Any) -> Any:
    where = f"{playbook}: parameter {name!r}"
    if spec.type in _NAME_TYPES:
        if not isinstance(value, str) or not _NAME_RE.match(value):
            raise PlaybookValidationError(
                f"{where} must be a {spec.type} name (letters, digits, '_./:-', at most 64)"
            )
        return value
    if spec.type == "neighbor":
        try:
            return str(ipaddress.ip_address(str(value)))
        except ValueError:
            raise PlaybookValidationError(
                f"{where} must be a neighbour IP address, got {value!r}"
            ) from None
    if spec.type == "choice":
        if value not in spec.choices:
            raise PlaybookValidationError(f"{where} must be one of {list(spec.choices)}")
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
            PlaybookValidationError: naming the file, the line where it can, and the field.
        """
        specs: dict[str, PlaybookSpec] = {}
        for path in sorted(directory.glob("*.yaml")):
            spec = load_spec(path)
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

    def longest_run_s(self) -> float:
        """The worst-case run time of the slowest playbook (time limits, visibility timeout)."""
        return max((s.worst_case_s() for s in self._specs.values()), default=RUN_OVERHEAD_S)

    def __iter__(self) -> Iterator[PlaybookSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


def load_spec(path: Path) -> PlaybookSpec:
    """One playbook file, validated; errors name the file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaybookValidationError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlaybookValidationError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return PlaybookSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = text_line(text, loc)
        where = f"{path}" + (f" line {line}" if line else "")
        raise PlaybookValidationError(f"{where}: {field}: {first['msg']}") from exc


class Playbook(Protocol):
    """What an executable playbook offers the worker."""

    def plan(
        self, device: str, target: str, params: dict[str, Any], incident_id: int | None = None
    ) -> ActionPlan: ...

    async def apply(self, plan: ActionPlan) -> ActionResult: ...

    async def verify(self, plan: ActionPlan) -> Verdict: ...

    async def rollback(self, plan: ActionPlan) -> list[StepResult]: ...
