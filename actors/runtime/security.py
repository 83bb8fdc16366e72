"""CurveZMQ for the bus and the actors: encryption, and who may connect.

Off unless the service names a key directory, made by ``keygen(DIR)``::

    DIR/server.key, DIR/server.key_secret   keypair of every server socket
                                            (the bus's two, each storage actor's)
    DIR/client.key, DIR/client.key_secret   keypair every legitimate client uses
    DIR/authorized/*.key                    public keys allowed to connect

A server checks each connecting client's public key against ``authorized/``
(a ZAP handler thread in that process), so a peer without a listed key can
neither publish, fetch, subscribe nor talk to a storage actor.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

# NOTE: zmq.auth (and its thread, which imports asyncio) is imported where keys are made
# or loaded, not here: every actor, supervisor and HTTP worker imports this module, and
# most run without CurveZMQ; a cluster's ~15 processes start faster without it.

__all__ = ["Curve", "keygen"]


def keygen(directory: str | os.PathLike[str]) -> Path:
    """Create the server and client keypairs and authorize the client key.

    Returns:
        The directory.
    """
    import zmq.auth

    root = Path(directory)
    (root / "authorized").mkdir(parents=True, exist_ok=True)
    for name in ("server", "client"):
        if not (root / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(str(root), name)
    shutil.copy(root / "client.key", root / "authorized" / "client.key")
    os.chmod(root / "server.key_secret", 0o600)
    os.chmod(root / "client.key_secret", 0o600)
    return root


@dataclass(frozen=True)
class Curve:
    """Loaded keys; apply them to sockets as they are made."""

    directory: Path
    server_public: bytes
    server_secret: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def load(cls, directory: str | os.PathLike[str] | None) -> "Curve | None":
        """The keys in ``directory``, or None (no encryption) when it is not given.

        Raises:
            SystemExit: the keys cannot be loaded, in one line.
        """
        value = str(directory or "").strip()
        if not value:
            return None
        import zmq.auth

        root = Path(value)
        try:
            server_public, server_secret = zmq.auth.load_certificate(root / "server.key_secret")
            client_public, client_secret = zmq.auth.load_certificate(root / "client.key_secret")
            if server_secret is None or client_secret is None:
                raise ValueError("a .key_secret file holds no secret key")
        except (OSError, ValueError) as exc:
            raise SystemExit(
                f"CurveZMQ keys in {value}: cannot load them ({exc}); "
                f"make them with the service's keygen command"
            ) from None
        return cls(root, server_public, server_secret, client_public, client_secret)

    def serve(self, sock: zmq.Socket[Any]) -> None:
        """Make a bound socket a CURVE server (before bind)."""
        sock.curve_publickey = self.server_public
        sock.curve_secretkey = self.server_secret
        sock.curve_server = True

    def connect_as_client(self, sock: zmq.Socket[Any]) -> None:
        """Make a connecting socket a CURVE client (before connect)."""
        sock.curve_publickey = self.client_public
        sock.curve_secretkey = self.client_secret
        sock.curve_serverkey = self.server_public

    def authenticator(self, ctx: zmq.Context[Any]) -> ThreadAuthenticator:
        """Start the ZAP handler that admits only the authorized public keys."""
        from zmq.auth.thread import ThreadAuthenticator

        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(self.directory / "authorized"))
        return auth
