"""Tests for actors.runtime.security: loading CurveZMQ keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from actors.runtime.security import Curve, keygen


def test_keygen_keys_load(tmp_path: Path) -> None:
    curve = Curve.load(keygen(tmp_path))
    assert curve is not None
    assert curve.server_secret and curve.client_secret


def test_a_secret_file_without_a_secret_key_is_refused_in_one_line(tmp_path: Path) -> None:
    keygen(tmp_path)
    shutil.copy(tmp_path / "server.key", tmp_path / "server.key_secret")  # the public half
    with pytest.raises(SystemExit, match="holds no secret key"):
        Curve.load(tmp_path)


def test_no_directory_means_no_encryption() -> None:
    assert Curve.load(None) is None
    assert Curve.load("  ") is None
