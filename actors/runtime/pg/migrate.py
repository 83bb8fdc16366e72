"""A service's schema: its numbered migration files, applied once each, forward only.

Files are ``schema/NNN_name.sql``; the table ``schema_migrations`` records what each
service applied. Every start applies what is pending in one transaction under an
advisory lock, so two instances may start at once (LAYOUT.md rule 6).
"""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg

from actors.runtime.pg.connect import CONNECT_TIMEOUT_S, normalize_dsn, one_line

__all__ = ["MigrationError", "migrate", "migration_files"]

MIGRATE_TIMEOUT_S = 120.0  # one migration file, also the wait for another instance's lock
MIGRATION_FILE = re.compile(r"^(\d+)_([A-Za-z0-9_-]+)\.sql$")


class MigrationError(Exception):
    """The migrations cannot be applied; nothing was changed."""


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    service    text        NOT NULL,
    version    int         NOT NULL,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
)"""


def migration_files(schema_dir: Path) -> list[tuple[int, str, Path]]:
    """The `NNN_name.sql` files of a directory as (version, name, path), by version.

    Raises:
        MigrationError: a `.sql` file not named NNN_name.sql, or two files of one number.
    """
    found: dict[int, Path] = {}
    for path in sorted(Path(schema_dir).glob("*.sql")):
        match = MIGRATION_FILE.fullmatch(path.name)
        if not match:
            raise MigrationError(f"{path} is not named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations numbered {version}: {found[version].name} and {path.name}"
            )
        found[version] = path
    return [(version, path.stem, path) for version, path in sorted(found.items())]


async def migrate(dsn: str, service: str, schema_dir: Path) -> list[str]:
    """Apply the service's pending migrations in order, all in one transaction.

    Safe with several instances starting at once: the transaction holds
    `pg_advisory_xact_lock(hashtext('migrate:' || service))`, so the second instance
    waits, then finds nothing left to apply. A failing file rolls everything back.
    Statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY) are not
    supported.

    Returns:
        The names (`NNN_name`) applied now; empty when the schema was current.

    Raises:
        MigrationError: files misnamed or duplicated, an applied version's file missing
            or renamed, a new file older than an applied one, or a file failed.
    """
    files = migration_files(schema_dir)
    if not files:
        raise MigrationError(f"no NNN_name.sql files in {schema_dir}")
    conn = await asyncpg.connect(
        normalize_dsn(dsn), timeout=CONNECT_TIMEOUT_S, command_timeout=MIGRATE_TIMEOUT_S
    )
    try:
        # NOTE: the shared table is created under its own lock, in its own transaction:
        # two services migrating one database at once would otherwise both CREATE it.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('migrate'))")
            await conn.execute(_CREATE_TABLE)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{service}")
            rows = await conn.fetch(
                "SELECT version, name FROM schema_migrations WHERE service = $1", service
            )
            applied: dict[int, str] = {row["version"]: row["name"] for row in rows}
            pending = _pending(service, files, applied)
            for version, name, path in pending:
                await _apply(conn, service, version, name, path)
    finally:
        await conn.close(timeout=CONNECT_TIMEOUT_S)
    return [name for _, name, _ in pending]


def _pending(
    service: str, files: list[tuple[int, str, Path]], applied: dict[int, str]
) -> list[tuple[int, str, Path]]:
    on_disk = {version: name for version, name, _ in files}
    for version, name in sorted(applied.items()):
        if on_disk.get(version) != name:
            now = f"{on_disk[version]}.sql" if version in on_disk else "no file"
            raise MigrationError(
                f"{service}: applied migration {name}.sql is missing "
                f"(version {version} is now {now}); migrations are "
                "forward-only, add a new file instead"
            )
    newest = max(applied, default=-1)
    pending = [entry for entry in files if entry[0] not in applied]
    for version, name, _ in pending:
        if version < newest:
            raise MigrationError(
                f"{service}: {name}.sql is older than the applied "
                f"version {newest}; number new migrations above it"
            )
    return pending


async def _apply(
    conn: asyncpg.Connection, service: str, version: int, name: str, path: Path
) -> None:
    sql = path.read_text()
    try:
        await conn.execute(sql)  # simple query protocol: several statements per file
    except (asyncpg.PostgresError, TimeoutError) as exc:
        raise MigrationError(
            f"{service}: {path.name} failed, nothing applied: {one_line(exc)}"
        ) from exc
    await conn.execute(
        "INSERT INTO schema_migrations (service, version, name) VALUES ($1, $2, $3)",
        service,
        version,
        name,
    )
