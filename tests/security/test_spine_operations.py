"""`$reindex` under the Spine profile: the Ssp-InteractionID must name it like any interaction."""

import pytest

from .jwt_fixtures import *  # noqa: F403  (fixtures)
from .test_spine import PREFIX, call, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def spine(chain):
    chain.SECURITY_SPINE_PROFILE = True
    return chain


@pytest.fixture
def token(jwt_keys):
    return sign(jwt_keys.ec_a, scope="system/*.cruds")


@pytest.fixture(autouse=True)
def _no_thread(monkeypatch):
    from directory import reindex

    start = reindex.start_job
    monkeypatch.setattr(reindex, "start_job", lambda t="", **kw: start(t, background=False))


def test_reindex_named_by_its_interaction_id_passes(spine, client, token):
    response = call(
        client, "post", "/fhir/Organization/$reindex", PREFIX + "Organization.reindex", token
    )
    assert response.status_code == 202, response.content


def test_reindex_named_as_something_else_is_refused(spine, client, token):
    interaction = PREFIX + "Organization.search-type"
    response = call(client, "post", "/fhir/Organization/$reindex", interaction, token)
    assert response.status_code == 400
    assert response.wsgi_request.security.outcome == "spine-headers"
