"""Reindexing: rebuilding index rows of stored resources under the current definitions."""

import io

import pytest
from django.core.management import CommandError, call_command

from directory.indexing import extract
from directory.models import DateIndex, Resource, StringIndex, TokenIndex
from directory.reindex import reindex
from directory.search import SearchRequest, search
from tests.factories import OrganizationFactory, PractitionerRoleFactory

pytestmark = pytest.mark.django_db


def ids(resource_type: str, query: str) -> set[str]:
    name, _, value = query.partition("=")
    result = search(SearchRequest(resource_type, [(name, value)], strict=True))
    return {e.content["id"] for e in result.entries}


def index_state() -> list[tuple]:
    return sorted(
        (model.__name__, *row)
        for model in (StringIndex, TokenIndex, DateIndex)
        for row in model.objects.values_list("resource_id", "param")
    )


def test_reindex_restores_rows_an_older_version_did_not_write():
    roles = [PractitionerRoleFactory.create(period={"start": f"20{10 + i}"}) for i in range(5)]
    org = OrganizationFactory.create(name="Zeta")
    before = index_state()
    # As if stored by a version without date indexes and with a stale sort key.
    DateIndex.objects.all().delete()
    Resource.objects.filter(logical_id=org["id"]).update(sort_name="")
    assert ids("PractitionerRole", "date=sa2011") == set()
    out = io.StringIO()
    call_command("reindex", "--batch-size", "2", stdout=out)
    assert index_state() == before
    assert ids("PractitionerRole", "date=sa2011") == {r["id"] for r in roles[2:]}
    assert Resource.objects.get(logical_id=org["id"]).sort_name == "zeta"
    assert "PractitionerRole: 5/5" in out.getvalue()
    assert "Reindexed" in out.getvalue()


def test_reindex_one_type_and_unknown_type():
    PractitionerRoleFactory.create(period={"start": "2020"})
    OrganizationFactory.create()
    results = reindex("Organization")
    assert [(p.resource_type, p.done, p.total) for p in results] == [("Organization", 1, 1)]
    with pytest.raises(CommandError):
        call_command("reindex", "--type", "Patient", stdout=io.StringIO())


def test_reindex_matches_fresh_extraction():
    org = OrganizationFactory.create(type=[{"coding": [{"code": "x", "display": "Xylo"}]}])
    TokenIndex.objects.all().delete()
    StringIndex.objects.all().delete()
    reindex()
    row = Resource.objects.get(logical_id=org["id"])
    expected = extract("Organization", org)
    stored = sorted(StringIndex.objects.filter(resource=row).values_list("param", "value", "exact"))
    assert stored == expected.strings
    assert ids("Organization", "type:text=xyl") == {org["id"]}
