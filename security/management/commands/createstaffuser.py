"""Create a web-admin staff user in one of the three roles (security/roles.py)."""

import getpass
import os
from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from security.roles import ROLE_BY_OPTION

# For automation; read from the environment so the password never appears in a process listing.
PASSWORD_ENV = "DJANGO_STAFF_PASSWORD"  # noqa: S105 - the variable's name, not a password


class Command(BaseCommand):
    help = f"Create a staff user in a role; password prompted for or read from ${PASSWORD_ENV}."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=sorted(ROLE_BY_OPTION))
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        username = options["username"]
        if user_model.objects.filter(username=username).exists():
            raise CommandError(f"User {username} already exists")
        password = self._password(user_model(username=username, email=options["email"]))
        group = Group.objects.get(name=ROLE_BY_OPTION[options["role"]])
        with transaction.atomic():
            user = user_model.objects.create_user(
                username, email=options["email"], password=password, is_staff=True
            )
            # Administrators hold every permission through their group, never as superusers.
            user.groups.add(group)
        self.stdout.write(f"Created staff user {username} in group {group.name!r}")

    def _password(self, user: User) -> str:
        password = os.environ.get(PASSWORD_ENV) or self._prompt()
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        return password

    @staticmethod
    def _prompt() -> str:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The passwords do not match")
        if not password:
            raise CommandError("A password is required")
        return password
