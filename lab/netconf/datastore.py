"""NETCONF configuration datastores for one device: pure Python and lxml, no sockets.

A :class:`Datastore` holds a device's ``running`` and ``candidate``
configurations as lxml trees rooted at ``<data>`` in the NETCONF base
namespace, and implements the RFC 6241 operations on them: ``get``,
``get-config`` (with subtree filters), ``edit-config``, ``lock``,
``unlock``, ``commit`` (with confirmed commit, RFC 6241 section 8.4),
``cancel-commit``, ``discard-changes`` and ``validate``. Failures are
:class:`RpcError`, which the server turns into ``<rpc-error>``. Operations in
other namespaces go to the backend's ``custom_rpc`` when it has one
(:class:`lab.netconf.backend.CustomRpcBackend`).

Time only enters through a :class:`Scheduler`, so tests drive the
confirmed-commit timer with a fake one instead of sleeping.

Without a YANG schema, list entries are told apart by the key leaves the
backend names in ``list_keys``; every other element is matched by its
qualified name alone (a container or a leaf).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lxml import etree

if TYPE_CHECKING:
    from lab.netconf.backend import DeviceBackend

__all__ = [
    "BASE_NS",
    "DEFAULT_CONFIRM_TIMEOUT",
    "MAX_MESSAGE_BYTES",
    "Datastore",
    "LoopScheduler",
    "RpcError",
    "Scheduler",
    "Timer",
    "parse_xml",
    "qn",
]

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
DEFAULT_CONFIRM_TIMEOUT = 600
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_OPERATION = f"{{{BASE_NS}}}operation"
_OPERATIONS = frozenset({"merge", "replace", "create", "delete", "remove"})
_TARGETS = ("running", "candidate")

Element = Any  # lxml ships no type stubs here: an lxml.etree._Element.


def qn(local: str, ns: str = BASE_NS) -> str:
    """The Clark name ``{ns}local``."""
    return f"{{{ns}}}{local}"


class RpcError(Exception):
    """One RFC 6241 ``<rpc-error>``.

    Args:
        tag: the ``error-tag`` (``invalid-value``, ``data-missing``, ...).
        message: a human-readable ``error-message``.
        error_type: ``transport``, ``rpc``, ``protocol`` or ``application``.
        severity: ``error`` or ``warning``.
        path: an XPath to the node at fault, if known.
        info: ``error-info`` children as ``(local name, text)`` pairs, in
            the base namespace (``session-id``, ``bad-element``, ...).
    """

    def __init__(
        self,
        tag: str,
        message: str,
        *,
        error_type: str = "application",
        severity: str = "error",
        path: str | None = None,
        info: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{tag}: {message}")
        self.tag = tag
        self.message = message
        self.error_type = error_type
        self.severity = severity
        self.path = path
        self.info = info

    def to_xml(self) -> Element:
        """This error as an ``<rpc-error>`` element."""
        err = etree.Element(qn("rpc-error"), nsmap={None: BASE_NS})
        etree.SubElement(err, qn("error-type")).text = self.error_type
        etree.SubElement(err, qn("error-tag")).text = self.tag
        etree.SubElement(err, qn("error-severity")).text = self.severity
        if self.path is not None:
            etree.SubElement(err, qn("error-path")).text = self.path
        msg = etree.SubElement(err, qn("error-message"))
        msg.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        msg.text = self.message
        if self.info:
            info = etree.SubElement(err, qn("error-info"))
            for name, text in self.info:
                etree.SubElement(info, qn(name)).text = text
        return err


# Parsing ---------------------------------------------------------------------

# Entities stay unexpanded and nothing is fetched: client text is data, and a
# "billion laughs" or an external entity must not reach memory or the network.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    remove_blank_text=True,
    remove_comments=True,
    remove_pis=True,
)


def parse_xml(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Element:
    """Parse one NETCONF message safely.

    Raises:
        RpcError: ``malformed-message`` when the message is too large, is not
            well-formed XML, or carries a DOCTYPE (NETCONF never needs one).
    """
    if len(data) > max_bytes:
        raise RpcError(
            "malformed-message",
            f"message of {len(data)} bytes exceeds the {max_bytes}-byte limit",
            error_type="rpc",
        )
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise RpcError(
            "malformed-message", f"not well-formed XML: {exc}", error_type="rpc"
        ) from exc
    if root is None:
        raise RpcError("malformed-message", "empty message", error_type="rpc")
    if root.getroottree().docinfo.doctype:
        raise RpcError("malformed-message", "DOCTYPE is not allowed", error_type="rpc")
    return root


# Time --------------------------------------------------------------------------


class Timer(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None:
        """Stop the callback from running; harmless after it ran."""


class Scheduler(Protocol):
    """Runs a callback after a delay (an asyncio loop, or a fake clock in tests)."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once, ``delay`` seconds from now."""


