"""Who approves requests of iamjit's flow (module sym_flow).

vars (strings, from Terraform): request_channel, approvers (comma-separated
emails; empty: anyone in the channel), allow_self_approval ("true"/"false").
"""

from sym.sdk.annotations import hook, reducer
from sym.sdk.integrations import slack
from sym.sdk.templates import ApprovalTemplate


@reducer
def get_approvers(evt):
    fvars = evt.flow.vars
    return slack.channel(fvars["request_channel"], allow_self=fvars.get("allow_self_approval") == "true")


@hook
def on_approve(evt):
    approvers = [a.strip().lower() for a in evt.flow.vars.get("approvers", "").split(",") if a.strip()]
    if approvers and evt.user.email.lower() not in approvers:
        return ApprovalTemplate.ignore(message="Only this flow's approvers may approve.")
