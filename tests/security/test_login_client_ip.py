"""The sign-in lockout counts failures against the client nginx forwarded for, not nginx itself."""

import pytest
from axes.helpers import get_client_ip_address
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.test import Client, RequestFactory

from security.client_ip import client_ip_address

from .staff import LOGIN_URL, PASSWORD, fast_passwords, login_form, make_staff, signed_in  # noqa: F401

PROXY = "127.0.0.1"  # in the default SECURITY_TRUSTED_PROXIES, as nginx on the same host is
CLIENT_A = "203.0.113.7"
CLIENT_B = "198.51.100.9"
SPOOFED = "192.0.2.66"


def client_ip(remote_addr, forwarded_for=None) -> str | None:
    meta = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client_ip_address(RequestFactory().get("/", **meta))


# ------------------------------------------------------------------------- the address itself


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        (CLIENT_A, CLIENT_A),
        (f"{SPOOFED}, {CLIENT_A}", CLIENT_A),
        (f"{SPOOFED},{CLIENT_A}", CLIENT_A),
        ("not-an-address, " + CLIENT_A, CLIENT_A),
        # Trusted hops on the right are proxies in a chain, skipped; the client is left of them.
        (f"{SPOOFED}, {CLIENT_A}, 127.0.0.1, ::1", CLIENT_A),
        (f"::ffff:{CLIENT_A}", CLIENT_A),
        ("2001:db8::7", "2001:db8::7"),
        # Every hop trusted: the request started on the proxy host itself.
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_from_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(forwarded_for, expected):
    assert client_ip(PROXY, forwarded_for) == expected


@pytest.mark.parametrize(
    "forwarded_for",
    [
        None,
        "",
        "   ",
        "unknown",
        f"{CLIENT_A}, garbage",
        f"{CLIENT_A},",
        f"{CLIENT_A}:4711",
        f"{SPOOFED}, {CLIENT_A}, not-a-proxy, 127.0.0.1",
    ],
)
def test_a_missing_or_malformed_header_falls_back_to_the_peer(forwarded_for):
    assert client_ip(PROXY, forwarded_for) == PROXY


@pytest.mark.parametrize("forwarded_for", [None, CLIENT_B, f"{CLIENT_B}, {SPOOFED}", "127.0.0.1"])
def test_from_an_untrusted_peer_the_header_is_ignored(forwarded_for):
    assert client_ip(CLIENT_A, forwarded_for) == CLIENT_A


def test_the_trusted_proxies_are_those_of_the_proxy_middleware(settings):
    settings.SECURITY_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip("10.1.2.3", f"{SPOOFED}, {CLIENT_A}, 10.9.9.9") == CLIENT_A
    assert client_ip(PROXY, CLIENT_A) == PROXY, "loopback is no longer trusted"


def test_behind_a_trusted_unix_socket_the_header_is_read(settings):
    # gunicorn on a unix socket leaves REMOTE_ADDR empty; nginx is the only peer that can connect.
    settings.SECURITY_TRUSTED_PROXIES = ["unix"]
    assert client_ip("", f"{SPOOFED}, {CLIENT_A}") == CLIENT_A
    assert client_ip("", "garbage") == ""


def test_an_untrusted_unix_socket_keeps_the_empty_address():
    assert client_ip("", CLIENT_A) == ""


def test_axes_uses_it():
    assert django_settings.AXES_CLIENT_IP_CALLABLE == "security.client_ip.client_ip_address"
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=CLIENT_A)
    assert get_client_ip_address(request) == CLIENT_A


# -------------------------------------------------------------------- lockout through the proxy


@pytest.fixture
def ann(db, fast_passwords):  # noqa: F811
    return make_staff("ann", "admin")


def attempt(forwarded_for=None, password=PASSWORD, remote_addr=PROXY):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return Client().post(LOGIN_URL, login_form("ann", password), **extra)


def fail(times, forwarded_for=None, remote_addr=PROXY):
    for _ in range(times):
        attempt(forwarded_for, password="wrong", remote_addr=remote_addr)


def locked_out(response) -> bool:
    return response.status_code == 429


def recorded_addresses() -> set[str]:
    return set(AccessAttempt.objects.values_list("ip_address", flat=True))


def test_failures_are_recorded_against_the_forwarded_client_not_the_spoofed_hop(ann):
    fail(1, f"{SPOOFED}, {CLIENT_A}")
    assert recorded_addresses() == {CLIENT_A}


def test_clients_behind_the_proxy_are_locked_out_independently(ann):
    fail(5, CLIENT_A)

    assert locked_out(attempt(CLIENT_A))
    assert signed_in(attempt(CLIENT_B)), "another client behind the same proxy"


def test_rotating_the_left_of_the_header_does_not_dodge_the_lockout(ann):
    for n in range(5):
        attempt(f"192.0.2.{n}, {CLIENT_A}", password="wrong")

    assert locked_out(attempt(f"192.0.2.99, {CLIENT_A}"))
    assert recorded_addresses() == {CLIENT_A}


def test_an_untrusted_peer_cannot_dodge_the_lockout_by_rotating_the_header(ann):
    for n in range(5):
        attempt(f"192.0.2.{n}", password="wrong", remote_addr=CLIENT_A)

    assert locked_out(attempt("192.0.2.99", remote_addr=CLIENT_A))
    assert locked_out(attempt(CLIENT_B, remote_addr=CLIENT_A))
    assert recorded_addresses() == {CLIENT_A}


def test_a_malformed_header_counts_against_the_proxy(ann):
    fail(5, "garbage")

    assert recorded_addresses() == {PROXY}
    assert locked_out(attempt("garbage"))
    assert signed_in(attempt(CLIENT_A)), "a well-formed client is keyed apart from the fallback"
