from django.db import migrations, models


class Migration(migrations.Migration):
    """`settles = NOT (decision = 'guard_denied')`: a guard denial is a record only and never
    takes the gate's one settling slot; every real decision settles it."""

    dependencies = [
        ("approvals", "0002_initial"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="gatedecision",
            constraint=models.CheckConstraint(
                condition=models.Q(("decision", "guard_denied"), ("settles", False))
                | (~models.Q(("decision", "guard_denied")) & models.Q(("settles", True))),
                name="guard_denied_never_settles",
            ),
        ),
    ]
