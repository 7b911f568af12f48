"""The contract between the fast SNMP agent and a simulated device's data.

A device shape (which OIDs exist) is a :class:`MibLayout`: sorted, with each
OID's BER encoding computed once, and shared by every device of that shape.
A device itself is a :class:`DeviceMib`: it says which layout it has now,
gives one consistent reader per request, and applies SETs all or nothing.
:class:`StaticMib` is the smallest DeviceMib, for tests and benchmarks.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Protocol

from autonoc.core.ber import INTEGER, NO_SUCH_INSTANCE, NO_SUCH_OBJECT, BerError, encode_oid

__all__ = [
    "BAD_VALUE",
    "GEN_ERR",
    "NOT_WRITABLE",
    "NO_ACCESS",
    "NO_CREATION",
    "NO_ERROR",
    "NO_SUCH_NAME",
    "TOO_BIG",
    "WRONG_TYPE",
    "WRONG_VALUE",
    "DeviceMib",
    "MibLayout",
    "Oid",
    "StaticMib",
    "Value",
]

Oid = tuple[int, ...]
Value = tuple[int, object]
"""``(BER tag, value)``: value is an ``int``, ``bytes`` or an :data:`Oid`."""

# error-status values (RFC 3416 section 3; 1-5 are also SNMPv1's).
NO_ERROR = 0
TOO_BIG = 1
NO_SUCH_NAME = 2
BAD_VALUE = 3
GEN_ERR = 5
NO_ACCESS = 6
WRONG_TYPE = 7
WRONG_VALUE = 10
NO_CREATION = 11
NOT_WRITABLE = 17


class MibLayout:
    """Sorted instance OIDs of one device shape, immutable and shareable.

    Args:
        oids: every instance OID the shape serves (any order, no duplicates).
        objects: object OIDs (table columns, scalars without ``.0``): what
            tells noSuchInstance (object known, instance not) from noSuchObject.

    Raises:
        ValueError: a duplicate or unencodable OID.
    """

    __slots__ = ("_objects", "_position", "encoded", "oids")

    def __init__(self, oids: Sequence[Oid], objects: Iterable[Oid]) -> None:
        self.oids: tuple[Oid, ...] = tuple(sorted(oids))
        self._position: dict[Oid, int] = {oid: i for i, oid in enumerate(self.oids)}
        if len(self._position) != len(self.oids):
            raise ValueError("MibLayout: duplicate OIDs")
        try:
            self.encoded: tuple[bytes, ...] = tuple(encode_oid(oid) for oid in self.oids)
        except BerError as exc:
            raise ValueError(f"MibLayout: {exc}") from exc
        self._objects = frozenset(objects)

    def __len__(self) -> int:
        return len(self.oids)

    def index(self, oid: Oid) -> int | None:
        """The position of ``oid`` in :attr:`oids`, or ``None`` when it is not served."""
        return self._position.get(oid)

    def next_index(self, oid: Oid) -> int:
        """The position of the first OID after ``oid``; ``len(self)`` means end of MIB."""
        return bisect_right(self.oids, oid)

    def missing(self, oid: Oid) -> int:
        """The exception tag for an OID that is not served: noSuchInstance or noSuchObject."""
        objects = self._objects
        for n in range(len(oid), 0, -1):
            if oid[:n] in objects:
                return NO_SUCH_INSTANCE
        return NO_SUCH_OBJECT


class DeviceMib(Protocol):
    """What the agent needs from one simulated device."""

    def layout(self) -> MibLayout:
        """The device's current shape; cheap, called once per request."""
        ...

    def reader(self) -> Callable[[int], Value]:
        """One request's consistent view: position in :meth:`layout` -> value."""
        ...

    def write(self, changes: Sequence[tuple[Oid, Value]]) -> tuple[int, int]:
        """Apply a SET: validate every change, then apply them all or none.

        Returns:
            ``(error_status, error_index)``: ``(0, 0)`` on success, otherwise an
            RFC 3416 error status and the 1-based position of the culprit.
        """
        ...


class StaticMib:
    """A :class:`DeviceMib` over fixed values, with at most one writable INTEGER column.

    Args:
        values: instance OID -> value.
        objects: object OIDs for noSuchInstance; by default each OID less its last arc.
        writable: a column OID whose existing instances accept SET of an INTEGER.
        allowed: the INTEGER values SET may write (any when ``None``).
        layout: a layout to share with other devices of the same shape (its
            OIDs must be exactly the keys of ``values``).
    """

    def __init__(
        self,
        values: Mapping[Oid, Value],
        objects: Iterable[Oid] | None = None,
        writable: Oid | None = None,
        allowed: Collection[int] | None = None,
        layout: MibLayout | None = None,
    ) -> None:
        if layout is None:
            if objects is None:
                objects = {oid[:-1] for oid in values}
            layout = MibLayout(list(values), objects)
        elif len(layout) != len(values):
            raise ValueError("StaticMib: the shared layout does not match the values")
        self._layout = layout
        self._values: tuple[Value, ...] = tuple(values[oid] for oid in layout.oids)
        self._writable = writable
        self._allowed = None if allowed is None else frozenset(allowed)

    def layout(self) -> MibLayout:
        return self._layout

    def reader(self) -> Callable[[int], Value]:
        # Writes replace the tuple, so a reader keeps the view it started with.
        return self._values.__getitem__

    def value(self, oid: Oid) -> Value | None:
        """The current value of ``oid``, or ``None`` when it is not served."""
        i = self._layout.index(oid)
        return None if i is None else self._values[i]

    def write(self, changes: Sequence[tuple[Oid, Value]]) -> tuple[int, int]:
        layout, column = self._layout, self._writable
        staged: list[tuple[int, Value]] = []
        for n, (oid, (tag, value)) in enumerate(changes, start=1):
            i = layout.index(oid)
            if column is None or oid[: len(column)] != column or len(oid) == len(column):
                return (NO_CREATION if i is None else NOT_WRITABLE), n
            if i is None:
                return NO_CREATION, n
            if tag != INTEGER or not isinstance(value, int):
                return WRONG_TYPE, n
            if self._allowed is not None and value not in self._allowed:
                return WRONG_VALUE, n
            staged.append((i, (tag, value)))
        values = list(self._values)
        for i, value in staged:
            values[i] = value
        self._values = tuple(values)
        return NO_ERROR, 0
