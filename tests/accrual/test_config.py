"""accrual's settings: flags, environment (which wins), defaults, errors."""

from __future__ import annotations

import pytest

from actors.accrual.config import Config
from actors.runtime.config import ConfigError

DSN = "postgresql://u@db:5432/x"


def test_accrual_settings():
    config = Config.from_env(
        {"DATABASE_URI": DSN, "ACCRUAL_RATE_LIMIT": "60", "ACCRUAL_DELAY_MS": "250"},
        ["-a", "127.0.0.1:9100"],
    )
    assert (str(config.address), config.rate_limit, config.delay_s) == ("127.0.0.1:9100", 60, 0.25)
    defaults = Config.from_env({"DATABASE_URI": DSN}, [])
    assert (str(defaults.address), defaults.rate_limit, defaults.delay_s) == (
        "localhost:8091",
        0,
        1.0,
    )
    assert defaults.workers == 2 and defaults.db_wait_s == 30


def test_the_environment_wins_and_a_child_reads_back_the_same_settings(tmp_path):
    config = Config.from_env(
        {"RUN_ADDRESS": "127.0.0.1:9200", "DATABASE_URI": DSN, "ACCRUAL_DELAY_MS": "250"},
        ["-a", "127.0.0.1:9100", "-d", "postgres://other@h/d"],
    )
    assert str(config.address) == "127.0.0.1:9200" and config.database_uri == DSN
    assert config.run_dir.name.startswith("accrual-") and config.run_dir.name.endswith("-9200")
    assert Config.from_env(config.child_env(), []) == config
    given = Config.from_env({"DATABASE_URI": DSN, "ACCRUAL_RUN_DIR": str(tmp_path)}, [])
    assert given.run_dir == tmp_path


@pytest.mark.parametrize(
    "environ, argv, named",
    [
        ({"RUN_ADDRESS": "nonsense", "DATABASE_URI": DSN}, [], "RUN_ADDRESS"),
        ({"DATABASE_URI": DSN}, ["-a", "localhost"], "-a"),
        ({}, [], "DATABASE_URI"),
        ({}, ["-d", "mysql://x"], "-d"),
        ({"DATABASE_URI": DSN, "ACCRUAL_RATE_LIMIT": "-1"}, [], "ACCRUAL_RATE_LIMIT"),
        ({"DATABASE_URI": DSN, "ACCRUAL_WORKERS": "0"}, [], "ACCRUAL_WORKERS"),
    ],
)
def test_a_bad_setting_is_named(environ, argv, named):
    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ, argv)
    assert named in caught.value.args[0] and caught.value.code == 2
