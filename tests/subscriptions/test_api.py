"""The Subscription resource on the API: validation, endpoint rules, ownership, discovery."""

from __future__ import annotations

import pytest

from security.models import ApiClient
from subscriptions import channels, topics
from subscriptions.models import Channel
from tests.fhirapi.conftest import send

from .conftest import subscription_body, topic_url

pytestmark = pytest.mark.django_db

HOOK = "http://127.0.0.1:9/hook"


def issue(response) -> dict:
    return response.json()["issue"][0]


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        ({"criteria": "http://example.org/SubscriptionTopic/unknown"}, "Subscription.criteria"),
        ({"criteria": "Practitioner?name=x"}, "Subscription.criteria"),
        ({"channel": {"type": "email", "endpoint": "mailto:a@b.c"}}, "Subscription.channel.type"),
        (
            {"channel": {"type": "rest-hook", "endpoint": "ftp://x"}},
            "Subscription.channel.endpoint",
        ),
        (
            {"channel": {"type": "rest-hook", "endpoint": HOOK, "header": ["Host: evil"]}},
            "Subscription.channel.header",
        ),
        (
            {"channel": {"type": "rest-hook", "endpoint": HOOK, "payload": "application/xml"}},
            "Subscription.channel.payload",
        ),
        (
            {
                "_criteria": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/uv/subscriptions-backport/"
                            "StructureDefinition/backport-filter-criteria",
                            "valueString": "Organization?name=x",
                        }
                    ]
                }
            },
            "Subscription.criteria",
        ),
        (
            {
                "_criteria": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/uv/subscriptions-backport/"
                            "StructureDefinition/backport-filter-criteria",
                            "valueString": "Practitioner?bogus=1",
                        }
                    ]
                }
            },
            "Subscription.criteria",
        ),
    ],
)
def test_refused_with_422_naming_the_element(api, change, expression):
    response = send(api, "POST", "/fhir/Subscription", subscription_body(HOOK, **change))

    assert response.status_code == 422, response.content
    assert issue(response)["expression"] == [expression]
    assert not Channel.objects.exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://192.168.1.1/hook",
        "https://[fd00::1]/hook",
        "https://100.64.0.1/hook",
        "https://user:pw@127.0.0.1/hook",
    ],
)
def test_private_endpoints_are_refused(api, endpoint):
    response = send(api, "POST", "/fhir/Subscription", subscription_body(endpoint))

    assert response.status_code == 422
    assert issue(response)["expression"] == ["Subscription.channel.endpoint"]


def test_loopback_and_http_only_in_test_mode(settings):
    settings.SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK = False
    for url in ("http://127.0.0.1/hook", "https://127.0.0.1/hook", "http://[::1]/hook"):
        with pytest.raises(channels.EndpointRefused):
            channels.check_endpoint(url)
    settings.SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK = True
    settings.ENVIRONMENT = "prod"
    with pytest.raises(channels.EndpointRefused):
        channels.check_endpoint("http://127.0.0.1/hook")


def test_allow_list_admits_an_internal_subscriber(settings):
    settings.SUBSCRIPTIONS_ALLOW_HTTP_LOOPBACK = False
    settings.SUBSCRIPTIONS_ENDPOINT_ALLOWLIST = ["10.20.0.0/16"]
    target = channels.check_endpoint("https://10.20.3.4:8443/notify?x=1")
    assert (target.address, target.port, target.path) == ("10.20.3.4", 8443, "/notify?x=1")
    with pytest.raises(channels.EndpointRefused):
        channels.check_endpoint("https://10.21.0.1/notify")


def test_status_is_the_servers_to_set(api):
    response = send(api, "POST", "/fhir/Subscription", subscription_body(HOOK, status="active"))
    assert response.json()["status"] == "requested"
    off = send(api, "POST", "/fhir/Subscription", subscription_body(HOOK, status="off"))
    assert off.json()["status"] == "off"