class LoopScheduler:
    """A :class:`Scheduler` on an asyncio event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` on the loop after ``delay`` seconds."""
        return self._loop.call_later(delay, callback)


# The datastore -------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    """A confirmed commit waiting for its confirming commit."""

    backup: Element
    session_id: int
    persist: str | None
    timer: Timer | None = field(default=None)


def _children(el: Element) -> Iterator[Element]:
    return (c for c in el if isinstance(c.tag, str))


def _is_leaf(el: Element) -> bool:
    return not any(True for _ in _children(el))


def _text(el: Element) -> str:
    return (el.text or "").strip()


def _local(tag: str) -> str:
    return etree.QName(tag).localname  # type: ignore[no-any-return]


def _clean(el: Element) -> Element:
    """A deep copy of ``el`` without NETCONF ``operation`` attributes."""
    out = copy.deepcopy(el)
    for node in out.iter():
        if isinstance(node.tag, str) and _OPERATION in node.attrib:
            del node.attrib[_OPERATION]
    return out


def _empty_data() -> Element:
    return etree.Element(qn("data"), nsmap={None: BASE_NS})


def _protocol_error(tag: str, message: str, **kw: Any) -> RpcError:
    return RpcError(tag, message, error_type="protocol", **kw)


class Datastore:
    """The ``running`` and ``candidate`` datastores of one device.

    Args:
        device: the device's name, passed to the backend.
        backend: the device model: initial config, validation, change
            notifications and operational state.
        scheduler: runs the confirmed-commit timeout.
    """

    def __init__(self, device: str, backend: DeviceBackend, scheduler: Scheduler) -> None:
        self.device = device
        self._backend = backend
        self._scheduler = scheduler
        self._keys: Mapping[str, tuple[str, ...]] = backend.list_keys
        self._running = self._as_data(backend.initial_config(device))
        self._candidate = copy.deepcopy(self._running)
        self._candidate_dirty = False
        self._locks: dict[str, int] = {}
        self._pending: _Pending | None = None

    # Views ----------------------------------------------------------------

    @property
    def running(self) -> Element:
        """A copy of the running configuration (``<data>``)."""
        return copy.deepcopy(self._running)

    @property
    def candidate(self) -> Element:
        """A copy of the candidate configuration (``<data>``)."""
        return copy.deepcopy(self._candidate)

    @property
    def confirmed_commit_pending(self) -> bool:
        """True while a confirmed commit awaits confirmation."""
        return self._pending is not None

    def lock_holder(self, target: str) -> int | None:
        """The session id holding ``target``'s lock, or None."""
        return self._locks.get(target)

    def _adopt_drift(self) -> None:
        """Take in configuration changed behind NETCONF's back (a CLI push, an SNMP SET).

        A real device's running configuration shows such changes; a backend
        that can tell (``drifted_config``) hands the new tree over. An
        untouched candidate follows running; an edited one keeps its edits.
        """
        drifted = getattr(self._backend, "drifted_config", None)
        if drifted is None or self._pending is not None:
            return
        tree = drifted(self.device)
        if tree is None:
            return
        self._running = self._as_data(tree)
        if not self._candidate_dirty:
            self._candidate = copy.deepcopy(self._running)

    # Operations -------------------------------------------------------------

    def get_config(self, source: str, filter_: Element | None = None) -> Element:
        """``<data>`` with ``source``'s configuration, subtree-filtered when given."""
        self._adopt_drift()
        return subtree_filter(self._tree(source), filter_)

    def get(self, filter_: Element | None = None) -> Element:
        """``<data>`` with running configuration and operational state, filtered."""
        self._adopt_drift()
        merged = copy.deepcopy(self._running)
        state = self._backend.operational(self.device)
        for child in list(_children(state)):
            self._apply(merged, child, "merge")
        return subtree_filter(merged, filter_)

    def edit_config(
        self,
        session_id: int,
        target: str,
        config: Element,
        default_operation: str = "merge",
        error_option: str = "stop-on-error",
        test_option: str = "test-then-set",
    ) -> None:
        """Apply an ``edit-config`` to ``target`` (RFC 6241 section 7.2).

        ``config`` is the ``<config>`` element; its children are top-level
        nodes. With ``stop-on-error`` the edits made before the first error
        stay (as RFC 6241 words it); with ``rollback-on-error`` none do.
        ``test-then-set`` validates edits of running; the candidate is
        validated when committed.

        Raises:
            RpcError: the edit cannot be applied; see the error tag.
        """
        self._check_target(target)
        if default_operation not in ("merge", "replace", "none"):
            raise _protocol_error(
                "invalid-value", f"default-operation {default_operation!r} is not supported"
            )
        if error_option not in ("stop-on-error", "rollback-on-error"):
            raise _protocol_error(
                "operation-not-supported", f"error-option {error_option!r} is not supported"
            )
        if test_option not in ("test-then-set", "set", "test-only"):
            raise _protocol_error("invalid-value", f"test-option {test_option!r} is not supported")
        self._check_writable(session_id, target)
        work = copy.deepcopy(self._tree(target))
        if default_operation == "replace":
            # Replace at the top: the whole datastore becomes the given config.
            for child in list(_children(work)):
                work.remove(child)
            default_operation = "merge"
        error: RpcError | None = None
        for node in list(_children(config)):
            try:
                self._apply(work, node, default_operation)
            except RpcError as exc:
                error = exc
                break
        if error is not None and error_option == "rollback-on-error":
            raise error
        # The candidate is validated at commit (or on request): checking every
        # edit there would forbid the intermediate states a change passes through.
        if error is None and (
            test_option == "test-only" or (test_option == "test-then-set" and target == "running")
        ):
            self._validate(work)
        if test_option != "test-only":
            self._store(target, work)
        if error is not None:
            raise error

    def lock(self, session_id: int, target: str) -> None:
        """Lock ``target`` for ``session_id``.

        Raises:
            RpcError: ``lock-denied`` with the holder's ``session-id`` (0 when
                the candidate has uncommitted changes and nobody holds it).
        """
        self._check_target(target)
        holder = self._locks.get(target)
        if holder is not None:
            raise _protocol_error(
                "lock-denied",
                f"the {target} datastore is locked by session {holder}",
                info=(("session-id", str(holder)),),
            )
        if target == "candidate" and self._candidate_dirty:
            raise _protocol_error(
                "lock-denied",
                "the candidate has uncommitted changes (commit or discard-changes first)",
                info=(("session-id", "0"),),
            )
        self._locks[target] = session_id

    def unlock(self, session_id: int, target: str) -> None:
        """Release ``session_id``'s lock on ``target``."""
        self._check_target(target)
        holder = self._locks.get(target)
        if holder != session_id:
            who = "nobody" if holder is None else f"session {holder}"
            raise _protocol_error(
                "operation-failed", f"the {target} datastore is not locked by you (held by {who})"
            )
        del self._locks[target]

    def validate(self, source: str | Element) -> None:
        """Validate a datastore by name, or a ``<config>`` element.

        Raises:
            RpcError: the configuration is not valid for the device model.
        """
        if isinstance(source, str):
            self._validate(self._tree(source))
            return
        tree = _empty_data()
        for child in _children(source):
            tree.append(_clean(child))
        self._validate(tree)

    def discard_changes(self, session_id: int) -> None:
        """Reset the candidate to the running configuration."""
        self._check_writable(session_id, "candidate")
        self._candidate = copy.deepcopy(self._running)
        self._candidate_dirty = False

    def commit(
        self,
        session_id: int,
        *,
        confirmed: bool = False,
        timeout: int = DEFAULT_CONFIRM_TIMEOUT,
        persist: str | None = None,
        persist_id: str | None = None,
    ) -> None:
        """Copy the candidate to running (RFC 6241 sections 8.3 and 8.4).

        A ``confirmed`` commit keeps a backup of running and arms a timer
        that restores it after ``timeout`` seconds unless a confirming
        commit comes first. A confirmed commit without ``persist`` is also
        undone when its session ends; with ``persist``, any session may
        confirm or cancel it by giving the same value as ``persist_id``.

        Raises:
            RpcError: running is locked by another session, the persist-id
                does not match, the commit belongs to another session, or
                the candidate is not valid.
        """
        self._check_writable(session_id, "running")
        pending = self._pending
        if pending is not None:
            self._check_owner(pending, session_id, persist_id)
        elif persist_id is not None:
            raise _protocol_error(
                "invalid-value", f"no confirmed commit is pending for persist-id {persist_id!r}"
            )
        if confirmed and timeout < 1:
            raise _protocol_error("invalid-value", "confirm-timeout must be at least 1 second")
        self._validate(self._candidate)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        if confirmed:
            backup = pending.backup if pending is not None else copy.deepcopy(self._running)
            new = _Pending(backup=backup, session_id=session_id, persist=persist)
            new.timer = self._scheduler.call_later(float(timeout), lambda: self._expire(new))
            self._pending = new
        else:
            self._pending = None
        self._candidate_dirty = False
        self._set_running(copy.deepcopy(self._candidate))

    def cancel_commit(self, session_id: int, persist_id: str | None = None) -> None:
        """Undo the pending confirmed commit now.

        Raises:
            RpcError: no confirmed commit is pending, or it is not this
                session's and ``persist_id`` does not match its persist.
        """
        pending = self._pending
        if pending is None:
            raise _protocol_error("invalid-value", "no confirmed commit is pending")
        self._check_owner(pending, session_id, persist_id)
        self._rollback()

    def session_closed(self, session_id: int) -> None:
        """Forget a session: release its locks and undo its unpersisted confirmed commit."""
        if self._locks.get("candidate") == session_id and self._candidate_dirty:
            # RFC 6241 8.3.5.2: a lock holder's uncommitted changes go with it.
            self._candidate = copy.deepcopy(self._running)
            self._candidate_dirty = False
        for target in [t for t, sid in self._locks.items() if sid == session_id]:
            del self._locks[target]
        pending = self._pending
        if pending is not None and pending.persist is None and pending.session_id == session_id:
            self._rollback()

    def rpc(self, session_id: int, op: Element) -> Element | None:
        """Run one RPC operation element; returns ``<data>``, or None for ``<ok/>``.

        Raises:
            RpcError: the operation is unknown, malformed or fails.
        """
        custom = getattr(self._backend, "custom_rpc", None)
        if isinstance(op.tag, str) and etree.QName(op).namespace != BASE_NS and custom:
            # Not configuration (a lab action such as restart-process): the backend's.
            return custom(self.device, op)
        if not isinstance(op.tag, str) or etree.QName(op).namespace != BASE_NS:
            name = etree.QName(op).localname if isinstance(op.tag, str) else "?"
            raise _protocol_error(
                "operation-not-supported",
                f"operation {name!r} is not supported",
                info=(("bad-element", name),),
            )
        name = etree.QName(op).localname
        # Running must show what the device runs before anything reads or edits it:
        # a discard-changes or a commit on a stale copy would undo nothing of a drift.
        self._adopt_drift()
        if name == "get":
            return self.get(_filter_param(op))
        if name == "get-config":
            return self.get_config(_datastore_param(op, "source"), _filter_param(op))
        if name == "edit-config":
            config = op.find(qn("config"))
            if config is None:
                if op.find(qn("url")) is not None:
                    raise _protocol_error("operation-not-supported", "<url> is not supported")
                raise _protocol_error(
                    "missing-element",
                    "edit-config needs <config>",
                    info=(("bad-element", "config"),),
                )
            self.edit_config(
                session_id,
                _datastore_param(op, "target"),
                config,
                default_operation=_text_param(op, "default-operation") or "merge",
                error_option=_text_param(op, "error-option") or "stop-on-error",
                test_option=_text_param(op, "test-option") or "test-then-set",
            )
            return None
        if name == "lock":
            self.lock(session_id, _datastore_param(op, "target"))
            return None
        if name == "unlock":
            self.unlock(session_id, _datastore_param(op, "target"))
            return None
        if name == "commit":
            timeout_text = _text_param(op, "confirm-timeout")
            try:
                timeout = int(timeout_text) if timeout_text else DEFAULT_CONFIRM_TIMEOUT
            except ValueError:
                raise _protocol_error(
                    "invalid-value", f"confirm-timeout {timeout_text!r} is not an integer"
                ) from None
            persist = op.find(qn("persist"))
            self.commit(
                session_id,
                confirmed=op.find(qn("confirmed")) is not None,
                timeout=timeout,
                persist=_text(persist) if persist is not None else None,
                persist_id=_text_param(op, "persist-id"),
            )
            return None
        if name == "cancel-commit":
            self.cancel_commit(session_id, _text_param(op, "persist-id"))
            return None
        if name == "discard-changes":
            self.discard_changes(session_id)
            return None
        if name == "validate":
            source = op.find(qn("source"))
            config = source.find(qn("config")) if source is not None else None
            if config is not None:
                self.validate(config)
            else:
                self.validate(_datastore_param(op, "source"))
            return None
        raise _protocol_error(
            "operation-not-supported",
            f"operation {name!r} is not supported",
            info=(("bad-element", name),),
        )

    # Internals ----------------------------------------------------------------

    def _as_data(self, tree: Element) -> Element:
        data = _empty_data()
        for child in _children(tree):
            data.append(_clean(child))
        return data

    def _check_target(self, target: str) -> None:
        if target not in _TARGETS:
            raise _protocol_error(
                "invalid-value", f"datastore {target!r} is not supported (running or candidate)"
            )

    def _tree(self, name: str) -> Element:
        self._check_target(name)
        return self._running if name == "running" else self._candidate

    def _check_writable(self, session_id: int, target: str) -> None:
        holder = self._locks.get(target)
        if holder is not None and holder != session_id:
            raise _protocol_error(
                "in-use",
                f"the {target} datastore is locked by session {holder}",
                info=(("session-id", str(holder)),),
            )

    def _check_owner(self, pending: _Pending, session_id: int, persist_id: str | None) -> None:
        if pending.persist is not None:
            if persist_id != pending.persist:
                raise _protocol_error(
                    "invalid-value", "persist-id does not match the pending confirmed commit"
                )
            return
        if persist_id is not None:
            raise _protocol_error(
                "invalid-value", "the pending confirmed commit was not persisted; omit persist-id"
            )
        if pending.session_id != session_id:
            raise _protocol_error(
                "in-use",
                f"a confirmed commit from session {pending.session_id} is pending; "
                "only that session can confirm or cancel it",
                info=(("session-id", str(pending.session_id)),),
            )

    def _validate(self, tree: Element) -> None:
        self._backend.validate(self.device, tree)

    def _store(self, target: str, tree: Element) -> None:
        if target == "running":
            self._set_running(tree)
        else:
            self._candidate = tree
            self._candidate_dirty = True

    def _set_running(self, tree: Element) -> None:
        self._running = tree
        self._backend.config_changed(self.device, copy.deepcopy(tree))

    def _expire(self, pending: _Pending) -> None:
        # A timer from a commit already confirmed or extended must do nothing.
        if self._pending is pending:
            self._rollback()

    def _rollback(self) -> None:
        pending = self._pending
        assert pending is not None
        if pending.timer is not None:
            pending.timer.cancel()
        self._pending = None
        if not self._candidate_dirty:
            self._candidate = copy.deepcopy(pending.backup)
        self._set_running(pending.backup)

    def _find(self, parent: Element, node: Element) -> Element | None:
        keys = self._keys.get(node.tag, ())
        want: list[tuple[str, str]] = []
        ns = etree.QName(node).namespace
        for key in keys:
            key_el = node.find(qn(key, ns) if ns else key)
            if key_el is None:
                raise RpcError(
                    "missing-element",
                    f"list entry <{_local(node.tag)}> lacks its key <{key}>",
                    error_type="protocol",
                    info=(("bad-element", key),),
                )
            want.append((key_el.tag, _text(key_el)))
        for cand in parent.iterchildren(node.tag):
            if all((k := cand.find(tag)) is not None and _text(k) == value for tag, value in want):
                return cand
        return None

    def _key_tags(self, node: Element) -> set[str]:
        ns = etree.QName(node).namespace
        return {qn(k, ns) if ns else k for k in self._keys.get(node.tag, ())}

    def _apply(self, parent: Element, node: Element, inherited: str) -> None:
        op = node.get(_OPERATION, inherited)
        if op not in _OPERATIONS and not (op == "none" and _OPERATION not in node.attrib):
            raise _protocol_error(
                "bad-attribute",
                f"operation {op!r} on <{_local(node.tag)}> is not one of "
                "merge, replace, create, delete, remove",
                info=(("bad-attribute", "operation"), ("bad-element", _local(node.tag))),
            )
        existing = self._find(parent, node)
        path = _path(parent, node)
        if op == "create":
            if existing is not None:
                raise RpcError("data-exists", f"{path} already exists", path=path)
            parent.append(_clean(node))
            return
        if op == "delete":
            if existing is None:
                raise RpcError("data-missing", f"{path} does not exist", path=path)
            parent.remove(existing)
            return
        if op == "remove":
            if existing is not None:
                parent.remove(existing)
            return
        if op == "replace":
            if existing is None:
                parent.append(_clean(node))
            else:
                parent.replace(existing, _clean(node))
            return
        # merge, or none (a containment step toward nested operations)
        if _is_leaf(node):
            if op == "merge":
                if existing is None:
                    parent.append(_clean(node))
                elif _is_leaf(existing):
                    existing.text = node.text
            return
        created = existing is None
        if existing is None:
            existing = etree.Element(node.tag, nsmap=node.nsmap)
            for key in (node.find(k) for k in self._key_tags(node)):
                if key is not None:
                    existing.append(_clean(key))
        keys = self._key_tags(node)
        for child in list(_children(node)):
            if child.tag not in keys:
                self._apply(existing, child, op)
        if created and (op == "merge" or any(c.tag not in keys for c in _children(existing))):
            parent.append(existing)


