"""Admin of the order of sources (editable) and of merges, candidates and imports (read-only).

Imported by `customers.admin`, which Django's autodiscovery loads."""

from django.contrib import admin

from crm.admin_site import ReadOnlyAdmin

from ..imports.models import ImportJob
from .models import CustomerMerge, DuplicatePair, SourcePriority


@admin.register(SourcePriority)
class SourcePriorityAdmin(admin.ModelAdmin):
    list_display = ["source", "rank"]
    list_editable = ["rank"]
    ordering = ["rank"]


@admin.register(DuplicatePair)
class DuplicatePairAdmin(ReadOnlyAdmin):
    list_display = ["first_id", "second_id", "reason", "confidence", "status", "found_at"]
    list_filter = ["status", "reason"]


@admin.register(CustomerMerge)
class CustomerMergeAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "survivor_id_value", "absorbed_ids", "undone_at"]
    exclude = ["snapshot"]


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "file_name", "status", "processed_rows", "created_by"]
    list_filter = ["kind", "status"]
    exclude = ["file", "claimed_by", "heartbeat_at"]
