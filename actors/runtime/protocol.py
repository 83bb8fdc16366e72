"""The wire protocol of every actor: msgpack framing, replies, errors.

Message shapes live with their owners (``actors/<service>/messages.py``,
``actors/bus/messages.py``), which declare them with ``@tagged(tag)`` (it sets the
class attribute ``TAG`` and registers the class). Every message is a NamedTuple
whose ``TAG`` names it on the wire; the body frame is one msgpack array::

    [VERSION, tag, request_id, *fields]

Request/reply runs DEALER -> ROUTER; ZMQ adds the routing identity::

    client DEALER                   actor ROUTER
    [body]              ------>     [identity, body]
    [body]              <------     [identity, body]     body tag is "ok" or "error"

One-way messages between actors use the same body with request_id 0. Many
messages to the same peer may travel as one Batch frame, whose items are the
arrays above, unserialized::

    [VERSION, "batch", 0, [[VERSION, tag, request_id, *fields], ...]]

so one ZMQ send carries every request a worker made in one event-loop turn, and
every reply an actor owes one peer after one drain.

A body that is not msgpack, not an array, of another VERSION, of an unknown tag
or of the wrong arity raises ProtocolError; actors answer it with an error reply
and carry on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import msgpack

__all__ = [
    "VERSION",
    "MAX_FRAME_BYTES",
    "ErrorCode",
    "ProtocolError",
    "tagged",
    "register",
    "tag_of",
    "encode",
    "encode_batch",
    "decode",
    "unbatch",
    "Ok",
    "Error",
    "Ping",
    "Batch",
]

VERSION = 1
"""Bumped on any incompatible change; a peer speaking another version gets an error."""

MAX_FRAME_BYTES = 8 * 1024 * 1024
"""Every socket sets ZMQ_MAXMSGSIZE to this: a bigger frame drops the connection."""


class ErrorCode:
    """Error codes carried by Error replies; the HTTP layer maps them to statuses."""

    BAD_REQUEST = "bad_request"  # 400: the message's content is invalid
    NOT_FOUND = "not_found"  # 404: no such record / snapshot
    UNAVAILABLE = "unavailable"  # 503: nothing was done; retry later
    UNKNOWN_OUTCOME = "unknown_outcome"  # 504: sent on, no answer; may have applied
    PROTOCOL = "protocol"  # malformed frame, wrong version, unknown tag
    INTERNAL = "internal"  # a handler raised; the actor logged it and lives on


class ProtocolError(ValueError):
    """A frame that cannot be decoded into a known message."""


# --- message classes ----------------------------------------------------------

# The wire tag is a class attribute set by ``tagged``, not written in the class body: a
# NamedTuple body cannot hold an unannotated attribute the type checker accepts (it would
# take it for a field). So code reads a message's tag with ``tag_of``.

M = TypeVar("M", bound=NamedTuple)

_MESSAGES: dict[str, type[NamedTuple]] = {}
_ARITY: dict[str, tuple[int, int]] = {}
_TAGS: dict[type[NamedTuple], str] = {}


def tagged(tag: str) -> Callable[[type[M]], type[M]]:
    """Class decorator naming a NamedTuple message on the wire: sets ``TAG``, registers it.

    Raises:
        ValueError: the tag already names another class (see ``register``).
    """

    def declare(cls: type[M]) -> type[M]:
        setattr(cls, "TAG", tag)  # noqa: B010 - the type checker sees no TAG on the class
        register(cls)
        return cls

    return declare


def register(*classes: type[NamedTuple]) -> None:
    """Make message classes known to decode; ``tagged`` calls this at import.

    Each class is a NamedTuple with a class attribute ``TAG``, unique across
    every owner. Registering the same class twice is harmless (a module may be
    imported under two names); another class under a taken tag is a bug.

    Raises:
        ValueError: a tag already names another class, or a class has no TAG.
    """
    for cls in classes:
        tag = getattr(cls, "TAG", None)
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"{cls.__name__} has no TAG")
        known = _MESSAGES.get(tag)
        if known is not None and known is not cls and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"message tag {tag!r} is taken by {known.__module__}.{known.__name__}")
        _MESSAGES[tag] = cls
        _ARITY[tag] = (len(cls._fields) - len(cls._field_defaults), len(cls._fields))
        _TAGS[cls] = tag


def tag_of(message: NamedTuple) -> str:
    """The wire tag of a message of a registered class (its ``TAG``)."""
    return _TAGS[type(message)]


# --- framing ----------------------------------------------------------------


@tagged("batch")
class Batch(NamedTuple):
    """Several messages in one frame; see the module docstring."""

    items: list[list[Any]]
    """[VERSION, tag, request_id, *fields] per message."""


# --- replies ----------------------------------------------------------------


@tagged("ok")
class Ok(NamedTuple):
    """Success reply."""

    result: Any
    """The answer; its shape depends on the request."""


@tagged("error")
class Error(NamedTuple):
    """Failure reply: nothing was changed unless code is UNKNOWN_OUTCOME."""

    code: str
    """One of ErrorCode."""
    reason: str
    """Human-readable, names the offending field where there is one."""
    retry_after_s: int = 0
    """For UNAVAILABLE: seconds after which a retry may succeed."""


# --- liveness -----------------------------------------------------------------


@tagged("ping")
class Ping(NamedTuple):
    """Answered Ok(None) by an actor's serve loop on any ROUTER it serves, whatever else it
    serves: an answer means the loop that serves its requests is turning
    (actors.runtime.liveness)."""


_packer = msgpack.Packer(use_bin_type=True)


def encode(message: NamedTuple, request_id: int = 0) -> bytes:
    """Body frame for a message.

    Args:
        message: one of this module's NamedTuples.
        request_id: echoed in the reply so a client can match it; 0 for one-way.

    Returns:
        The msgpack bytes.
    """
    return _packer.pack([VERSION, tag_of(message), request_id, *message])


def encode_batch(messages: list[tuple[NamedTuple, int]]) -> bytes:
    """One frame carrying several messages.

    Args:
        messages: (message, request_id) pairs.
    """
    return _packer.pack(
        [
            VERSION,
            _TAGS[Batch],
            0,
            [[VERSION, tag_of(m), request_id, *m] for m, request_id in messages],
        ]
    )


def decode(body: bytes) -> tuple[int, NamedTuple]:
    """Parse a body frame.

    Returns:
        (request_id, message).

    Raises:
        ProtocolError: anything but a well-formed message of this VERSION.
    """
    try:
        frame = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"not msgpack: {exc.__class__.__name__}") from None
    return _from_frame(frame)


def _from_frame(frame: Any) -> tuple[int, NamedTuple]:
    if not isinstance(frame, list) or len(frame) < 3:
        raise ProtocolError("frame is not [version, tag, request_id, ...]")
    version, tag, request_id = frame[0], frame[1], frame[2]
    if type(version) is not int or version != VERSION:
        raise ProtocolError(f"protocol version {version!r}, expected {VERSION}")
    cls = _MESSAGES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {tag!r}")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise ProtocolError("request_id is not an integer")
    low, high = _ARITY[tag]
    if not low <= len(frame) - 3 <= high:
        raise ProtocolError(f"{tag}: expected {low}..{high} fields, got {len(frame) - 3}")
    return request_id, cls(*frame[3:])


def unbatch(request_id: int, message: NamedTuple) -> list[tuple[int, NamedTuple]]:
    """The (request_id, message) pairs a decoded frame carries: itself, or a Batch's items.

    Raises:
        ProtocolError: a malformed item, or a Batch inside a Batch.
    """
    if not isinstance(message, Batch):
        return [(request_id, message)]
    if not isinstance(message.items, list):
        raise ProtocolError("batch: items is not a list")
    pairs = [_from_frame(item) for item in message.items]
    if any(isinstance(m, Batch) for _, m in pairs):
        raise ProtocolError("batch: nested batches are not allowed")
    return pairs