def _path(parent: Element, node: Element) -> str:
    steps = [_local(node.tag)]
    el = parent
    while el is not None and el.tag != qn("data"):
        steps.append(_local(el.tag))
        el = el.getparent()
    return "/" + "/".join(reversed(steps))


def _param(op: Element, name: str) -> Element | None:
    return op.find(qn(name))


def _text_param(op: Element, name: str) -> str | None:
    el = _param(op, name)
    return _text(el) if el is not None else None


def _datastore_param(op: Element, name: str) -> str:
    el = _param(op, name)
    inner = next(_children(el), None) if el is not None else None
    if inner is None:
        raise _protocol_error(
            "missing-element",
            f"<{etree.QName(op).localname}> needs <{name}> naming a datastore",
            info=(("bad-element", name),),
        )
    return etree.QName(inner).localname  # type: ignore[no-any-return]


def _filter_param(op: Element) -> Element | None:
    flt = op.find(qn("filter"))
    if flt is None:
        return None
    kind = flt.get("type") or flt.get(qn("type")) or "subtree"
    if kind != "subtree":
        raise _protocol_error(
            "operation-not-supported", f"filter type {kind!r} is not supported (use subtree)"
        )
    return flt


# Subtree filtering (RFC 6241 section 6) -------------------------------------------


