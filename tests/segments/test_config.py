"""segments' configuration: flags and environment (the environment wins), per-instance sockets."""

from __future__ import annotations

import pytest

from actors.segments.config import Config, ConfigError

DSN = "postgresql://postgres@127.0.0.1:5433/postgres"


def test_defaults_and_flags():
    config = Config.from_env({}, ["-d", DSN])
    assert str(config.address) == "localhost:8100" and config.database_uri == DSN
    assert config.http_workers == 2 and config.db_wait_s == 30
    flagged = Config.from_env({}, ["-a", "127.0.0.1:9100", "-d", "postgres://x@h/db"])
    assert str(flagged.address) == "127.0.0.1:9100"
    assert flagged.database_uri == "postgres://x@h/db"


def test_the_environment_wins_over_flags():
    config = Config.from_env(
        {"RUN_ADDRESS": "127.0.0.1:9200", "DATABASE_URI": DSN},
        ["-a", "127.0.0.1:9100", "-d", "postgresql://other@h/db"],
    )
    assert str(config.address) == "127.0.0.1:9200" and config.database_uri == DSN


def test_two_instances_have_private_endpoints(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # the default run dirs go here
    first = Config.from_env({"DATABASE_URI": DSN, "RUN_ADDRESS": "127.0.0.1:8100"}, [])
    second = Config.from_env({"DATABASE_URI": DSN, "RUN_ADDRESS": "127.0.0.1:8101"}, [])
    assert first.run_dir != second.run_dir and first.run_dir.parent == tmp_path
    assert first.reaper_endpoint != second.reaper_endpoint
    assert first.reaper_endpoint.startswith("ipc://")
    env = {"DATABASE_URI": "ignored", "OTHER": "kept", **first.child_env()}
    assert env["DATABASE_URI"] == DSN and env["OTHER"] == "kept"
    assert Config.from_env(env, []) == first  # a child reads back the same settings


@pytest.mark.parametrize(
    "environ, argv, named",
    [
        ({"RUN_ADDRESS": "nonsense", "DATABASE_URI": DSN}, [], "RUN_ADDRESS"),
        ({"DATABASE_URI": DSN}, ["-a", "localhost"], "-a"),
        ({}, [], "DATABASE_URI"),
        ({"DATABASE_URI": "mysql://x/y"}, [], "DATABASE_URI"),
        ({}, ["-d", "nonsense"], "-d"),
        ({"DATABASE_URI": DSN, "SEGMENTS_HTTP_WORKERS": "0"}, [], "SEGMENTS_HTTP_WORKERS"),
    ],
)
def test_a_bad_setting_is_named(environ, argv, named):
    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ, argv)
    assert named in caught.value.args[0] and caught.value.code == 2
