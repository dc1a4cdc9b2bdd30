"""History at instance, type and system level: entries, paging links, _since and _count."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhirapi.paging import HistoryScope, make_cursor
from tests.factories import OrganizationFactory, PractitionerFactory

from .conftest import FACTORIES, body_for, outcome_issue, send

pytestmark = pytest.mark.django_db

BASE = "http://testserver/fhir"


def links(bundle: dict) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def follow(api, url: str) -> dict:
    response = api.get(relative(url))
    assert response.status_code == 200, response.content
    return response.json()


def walk(api, first_url: str, relation: str = "next") -> list[dict]:
    pages = [follow(api, first_url)]
    while relation in links(pages[-1]):
        pages.append(follow(api, links(pages[-1])[relation]))
        assert len(pages) < 50, "paging does not terminate"
    return pages


def version_trail(bundle: dict) -> list[str]:
    return [e["response"]["etag"] for e in bundle.get("entry", [])]


def test_instance_history_lists_all_versions_newest_first(api, resource_type):
    stored = send(api, "POST", f"/fhir/{resource_type}", body_for(resource_type)).json()
    path = f"/fhir/{resource_type}/{stored['id']}"
    send(api, "PUT", path, stored)
    api.delete(path)
    response = api.get(f"{path}/_history")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    bundle = response.json()
    assert bundle["type"] == "history" and bundle["total"] == 3
    deleted, updated, created = bundle["entry"]
    methods = [e["request"]["method"] for e in (deleted, updated, created)]
    assert methods == ["DELETE", "PUT", "POST"]
    assert "resource" not in deleted
    assert deleted["response"]["status"].startswith("204")
    assert updated["resource"]["meta"]["versionId"] == "2"
    assert updated["response"]["status"].startswith("200")
    assert created["response"]["status"].startswith("201")
    assert created["request"]["url"] == resource_type
    assert updated["request"]["url"] == f"{resource_type}/{stored['id']}"
    assert version_trail(bundle) == ['W/"3"', 'W/"2"', 'W/"1"']
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"{BASE}/{resource_type}/{stored['id']}"
        assert entry["response"]["lastModified"].endswith("Z")


def test_history_bundle_is_valid_fhir(api, stored, resource_type):
    api.delete(f"/fhir/{resource_type}/{stored['id']}")
    bundle = api.get(f"/fhir/{resource_type}/{stored['id']}/_history").json()
    get_fhir_model_class("Bundle").model_validate(bundle)


def test_type_history_only_has_that_type(api):
    OrganizationFactory.create()
    PractitionerFactory.create()
    bundle = api.get("/fhir/Practitioner/_history").json()
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["resourceType"] == "Practitioner"


def test_system_history_has_every_type(api):
    for factory in FACTORIES.values():
        factory.create()
    bundle = api.get("/fhir/_history").json()
    assert bundle["total"] == len(FACTORIES)
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == set(FACTORIES)


def test_instance_history_of_unknown_id_is_404(api):
    response = api.get("/fhir/Organization/nobody/_history")
    assert response.status_code == 404
    outcome_issue(response)


def test_paging_walks_forward_and_back_without_gaps(api):
    for _ in range(7):
        OrganizationFactory.create()
    pages = walk(api, "/fhir/Organization/_history?_count=3")
    assert [len(p["entry"]) for p in pages] == [3, 3, 1]
    ids = [e["fullUrl"] for p in pages for e in p["entry"]]
    assert len(set(ids)) == 7
    assert all(p["total"] == 7 for p in pages)
    assert "previous" not in links(pages[0])

    back = walk(api, links(pages[-1])["self"], relation="previous")
    assert [version_trail(p) + [e["fullUrl"] for e in p["entry"]] for p in reversed(back)] == [
        version_trail(p) + [e["fullUrl"] for e in p["entry"]] for p in pages
    ]


def test_paging_is_stable_when_new_versions_arrive(api):
    for _ in range(4):
        OrganizationFactory.create()
    first = follow(api, "/fhir/Organization/_history?_count=2")
    OrganizationFactory.create()  # lands on top; must not shift the next page
    second = follow(api, links(first)["next"])
    seen = [e["fullUrl"] for e in first["entry"] + second["entry"]]
    assert len(set(seen)) == 4


def test_next_link_carries_opaque_cursor_and_count(api):
    for _ in range(3):
        OrganizationFactory.create()
    bundle = api.get("/fhir/Organization/_history?_count=2").json()
    query = parse_qs(urlsplit(links(bundle)["next"]).query)
    assert query["_count"] == ["2"]
    cursor = query["_cursor"][0]
    assert not cursor.isdigit()
    assert links(bundle)["self"].startswith(f"{BASE}/Organization/_history?")


def test_tampered_cursor_is_400(api):
    response = api.get("/fhir/Organization/_history", {"_cursor": "eyJiIjoxfQ:forged:sig"})
    assert response.status_code == 400
    assert outcome_issue(response)["expression"] == ["_cursor"]


def test_cursor_from_another_history_is_400(api):
    cursor = make_cursor(HistoryScope("Practitioner"), 10)
    response = api.get("/fhir/Organization/_history", {"_cursor": cursor})
    assert response.status_code == 400


def test_since_filters_versions(api):
    old = OrganizationFactory.create()
    cut = api.get(f"/fhir/Organization/{old['id']}").json()["meta"]["lastUpdated"]
    newer = OrganizationFactory.create()
    bundle = api.get("/fhir/Organization/_history", {"_since": cut}).json()
    ids = {e["resource"]["id"] for e in bundle["entry"]}
    assert newer["id"] in ids
    far_future = api.get("/fhir/Organization/_history", {"_since": "2999-01-01T00:00:00Z"}).json()
    assert far_future["total"] == 0 and "entry" not in far_future
    assert "_since=2999-01-01T00%3A00%3A00Z" in links(far_future)["self"]


def test_since_accepts_date_and_offset_forms(api):
    OrganizationFactory.create()
    for since in ["2000-01-01", "2000-01-01T00:00:00+02:00", "2000-01-01T00:00:00.123Z"]:
        assert api.get("/fhir/Organization/_history", {"_since": since}).json()["total"] == 1


@pytest.mark.parametrize("since", ["yesterday", "2024-13-45", "2024-01-01T10:00:00", ""])
def test_bad_since_is_400(api, since):
    response = api.get("/fhir/_history", {"_since": since})
    assert response.status_code == 400
    assert outcome_issue(response)["expression"] == ["_since"]


@pytest.mark.parametrize(
    "since", ["2024-01-01T00:00:00+17:51", "0219-09-28T10:58:49.81-23:54", "2024-01-01T00:00-14:01"]
)
def test_since_offset_beyond_fhir_range_is_400_not_500(api, since):
    """FHIR offsets stop at ±14:00; PostgreSQL refuses beyond ±15:59 (found by the fuzzing run)."""
    OrganizationFactory.create()
    for path in ("/fhir/_history", "/fhir/Organization/_history"):
        response = api.get(path, {"_since": since})
        assert response.status_code == 400
        assert outcome_issue(response)["expression"] == ["_since"]
    assert api.get("/fhir/_history", {"_since": "2000-01-01T00:00:00+14:00"}).status_code == 200


@pytest.mark.parametrize("count", ["-1", "ten", "1.5"])
def test_bad_count_is_400(api, count):
    response = api.get("/fhir/_history", {"_count": count})
    assert response.status_code == 400


def test_huge_count_is_capped(api, settings):
    settings.FHIR_MAX_COUNT = 3
    for _ in range(5):
        OrganizationFactory.create()
    bundle = api.get("/fhir/Organization/_history", {"_count": "100000"}).json()
    assert len(bundle["entry"]) == 3 and bundle["total"] == 5
    assert "_count=3" in links(bundle)["next"]


def test_count_zero_gives_total_only(api):
    OrganizationFactory.create()
    bundle = api.get("/fhir/Organization/_history", {"_count": "0"}).json()
    assert bundle["total"] == 1 and "entry" not in bundle and "next" not in links(bundle)
