"""``beamlet ping`` and ``beamlet top`` against a ``beamlet run`` node that uses mutual TLS.

The certificates are made by ``trustme``, as for the cluster's own TLS tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from .conftest import Service, beamlet, one_line


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, str]:
    """The cluster's CA, a certificate for 127.0.0.1 it signed, and another CA's pair."""
    files = {}
    for stem in ("cluster", "other"):
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(tmp_path / f"{stem}-ca.pem"))
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            str(tmp_path / f"{stem}.pem")  # the key and the certificate in one file
        )
        files[f"{stem}_ca"] = str(tmp_path / f"{stem}-ca.pem")
        files[stem] = str(tmp_path / f"{stem}.pem")
    return files


@pytest.fixture
def tls_service(cookie_file: Path, certs: dict[str, str]) -> Iterator[str]:
    """``beamlet run`` with TLS; yields its address."""
    svc = Service(
        [
            "cli_app:children",
            "--name",
            "tls@127.0.0.1",
            "--cookie-file",
            str(cookie_file),
            "--tls-cert",
            certs["cluster"],
            "--tls-ca",
            certs["cluster_ca"],
        ]
    )
    try:
        yield svc.wait_for(r"listening on (\S+)").group(1)
    finally:
        svc.stop()


def test_ping_and_top_over_tls(tls_service: str, cookie_file: Path, certs: dict[str, str]) -> None:
    tls = ["--cookie-file", str(cookie_file), "--tls-cert", certs["cluster"]]
    tls += ["--tls-ca", certs["cluster_ca"]]
    result = beamlet("ping", f"tls@{tls_service}", *tls)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"pong tls@127.0.0.1 ({tls_service}) in ")
    result = beamlet("top", tls_service, "--once", "--sort", "mailbox", "--limit", "2", *tls)
    assert result.returncode == 0, result.stderr
    summary, _header, first, _second = result.stdout.splitlines()
    assert summary.startswith("node tls@127.0.0.1 ")
    assert "0 connected nodes (+1 hidden)" in summary
    assert first.split()[1:5] == ["backlog", "backlog", "waiting", "7"]


def test_a_certificate_of_another_ca_is_one_line(
    tls_service: str, cookie_file: Path, certs: dict[str, str]
) -> None:
    cookie = ["--cookie-file", str(cookie_file)]
    # The console does not trust the node's certificate: it says why.
    trusts_another = ["--tls-cert", certs["cluster"], "--tls-ca", certs["other_ca"]]
    result = beamlet("ping", tls_service, *cookie, *trusts_another)
    one_line(result, 1, "pang", "TLS: certificate verify failed")
    result = beamlet("top", tls_service, "--once", *cookie, *trusts_another)
    one_line(result, 1, "cannot connect", "TLS: certificate verify failed")
    # The node does not trust the console's certificate: it hangs up, its log says why.
    signed_by_another = ["--tls-cert", certs["other"], "--tls-ca", certs["cluster_ca"]]
    result = beamlet("ping", tls_service, *cookie, *signed_by_another)
    # (TLS 1.3: the connection is closed, or reset before the alert is read: either way.)
    one_line(result, 1, "pang", "refused this node's certificate", "its log says")


def test_a_tls_node_asked_without_tls_is_one_line(tls_service: str, cookie_file: Path) -> None:
    result = beamlet("ping", tls_service, "--cookie-file", str(cookie_file))
    one_line(result, 1, "pang", "does the node use TLS? give --tls-cert and --tls-ca")
    result = beamlet("top", tls_service, "--once", "--cookie-file", str(cookie_file))
    one_line(result, 1, "does the node use TLS? give --tls-cert and --tls-ca")
