from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Topic-based subscriptions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Storage announces every change inside its transaction; the outbox listens there.
        from directory import events

        from . import outbox

        events.register(outbox.on_changes, probe=outbox.probe)
        # The staff roles (security.roles) cover this app's admin page: its permissions exist
        # only after this app's own post_migrate, later than the security app's re-sync.
        from django.db.models.signals import post_migrate

        from security.roles import sync_groups_after_migrate

        post_migrate.connect(sync_groups_after_migrate, sender=self)
