from django.apps import AppConfig


class FhirApiConfig(AppConfig):
    name = "fhirapi"
    verbose_name = "FHIR API"

    def ready(self) -> None:
        # The subscription worker decides who may be notified with the API's decision point.
        from subscriptions import policy

        from . import authorization

        policy.register(authorization.notification_refusal)
