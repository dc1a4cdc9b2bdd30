"""URLs of the authorization server, included from config/urls.py."""

from django.urls import path

from . import views

oauth_patterns = [
    path("token", views.token, name="oauth-token"),
    path("register", views.register, name="oauth-register"),
    path("jwks", views.jwks, name="oauth-jwks"),
]

# Served at the root and under the FHIR base: SMART and UDAP clients look for them at
# [base]/.well-known/...
well_known_patterns = [
    path("smart-configuration", views.smart_configuration),
    path("udap", views.udap),
]
