"""Interaction receipts are keyed by the connection that verified the delivery (see the model).

Receipts written before carry no connection and cannot be attributed to one: they are dropped.
They only guard against redelivery, which the platforms stop within a day.
"""

import django.db.models.deletion
from django.db import migrations, models


def forget_unattributed_receipts(apps, schema_editor):
    apps.get_model("flowgate_channels", "InteractionReceipt").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("flowgate_channels", "0004_identity_proven_through_connection"),
    ]

    operations = [
        migrations.RunPython(forget_unattributed_receipts, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="interactionreceipt",
            name="one_receipt_per_delivery",
        ),
        migrations.RemoveField(
            model_name="interactionreceipt",
            name="kind",
        ),
        migrations.AddField(
            model_name="interactionreceipt",
            name="connection",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="receipts",
                to="flowgate_channels.channelconnection",
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="interactionreceipt",
            name="received_at",
            field=models.DateTimeField(auto_now_add=True, db_index=True),
        ),
        migrations.AddConstraint(
            model_name="interactionreceipt",
            constraint=models.UniqueConstraint(
                fields=("connection", "delivery_key"), name="one_receipt_per_connection_delivery"
            ),
        ),
    ]
