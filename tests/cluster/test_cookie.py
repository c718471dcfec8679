"""Cookie resolution: argument, environment, a 0600 file; never shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from beamlet.cluster._cookie import Cookie, CookieError, resolve_cookie


def test_cookie_is_hidden_from_repr_and_str() -> None:
    cookie = Cookie("correct horse battery staple")
    assert "horse" not in repr(cookie)
    assert "horse" not in str(cookie)
    assert "horse" not in f"{cookie!r} {cookie}"


def test_short_cookie_is_refused() -> None:
    with pytest.raises(CookieError, match="at least 16 bytes"):
        Cookie("short")


def test_argument_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEAMLET_COOKIE", "environment-cookie-0123456789")
    assert resolve_cookie("argument-cookie-0123456789").secret == b"argument-cookie-0123456789"
    assert resolve_cookie().secret == b"environment-cookie-0123456789"


def test_cookie_file_is_created_with_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BEAMLET_COOKIE", raising=False)
    path = tmp_path / "dir" / "cookie"
    monkeypatch.setenv("BEAMLET_COOKIE_FILE", str(path))
    first = resolve_cookie()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first.secret) >= 32
    assert resolve_cookie() == first


def test_cookie_file_readable_by_others_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BEAMLET_COOKIE", raising=False)
    path = tmp_path / "cookie"
    path.write_text("a-perfectly-long-cookie-value")
    path.chmod(0o644)
    monkeypatch.setenv("BEAMLET_COOKIE_FILE", str(path))
    with pytest.raises(CookieError, match="0600"):
        resolve_cookie()
