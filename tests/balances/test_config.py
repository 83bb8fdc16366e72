"""balances' settings: flags, environment (which wins), the run dir, errors."""

from __future__ import annotations

import pytest

from actors.balances.config import Config
from actors.runtime.config import ConfigError

DSN = "postgresql://postgres@127.0.0.1:5433/postgres"


def test_defaults_and_flags():
    config = Config.from_env({}, ["-d", DSN])
    assert str(config.address) == "localhost:3333" and config.database_uri == DSN
    assert config.database_source == "-d"
    assert (config.http_workers, config.poll_ms, config.lease_ms, config.db_wait_s) == (
        2,
        1000,
        5000,
        30,
    )
    assert Config.from_env({"DATABASE_URI": DSN}, []).database_source == "DATABASE_URI"


def test_the_environment_wins_over_flags():
    config = Config.from_env(
        {"RUN_ADDRESS": "127.0.0.1:9200", "DATABASE_URI": DSN},
        ["-a", "127.0.0.1:9100", "-d", "postgresql://other@h/db"],
    )
    assert str(config.address) == "127.0.0.1:9200" and config.database_uri == DSN


def test_the_run_dir_follows_the_shared_rule_unless_balances_data_dir_is_set(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    first = Config.from_env({"DATABASE_URI": DSN, "RUN_ADDRESS": "127.0.0.1:3333"}, [])
    second = Config.from_env({"DATABASE_URI": DSN, "RUN_ADDRESS": "127.0.0.1:3334"}, [])
    assert first.run_dir.parent == tmp_path / "tmp" and first.run_dir != second.run_dir
    data = tmp_path / "data"
    kept = Config.from_env({"DATABASE_URI": DSN, "BALANCES_DATA_DIR": str(data)}, [])
    assert kept.run_dir == data / "balances-3333"  # where it was before the shared rule
    given = {"DATABASE_URI": DSN, "BALANCES_DATA_DIR": str(data), "BALANCES_RUN_DIR": "/r"}
    assert Config.from_env(given, []).run_dir.as_posix() == "/r"
    assert Config.from_env(kept.child_env(), []) == kept  # a child reads back the same


@pytest.mark.parametrize(
    "environ, argv, named",
    [
        ({"RUN_ADDRESS": "nonsense", "DATABASE_URI": DSN}, [], "RUN_ADDRESS"),
        ({"DATABASE_URI": DSN}, ["-a", "no-port"], "-a"),
        ({}, [], "DATABASE_URI"),
        ({}, ["-d", "nonsense"], "-d"),
        ({"DATABASE_URI": DSN, "BALANCES_WORKERS": "0"}, [], "BALANCES_WORKERS"),
        ({"DATABASE_URI": DSN, "BALANCES_LEASE_MS": "10"}, [], "BALANCES_LEASE_MS"),
    ],
)
def test_a_bad_setting_is_named(environ, argv, named):
    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ, argv)
    assert named in caught.value.args[0] and caught.value.code == 2
