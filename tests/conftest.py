"""Fixtures shared by every test package; service fixtures live in tests/<service>/."""

pytest_plugins = ["tests.fixtures_pg"]
