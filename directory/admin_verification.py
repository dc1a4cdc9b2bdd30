"""The admin's side of verification: a "verify" action, a "not verified in N days" filter and a
"last verified" column, all read from VerificationRecord rows (directory/verification.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from . import verification
from .errors import FHIRError
from .models import Resource, VerificationRecord

TEMPLATE = "admin/directory/verify_records.html"
# The filter's choices, in days.
NOT_VERIFIED_DAYS = (30, 90, 365)


class NotVerifiedFilter(admin.SimpleListFilter):
    """Records with no verification in the last N days (never verified included)."""

    title = "verification"
    parameter_name = "not_verified_days"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [(str(days), f"Not verified in {days} days") for days in NOT_VERIFIED_DAYS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        days = self.value()
        if days not in {str(d) for d in NOT_VERIFIED_DAYS}:
            return queryset
        since = timezone.now() - timedelta(days=int(days))
        recent = VerificationRecord.objects.filter(resource=OuterRef("pk"), time__gte=since)
        return queryset.filter(~Exists(recent))


class VerifyForm(forms.Form):
    status = forms.ChoiceField(choices=list(verification.STATUSES.items()), initial="complete")
    process = forms.ChoiceField(
        label="How", choices=list(verification.PROCESSES.items()), initial="primary"
    )
    note = forms.CharField(max_length=500, required=False, help_text="e.g. the source consulted")


# The mixin's super() is ResourceAdmin's ModelAdmin: the checker must know it (at run time the
# mixin stays a plain class so it adds no second ModelAdmin base).
if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Resource]
else:
    _AdminBase = object


class VerificationAdminMixin(_AdminBase):
    """Mixed into ResourceAdmin: the action, the filter and the column."""

    actions = ["verify_records"]
    if TYPE_CHECKING:  # ResourceAdmin's

        @property
        def resource_type(self) -> str: ...

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [*super().get_list_filter(request), NotVerifiedFilter]

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return [*super().get_list_display(request), "verified_column"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Resource]:
        last = VerificationRecord.objects.filter(resource=OuterRef("pk")).order_by("-time")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_verified=Subquery(last.values("time")[:1]),
                last_verified_status=Subquery(last.values("status")[:1]),
            )
        )

    @admin.display(description="last verified", ordering="last_verified")
    def verified_column(self, obj: Resource) -> str:
        # Annotations of get_queryset, not fields of the model.
        last_verified = getattr(obj, "last_verified", None)
        if not last_verified:
            return "never"
        return f"{last_verified:%Y-%m-%d} ({getattr(obj, 'last_verified_status', None)})"

    @admin.action(description="Verify selected records", permissions=["change"])
    def verify_records(
        self, request: HttpRequest, queryset: QuerySet[Resource]
    ) -> TemplateResponse | None:
        """First an intermediate page asking status and process; on its submit, record each."""
        form = VerifyForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._verify_page(request, queryset, form)
        done = 0
        for obj in queryset:
            try:
                record = verification.verify(
                    self.resource_type,
                    obj.logical_id,
                    status=form.cleaned_data["status"],
                    process=form.cleaned_data["process"],
                    actor=request.user.get_username(),
                    note=form.cleaned_data["note"],
                )
            except FHIRError as exc:
                refusal = f"{obj}: not verified: {exc.diagnostics}"
                self.message_user(request, refusal, messages.ERROR)
                continue
            self.log_change(request, obj, f"Verified: {record.status} ({record.process}).")
            done += 1
        self.message_user(request, f"{done} record(s) verified.", messages.SUCCESS)
        return None

    def _verify_page(
        self, request: HttpRequest, queryset: QuerySet[Resource], form: VerifyForm
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Verify records",
            "opts": self.opts,
            "records": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, TEMPLATE, context)
