"""Each proxy format's header parser, fed hand-made header strings."""

import base64
from urllib.parse import quote

import pytest

from security.proxyheaders import (
    FORMATS,
    MAX_HEADER_CHARS,
    MalformedCertHeader,
    parse,
    parse_aws_alb,
    parse_envoy,
    parse_escaped_pem,
    parse_traefik,
)

from .pki import encode_cert_header


def pem(issued) -> str:
    return issued.pem


def b64der(issued) -> str:
    return base64.b64encode(issued.der).decode("ascii")


# --- nginx / ingress-nginx ----------------------------------------------------------------------


def test_nginx_escaped_pem(pki):
    presented = parse_escaped_pem(quote(pem(pki.valid), safe=""))
    assert presented.leaf == pki.valid.cert
    assert presented.chain == []


def test_nginx_escaped_pem_with_chain(pki):
    value = quote(pem(pki.valid) + pem(pki.a.intermediate), safe="")
    presented = parse_escaped_pem(value)
    assert presented.leaf == pki.valid.cert
    assert presented.chain == [pki.a.intermediate.cert]


def test_nginx_keeps_literal_plus_as_base64(pki):
    # nginx escapes less than quote(): "+" and "/" may arrive raw and must not become spaces.
    value = quote(pem(pki.valid), safe="+/=")
    assert parse_escaped_pem(value).leaf == pki.valid.cert


def test_nginx_legacy_tab_indented_pem(pki):
    lines = pem(pki.valid).strip().split("\n")
    legacy = lines[0] + "".join("\n\t" + line for line in lines[1:])
    assert parse_escaped_pem(legacy).leaf == pki.valid.cert


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        quote("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"),
        "-----BEGIN CERTIFICATE-----",
        "%E2%82%AC-----BEGIN CERTIFICATE-----",
    ],
)
def test_nginx_malformed(value):
    with pytest.raises(MalformedCertHeader):
        parse(FORMATS["nginx"], value)


def test_too_many_certificates(pki):
    value = quote(pem(pki.valid) * 9, safe="")
    with pytest.raises(MalformedCertHeader):
        parse_escaped_pem(value)


def test_oversized_header_refused_before_parsing():
    with pytest.raises(MalformedCertHeader):
        parse(FORMATS["nginx"], "A" * (MAX_HEADER_CHARS + 1))


# --- Envoy XFCC ---------------------------------------------------------------------------------


def xfcc(issued, chain=(), by="spiffe://proxy", subject='"CN=x,O=y"') -> str:
    value = f'By={by};Hash=abc;Cert="{quote(pem(issued), safe="")}"'
    if chain:
        full = pem(issued) + "".join(pem(c) for c in chain)
        value += f';Chain="{quote(full, safe="")}"'
    return value + f";Subject={subject};URI=spiffe://client;DNS=a.example.org;DNS=b.example.org"


def test_envoy_single_element(pki):
    presented = parse_envoy(xfcc(pki.valid))
    assert presented.leaf == pki.valid.cert
    assert presented.chain == []


def test_envoy_chain_includes_leaf_which_is_dropped(pki):
    presented = parse_envoy(xfcc(pki.valid, chain=[pki.a.intermediate]))
    assert presented.leaf == pki.valid.cert
    assert presented.chain == [pki.a.intermediate.cert]


def test_envoy_multi_hop_uses_last_element(pki):
    # The first element was added by a hop further out (or forged by the client); ours is last.
    value = xfcc(pki.unknown_leaf) + "," + xfcc(pki.valid)
    assert parse_envoy(value).leaf == pki.valid.cert


def test_envoy_quoted_commas_and_escaped_quotes_do_not_split(pki):
    subject = r'"CN=a\"b,c;d=e,O=f"'
    value = xfcc(pki.unknown_leaf) + "," + xfcc(pki.valid, subject=subject)
    assert parse_envoy(value).leaf == pki.valid.cert


def test_envoy_unquoted_cert_value(pki):
    value = f"Hash=abc;Cert={quote(pem(pki.valid), safe='')}"
    assert parse_envoy(value).leaf == pki.valid.cert


def test_envoy_helper_format_parses(pki):
    value = encode_cert_header(pki.valid, "envoy", [pki.a.intermediate])
    presented = parse(FORMATS["envoy"], value)
    assert (presented.leaf, presented.chain) == (pki.valid.cert, [pki.a.intermediate.cert])


@pytest.mark.parametrize(
    "value",
    [
        "Hash=abc;Subject=x",  # no Cert
        'Hash=abc;Cert="unterminated',
        'Hash=abc;Cert="a"b"',
        "Hash=abc;;Cert=x",
        "=abc",
        "Hash=abc,",
        'Cert="x";Cert="y"',
    ],
)
def test_envoy_malformed(value):
    with pytest.raises(MalformedCertHeader):
        parse(FORMATS["envoy"], value)


def test_envoy_last_element_without_cert_is_malformed_even_if_earlier_has_one(pki):
    with pytest.raises(MalformedCertHeader):
        parse_envoy(xfcc(pki.valid) + ",Hash=abc;URI=spiffe://x")


# --- Traefik ------------------------------------------------------------------------------------


def test_traefik_single(pki):
    assert parse_traefik(quote(b64der(pki.valid), safe="")).leaf == pki.valid.cert


def test_traefik_chain_comma_separated(pki):
    value = quote(b64der(pki.valid), safe="") + "," + quote(b64der(pki.a.intermediate), safe="")
    presented = parse_traefik(value)
    assert presented.chain == [pki.a.intermediate.cert]


def test_traefik_escaped_separator(pki):
    value = quote(b64der(pki.valid) + "," + b64der(pki.a.intermediate), safe="")
    assert parse_traefik(value).leaf == pki.valid.cert


@pytest.mark.parametrize("value", ["", "%%%", "bm90IGEgY2VydA==", "abc,,def", "not base64!"])
def test_traefik_malformed(value):
    with pytest.raises(MalformedCertHeader):
        parse(FORMATS["traefik"], value or ",")


def test_traefik_pem_with_armour_is_malformed(pki):
    with pytest.raises(MalformedCertHeader):
        parse(FORMATS["traefik"], quote(pem(pki.valid), safe=""))


# --- AWS ALB ------------------------------------------------------------------------------------


def test_aws_alb_url_encoded_pem_with_safe_chars(pki):
    value = quote(pem(pki.valid), safe="+=/")
    assert "+" in value or "/" in value  # the case unquote_plus would corrupt
    assert parse_aws_alb(value).leaf == pki.valid.cert


def test_aws_alb_chain(pki):
    value = quote(pem(pki.valid) + pem(pki.a.intermediate), safe="+=/")
    assert parse_aws_alb(value).chain == [pki.a.intermediate.cert]


def test_aws_alb_der_is_malformed(pki):
    with pytest.raises(MalformedCertHeader):
        parse(FORMATS["aws-alb"], b64der(pki.valid))


def test_every_format_round_trips_the_shared_helper(pki):
    for name, fmt in FORMATS.items():
        value = encode_cert_header(pki.valid, name, [pki.a.intermediate])
        presented = parse(fmt, value)
        assert presented.leaf == pki.valid.cert, name
        assert presented.chain == [pki.a.intermediate.cert], name
