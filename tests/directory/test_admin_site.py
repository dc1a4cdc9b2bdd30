"""The admin names the directory, and its "View site" opens a page that answers (the admin's own
listener serves /admin/ only, so the link stays inside it)."""

import re

import pytest
from django.urls import reverse

from directory.admin_site import SITE_HEADER, SITE_TITLE

pytestmark = pytest.mark.django_db


def test_every_admin_page_names_the_directory(admin_client):
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert SITE_TITLE in re.search(r"<title>(.*?)</title>", body).group(1)
    assert SITE_HEADER in body
    assert "Django administration" not in body


def test_the_index_spells_api_and_names_the_sign_in_apps(admin_client):
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert ">API clients</a>" in body
    assert ">API keys</a>" in body
    assert "Api client" not in body and "Api key" not in body
    assert "Otp_Totp" not in body
    assert "Two-factor devices" in body and "Sign-in lockouts" in body


def test_view_site_opens_a_page_that_answers(admin_client, client):
    index = admin_client.get(reverse("admin:index")).content.decode()
    link = re.search(r'<a href="([^"]+)">View site</a>', index).group(1)
    assert link == reverse("directory-overview")
    page = admin_client.get(link)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    body = page.content.decode()
    assert "FHIR R4 (4.0.1)" in body
    organization = reverse("admin:directory_organizationrecord_changelist")
    assert f'<a href="{organization}">Organization</a>' in body
    assert "davinci-pdex-plan-net/StructureDefinition/plannet-Organization" in body
    # Outside the admin's sign-in, the page is not shown: the login page is.
    anonymous = client.get(link)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