def subtree_filter(data: Element, filter_: Element | None) -> Element:
    """The nodes of ``data`` that ``filter_`` selects, as a new ``<data>``.

    No filter selects everything; an empty filter selects nothing. A filter
    node without a namespace matches that local name in any namespace.
    """
    if filter_ is None:
        return copy.deepcopy(data)
    marks = _mark(list(_children(filter_)), data)
    out = _empty_data()
    if marks:
        _build(data, out, marks)
    return out


def _matches(f: Element, d: Element) -> bool:
    fq, dq = etree.QName(f), etree.QName(d)
    if fq.localname != dq.localname:
        return False
    return fq.namespace is None or fq.namespace == dq.namespace


def _attrs_match(f: Element, d: Element) -> bool:
    return all(d.get(k) == v for k, v in f.attrib.items() if not k.startswith(f"{{{BASE_NS}}}"))


def _mark(fnodes: list[Element], d: Element) -> dict[Element, bool] | None:
    """Which children of ``d`` the filter level ``fnodes`` selects.

    Returns a map from selected node to True (whole subtree) or False (only
    the marked descendants), or None when a content-match node fails, which
    excludes ``d`` itself.
    """
    if not fnodes:
        return {}
    content = [f for f in fnodes if _is_leaf(f) and _text(f)]
    others = [f for f in fnodes if not (_is_leaf(f) and _text(f))]
    marks: dict[Element, bool] = {}
    kids = list(_children(d))
    for f in content:
        hits = [x for x in kids if _matches(f, x) and _text(x) == _text(f)]
        if not hits:
            return None
        for x in hits:
            marks[x] = True
    if not others:
        # Only content-match nodes: every sibling comes along (RFC 6241 6.2.5).
        return dict.fromkeys(kids, True)
    selected = False
    for x in kids:
        for f in others:
            if not _matches(f, x) or not _attrs_match(f, x):
                continue
            if _is_leaf(f):
                marks[x] = True
                selected = True
                continue
            sub = _mark(list(_children(f)), x)
            if sub is None:
                continue
            for node, full in sub.items():
                marks[node] = marks.get(node, False) or full
            marks.setdefault(x, False)
            selected = True
    if not selected and not content:
        return None
    return marks


def _build(src: Element, out: Element, marks: dict[Element, bool]) -> None:
    for x in _children(src):
        if x not in marks:
            continue
        if marks[x]:
            out.append(copy.deepcopy(x))
            continue
        shell = etree.SubElement(out, x.tag, attrib=dict(x.attrib), nsmap=x.nsmap)
        _build(x, shell, marks)
