from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Topic-based subscriptions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Storage announces every change inside its transaction; the outbox listens there.
        from directory import events

        from . import outbox

        events.register(outbox.on_change)
