"""rendernginx: templates filled in, trust bundles written from the database, nginx accepts it."""

import shutil
import subprocess

import pytest
from django.core.management import CommandError, call_command

from security.models import RevocationList
from tests.security.trust import register_community

pytestmark = pytest.mark.django_db


def _render(tmp_path, pki):
    server = tmp_path / "server.pem"
    key = tmp_path / "server.key.pem"
    server.write_text(pki.server.pem)
    key.write_bytes(b"unused by these tests")
    out = tmp_path / "nginx"
    call_command("rendernginx", out=str(out), port="18443", tls_cert=str(server), tls_key=str(key))
    return out


def test_bundles_hold_every_anchor_and_crl_of_active_communities(tmp_path, pki, settings):
    settings.STATIC_ROOT = str(tmp_path / "static")
    register_community(pki.a)
    register_community(pki.b)
    out = _render(tmp_path, pki)
    bundle = (out / "client-ca.pem").read_text()
    for ca in (pki.a.root, pki.a.intermediate, pki.b.root, pki.b.intermediate):
        assert ca.pem.strip() in bundle
    assert (out / "crls.pem").read_text().count("BEGIN X509 CRL") == 4
    site = (out / "fhir-directory.conf").read_text()
    assert "{{" not in site and "listen 18443 ssl" in site
    assert f"ssl_crl {out / 'crls.pem'};" in site


def test_refuses_without_anchors_or_with_a_missing_crl(tmp_path, pki, settings):
    settings.STATIC_ROOT = str(tmp_path / "static")
    with pytest.raises(CommandError, match="No trust anchor"):
        _render(tmp_path, pki)
    register_community(pki.a)
    RevocationList.objects.first().delete()
    with pytest.raises(CommandError, match="No CRL stored"):
        _render(tmp_path, pki)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_accepts_the_rendered_configuration(tmp_path, pki, settings):
    settings.STATIC_ROOT = str(tmp_path / "static")
    register_community(pki.a)
    server, key = tmp_path / "s.pem", tmp_path / "s.key.pem"
    out = tmp_path / "nginx"
    server.write_text(pki.server.pem)
    from cryptography.hazmat.primitives import serialization

    key.write_bytes(
        pki.server.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    call_command("rendernginx", out=str(out), port="18443", tls_cert=str(server), tls_key=str(key))
    result = subprocess.run(  # noqa: S603 - fixed command, test only
        ["nginx", "-t", "-p", str(out), "-c", str(out / "nginx.conf")],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
