"""PostgreSQL fixtures for the runtime's tests (pg_server, pg_dsn)."""

from tests.fixtures_pg import pg_dsn, pg_server

__all__ = ["pg_dsn", "pg_server"]
