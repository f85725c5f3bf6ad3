from django import template
from django.utils.html import format_html, format_html_join

from crm.audit_display import describe

register = template.Library()


@register.filter
def audit_details(event) -> str:
    """An audit event's details as "label: text" lines in the reader's language."""
    lines = describe(event.details or {}, event.object_type)
    if not lines:
        return ""
    return format_html(
        '<ul class="list-unstyled mb-0" data-testid="audit-details">{}</ul>',
        format_html_join("", '<li><span class="text-secondary">{}:</span> {}</li>', lines),
    )


@register.filter
def audit_object(event) -> str:
    """The audited object as "<model name> <id>" in the reader's language, not a code."""
    from crm.audit_display import model_of

    model = model_of(event.object_type)
    name = str(model._meta.verbose_name) if model is not None else event.object_type
    return f"{name} {event.object_id}".strip()
