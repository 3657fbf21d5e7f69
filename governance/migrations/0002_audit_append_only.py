"""Make the audit table append-only on PostgreSQL: UPDATE, DELETE and TRUNCATE are refused.

The one exception is TRUNCATE by a database superuser that has explicitly set
`flowgate.audit_maintenance = on` in its session (the test suite's flush between tests). A
superuser could drop the trigger anyway, so this grants nothing new.
"""

from django.db import migrations

INSTALL = """
CREATE OR REPLACE FUNCTION flowgate_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_setting('flowgate.audit_maintenance', true) = 'on'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'governance_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_event_append_only_rows
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION flowgate_audit_append_only();
CREATE TRIGGER audit_event_append_only_truncate
    BEFORE TRUNCATE ON governance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION flowgate_audit_append_only();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS audit_event_append_only_rows ON governance_auditevent;
DROP TRIGGER IF EXISTS audit_event_append_only_truncate ON governance_auditevent;
DROP FUNCTION IF EXISTS flowgate_audit_append_only();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNINSTALL, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
