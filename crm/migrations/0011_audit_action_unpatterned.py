"""The audit action's `varchar_pattern_ops` twin goes: audit rows are filtered by equal action
(the log's filter, the exports), never by a case-sensitive prefix, and each audited import row
paid for the extra index entry (issue 17, bench/README.md session 6). The plain btree stays."""

from django.db import migrations

DROP = "DROP INDEX IF EXISTS crm_auditevent_action_aefa6da1_like;"
CREATE = (
    "CREATE INDEX IF NOT EXISTS crm_auditevent_action_aefa6da1_like"
    " ON crm_auditevent (action varchar_pattern_ops);"
)


class Migration(migrations.Migration):
    dependencies = [("crm", "0010_user_api_tokens")]

    operations = [migrations.RunSQL(DROP, CREATE)]
