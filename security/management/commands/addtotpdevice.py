"""Enrol a TOTP authenticator for a staff user and print its provisioning URI, once."""

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = (
        "Create a TOTP device for a staff user and print its otpauth:// URI. The URI holds the "
        "device secret and is shown only this once: give it to the user, then clear the screen."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="a label for the device")

    def handle(self, *args: Any, **options: Any) -> None:
        user = self._staff_user(options["username"])
        device = TOTPDevice.objects.create(user=user, name=options["name"], confirmed=True)
        # Deliberately stdout only: the command never logs, so the secret stays out of log files.
        self.stdout.write(f"TOTP device {device.name!r} added for {user.get_username()}.")
        self.stdout.write("Scan or enter this URI in the authenticator app (shown once):")
        self.stdout.write(device.config_url)

    @staticmethod
    def _staff_user(username: str) -> AbstractBaseUser:
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user {username}") from exc
        if not user.is_staff:
            raise CommandError(f"{username} is not a staff user")
        return user