def test_another_client_sees_nothing(api, other_credentials, subscriber):
    from rest_framework.test import APIClient

    created = send(api, "POST", "/fhir/Subscription", subscription_body(subscriber.url)).json()
    other = APIClient()
    other.credentials(HTTP_ACCEPT="application/fhir+json", **other_credentials.meta)
    path = f"/fhir/Subscription/{created['id']}"

    assert send(other, "GET", path).status_code == 404
    assert send(other, "GET", f"{path}/$status").status_code == 404
    assert send(other, "GET", f"{path}/_history").status_code == 404
    assert send(other, "DELETE", path).status_code == 404
    assert send(other, "PUT", path, {**created, "reason": "hijack"}).status_code == 404
    assert send(other, "GET", "/fhir/Subscription").json().get("total", 0) == 0
    mine = send(api, "GET", "/fhir/Subscription?status=requested").json()
    assert [e["resource"]["id"] for e in mine["entry"]] == [created["id"]]
    assert send(api, "GET", "/fhir/_history").json()["total"] == 0


def test_type_wide_interactions_are_refused(api):
    send(api, "POST", "/fhir/Subscription", subscription_body(HOOK))
    assert send(api, "GET", "/fhir/Subscription/_history").status_code == 403
    assert send(api, "DELETE", "/fhir/Subscription?status=requested").status_code == 403
    conditional = send(
        api,
        "POST",
        "/fhir/Subscription",
        subscription_body(HOOK),
        HTTP_IF_NONE_EXIST="status=requested",
    )
    assert conditional.status_code == 403


def test_not_in_a_batch_or_transaction(api):
    for bundle_type in ("batch", "transaction"):
        bundle = {
            "resourceType": "Bundle",
            "type": bundle_type,
            "entry": [
                {
                    "resource": subscription_body(HOOK),
                    "request": {"method": "POST", "url": "Subscription"},
                }
            ],
        }
        response = send(api, "POST", "/fhir", bundle)
        assert "Subscription/" not in response.content.decode()
    assert not Channel.objects.exists()


def test_a_client_holds_a_bounded_number(api, settings):
    settings.SUBSCRIPTIONS_PER_CLIENT = 2
    for _ in range(2):
        assert send(api, "POST", "/fhir/Subscription", subscription_body(HOOK)).status_code == 201
    assert send(api, "POST", "/fhir/Subscription", subscription_body(HOOK)).status_code == 409


def test_topics_are_advertised(api):
    statement = send(api, "GET", "/fhir/metadata").json()
    [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    advertised = [e["valueCanonical"] for e in entry["extension"]]
    assert advertised == list(topics.topics())
    assert topic_url("Practitioner") in advertised
    assert {op["name"] for op in entry["operation"]} == {"status", "events", "topic-list"}
    assert {p["name"] for p in entry["searchParam"]} >= {"status", "url", "criteria", "type"}

    listed = send(api, "GET", "/fhir/Subscription/$topic-list").json()
    assert [p["valueCanonical"] for p in listed["parameter"]] == advertised


def test_a_suspended_owner_cannot_write(api, credentials):
    ApiClient.objects.filter(name=credentials.client_name).update(status=ApiClient.SUSPENDED)
    assert send(api, "POST", "/fhir/Subscription", subscription_body(HOOK)).status_code == 403


def test_a_subscription_without_an_owner_is_nobodys(api):
    from directory import bulkload

    bulkload.bulk_load([("Subscription", {**subscription_body(HOOK), "id": "loaded"})])
    assert send(api, "GET", "/fhir/Subscription/loaded").status_code == 404
    taken = send(
        api, "PUT", "/fhir/Subscription/loaded", {**subscription_body(HOOK), "id": "loaded"}
    )
    assert taken.status_code == 404
    fresh = send(api, "PUT", "/fhir/Subscription/mine", {**subscription_body(HOOK), "id": "mine"})
    assert fresh.status_code == 201
    assert send(api, "GET", "/fhir/Subscription/mine").status_code == 200
