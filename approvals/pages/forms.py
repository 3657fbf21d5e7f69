"""The decision form of the gate page: one submit button per decision the gate offers."""

from __future__ import annotations

from django import forms

# Button labels; the order of the gate's `decisions` is kept.
DECISION_LABELS = {
    "approve": "Approve",
    "rework": "Send back for rework",
    "cancel": "Cancel the run",
}
MAX_REASON_CHARS = 2000
REASON_REQUIRED = "A reason is required to send work back for rework."
CONFIRM_CANCEL = (
    "Cancelling ends the run and cannot be undone: tick the confirmation box, "
    "then press Cancel the run again."
)


class DecisionForm(forms.Form):
    """`approval_request_id` names the opening the reader saw (the service refuses it if the
    gate has moved on); `decision` comes from the clicked button and must be one the gate
    offers; a rework needs a reason (SPEC §9), checked here so the page refuses it before the
    service is asked. Cancelling cannot be undone, so it also needs `confirm_cancel` ticked:
    the first press without it comes back asking for it (server-side, so it needs no script)."""

    approval_request_id = forms.CharField(widget=forms.HiddenInput, max_length=64)
    decision = forms.ChoiceField(choices=())
    reason = forms.CharField(
        required=False,
        max_length=MAX_REASON_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": MAX_REASON_CHARS}),
        help_text="Required when sending work back for rework.",
    )
    confirm_cancel = forms.BooleanField(
        required=False, label="I understand that cancelling ends the run and cannot be undone."
    )

    def __init__(self, *args, decisions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["decision"].choices = [(d, DECISION_LABELS.get(d, d)) for d in decisions]
        self.fields["decision"].error_messages["invalid_choice"] = (
            "This gate does not offer that decision."
        )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == "rework" and not cleaned.get("reason"):
            self.add_error("reason", REASON_REQUIRED)
        if cleaned.get("decision") == "cancel" and not cleaned.get("confirm_cancel"):
            self.add_error("confirm_cancel", CONFIRM_CANCEL)
        return cleaned
