"""iamjit's Sym strategy: Sym runs the approval, iamjit changes IAM.

Sym's own aws_iam strategy adds and removes group members itself, through an
IAM role it assumes. iamjit does that from the escalate and deescalate log
entries Sym writes to its Kinesis stream, so this strategy must not: escalate
and deescalate change nothing, and the strategy's integration holds no AWS
role. A requester's identity is their email, which iamjit maps to an IAM user
(IAMJIT_IDENTITY).
"""

from sym.sdk.strategies import AccessStrategy


class IamjitAccess(AccessStrategy):
    def fetch_remote_identity(self, user):
        return user.email

    def escalate(self, target_id, event):
        # iamjit adds the requester to settings.iam_group when it reads this
        # escalate from the log stream.
        return None

    def deescalate(self, target_id, event):
        # iamjit removes them (and ends their role sessions) on deescalate,
        # and at expiry on its own clock.
        return None
