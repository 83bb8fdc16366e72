"""gophermart's settings: flags, environment (which wins), defaults, errors."""

from __future__ import annotations

import pytest

from actors.gophermart.config import Config
from actors.runtime.config import ConfigError

BASE = {"DATABASE_URI": "postgresql://u@db:5432/x", "ACCRUAL_SYSTEM_ADDRESS": "http://a:8091"}


def test_defaults_and_flags():
    config = Config.from_env({}, ["-a", "127.0.0.1:9000", "-d", "postgres://u@h/d", "-r", "acc:81"])
    assert str(config.address) == "127.0.0.1:9000"
    assert config.database_uri == "postgres://u@h/d"
    assert config.accrual_url == "http://acc:81"
    assert config.secret_generated and len(config.secret) >= 32
    assert str(Config.from_env(BASE, []).address) == "localhost:8080"


def test_environment_wins_over_flags():
    config = Config.from_env(
        {**BASE, "RUN_ADDRESS": "0.0.0.0:7000"},
        ["-a", "127.0.0.1:9000", "-d", "postgres://other@h/d", "-r", "other:1"],
    )
    assert (str(config.address), config.database_uri, config.accrual_url) == (
        "0.0.0.0:7000",
        BASE["DATABASE_URI"],
        "http://a:8091",
    )


def test_instances_differ_by_address_only():
    one = Config.from_env({**BASE, "RUN_ADDRESS": "127.0.0.1:8090"}, [])
    two = Config.from_env({**BASE, "RUN_ADDRESS": "127.0.0.1:8092"}, [])
    assert one.run_dir != two.run_dir  # where each keeps its private files (metrics)
    assert one.lease_owner != two.lease_owner
    again = Config.from_env({**BASE, "RUN_ADDRESS": "127.0.0.1:8090"}, [])
    assert one.lease_owner == again.lease_owner


@pytest.mark.parametrize(
    "env, name",
    [
        ({"RUN_ADDRESS": "no-port"}, "RUN_ADDRESS"),
        ({"RUN_ADDRESS": "localhost:\u00b2"}, "RUN_ADDRESS"),  # a Unicode digit int() refuses
        ({"DATABASE_URI": "mysql://x"}, "DATABASE_URI"),
        ({"ACCRUAL_SYSTEM_ADDRESS": "ftp://x"}, "ACCRUAL_SYSTEM_ADDRESS"),
        ({"ACCRUAL_SYSTEM_ADDRESS": "http://x/path"}, "ACCRUAL_SYSTEM_ADDRESS"),
        ({"ACCRUAL_SYSTEM_ADDRESS": "http://x:99999"}, "ACCRUAL_SYSTEM_ADDRESS"),
        ({"GOPHERMART_SECRET": "short"}, "GOPHERMART_SECRET"),
        ({"GOPHERMART_POLL_INFLIGHT": "0"}, "GOPHERMART_POLL_INFLIGHT"),
        ({"GOPHERMART_LEASE_S": "x"}, "GOPHERMART_LEASE_S"),
    ],
)
def test_errors_name_the_variable(env, name):
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**BASE, **env}, [])
    assert name in caught.value.args[0] and caught.value.code == 2


def test_a_missing_accrual_address_is_an_error():
    with pytest.raises(ConfigError, match="ACCRUAL_SYSTEM_ADDRESS"):
        Config.from_env({"DATABASE_URI": BASE["DATABASE_URI"]}, [])


def test_a_child_reads_back_the_same_settings_secret_included():
    config = Config.from_env({}, ["-a", "127.0.0.1:9000", "-d", "postgres://u@h/d", "-r", "acc:81"])
    again = Config.from_env(config.child_env(), [])
    assert again.secret == config.secret and not again.secret_generated
    assert (again.address, again.database_uri, again.accrual_url, again.run_dir) == (
        config.address,
        config.database_uri,
        config.accrual_url,
        config.run_dir,
    )
