"""moto_server with DynamoDB made atomic, isolated and flat-cost.

This is the one place that says what iamjit changes in moto and why. Run it
exactly like moto_server (same flags):

    python3 internal/motoserver/moto_iamjit.py -H 127.0.0.1 -p 5055

or with --check only to verify that the pinned moto is installed.

moto 5.2.1 (the version this was checked against) gets two things wrong that
iamjit's correctness rests on:

1. No isolation. moto's DynamoDB backend takes no lock, while its server
   answers requests on many threads: a TransactWriteItems runs its condition
   checks and writes interleaved with other requests, so two transactions
   that each check "the item is absent" can both succeed. Real DynamoDB
   serialises transactions on the items they touch. Fix: every DynamoDB
   request runs under one lock (DynamoHandler._dispatch), so each operation
   is atomic and isolated from every other.

2. Rollback of the whole table. When a transaction fails a condition, moto
   restores a deep copy of every table it names, taken when the transaction
   began: under concurrency that undoes what other requests wrote meanwhile,
   and the copy makes every transaction cost O(table) (3 s at 20,000 items).
   Fix: the transaction snapshots only the items it touches and, when it is
   cancelled, restores only those; the whole-table copy is skipped.

3. No trust across accounts. With IAM access control on, moto checks an
   AssumeRole against the role's trust policy (principal, sts:ExternalId)
   only when it finds the role in the caller's own account: a role of
   another account is "not found" there, so any principal could assume it
   with any external id, or none. iamjit's member accounts are reached by
   exactly that call. Fix: the role is looked up in the account its ARN
   names (IAMRequestBase._is_assuming_role_operation and
   _check_role_trust_relationship); the evaluation is moto's own.

4. No RedriveAllowPolicy. moto accepts SetQueueAttributes with
   RedriveAllowPolicy but never returns it from GetQueueAttributes, so
   Terraform's aws_sqs_queue_redrive_allow_policy waits for it to appear
   until it times out (infra/e2e). And any SetQueueAttributes that does not
   name Policy drops the queue's Policy (moto sets it from the request,
   absent = none), where SQS changes only the attributes named. Fix:
   RedriveAllowPolicy is a queue attribute (stored, returned while not
   empty, "" removes it), and Policy changes only when the request names it.

5. Attributes Terraform writes and moto drops, so that a second
   `terraform plan` of infra/environments/prod after an apply is not empty
   (infra/e2e): RedrivePolicy is returned as json.dumps with spaces where
   SQS returns compact JSON (Terraform shows a whitespace change); a
   Kinesis CreateStream's Tags are ignored; an ECS service's
   enableECSManagedTags and availabilityZoneRebalancing are never stored.
   Fix: compact JSON; Tags applied as AddTagsToStream would; the two
   service fields stored from CreateService/UpdateService and returned.

6. Access control without resources. With IAM access control on, moto
   checks most services' calls against the resource "*" and the API
   operation's own name: a policy that names its table, bus, parameter or
   secret (as every policy infra/ writes does) never matches, and
   operations IAM authorizes under other actions are refused (there is no
   dynamodb:TransactWriteItems action: each item is authorized as
   PutItem/UpdateItem/DeleteItem/ConditionCheckItem on its table; an SQS
   *Batch call is authorized as the single action). Fix: for DynamoDB
   (TableName, IndexName, each item of TransactWriteItems and
   TransactGetItems), EventBridge PutEvents (each entry's bus), SSM
   GetParameter(s) (each parameter) and Secrets Manager GetSecretValue (a
   secret named by ARN), the call is checked once per (action, resource)
   as AWS authorizes it, each check moto's own evaluation; SQS batch calls
   are checked as their single action. IAM calls are checked against the
   group, role or user they name (AddUserToGroup: its group) or the policy
   ARN, as IAM authorizes them, where moto checks only a RoleName's role
   and "*" otherwise. And moto recomputes the signature of
   a bodiless GET (REST APIs: EventBridge Pipes' DescribePipe, ListPipes)
   over its parsed parameters, as if they were the body, so a correctly
   signed request fails with SignatureDoesNotMatch; the signature is
   recomputed over the empty body the request had.

   EventBridge Scheduler's group and schedule calls are checked against
   the schedule group and the schedule they name (moto checks "*").

7. SSM GetParameters by ARN. SSM accepts a parameter's ARN wherever it
   takes its name, and ECS resolves a task definition's secrets by the ARN
   in valueFrom; moto looks ARNs up as names and reports them invalid.
   Fix: an ARN names the parameter it points at.

8. No TestEventPattern. moto answers EventBridge's TestEventPattern with
   an empty body (Result false for every event). Fix: the pattern is
   matched against the event by moto's own matcher, the one its rules
   deliver with (EventPattern.matches_event).

9. Role sessions are not their role. moto matches a trust policy's AWS
   principal against the caller's ARN as a string, so a trust naming a role
   (arn:aws:iam::A:role/path/NAME) never admits that role's sessions
   (arn:aws:sts::A:assumed-role/NAME/SESSION), which is exactly how the
   task role reaches the connector and the connector the IAM modifier; nor
   does a trust naming an account (arn:aws:iam::A:root, or A) admit its
   principals. Fix: as AWS matches them (a session by its role's account
   and name; an account by its id); a Service principal still admits no
   one (moto presents none), where plain moto failed with an error. And a
   condition on sts:ExternalId admits a request without one (moto skips a
   key the request lacks); on AWS StringEquals on an absent key fails, so
   a connector's trust refuses an AssumeRole without the external id.
   And IAM's and STS's denials carry the error in moto's
   <ErrorResponse><Errors><Error> shape, which the Go SDK does not read
   (it reports UnknownError); the query protocol's shape is
   <ErrorResponse><Error>, so iamjit sees AccessDenied as on AWS.

10. A parser built per event. Each event a rule delivers to a target goes
   through moto's input transformer, which compiles every JSONPath of the
   default input map (eight of them) with jsonpath_ng anew: about 0.12 s of
   CPU per delivered event, on every result iamjit publishes (the dev
   stack's results rule feeds an SQS queue) and more than all the rest of
   a test's calls in the suites that publish hundreds. Fix: the compiled
   expressions are cached (jsonpath_ng.ext.parse memoised); what is
   delivered is unchanged.

11. Full collections of everything. moto keeps every item, message and
   schedule as Python objects, and the interpreter's full (generation 2)
   garbage collection scans all of them, holding the GIL: 120-300 ms with
   a few thousand grants, longer as the store grows, during which every
   request of every service waits. In the bench's expiry run the worst
   removals were exactly those due during one (iamjit's timers had fired
   on time). Fix: after each full collection, what survived it is frozen
   (gc.freeze), so the next one scans only what is newer; the pauses drop
   to tens of milliseconds. Frozen objects are still freed by reference
   counting; only a cycle among them is never collected, and moto's
   resident size over the bench's expiry run was the same either way
   (205 MB).

Nothing else of moto's behaviour changes: the transaction itself (condition
checks, ReturnValuesOnConditionCheckFailure, cancellation reasons, errors)
and the trust evaluation are moto's own code.
"""

import copy
import json
import sys
import threading

PINNED = "5.2.1"


def main():
    try:
        import moto
    except ImportError:
        sys.exit(
            'moto_iamjit: moto is not installed for %s: pip install "moto[server]==%s"'
            % (sys.executable, PINNED)
        )
    if moto.__version__ != PINNED:
        sys.exit(
            "moto_iamjit: moto %s is installed but this launcher was checked against moto %s; "
            'install it with: pip install "moto[server]==%s"'
            % (moto.__version__, PINNED, PINNED)
        )
    if sys.argv[1:] == ["--check"]:
        print("moto %s: ok" % moto.__version__)
        return
    patch()
    from moto.server import main as server_main

    server_main(sys.argv[1:])


def patch():
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    # 1. One lock for every DynamoDB request. The URL map captured
    # DynamoHandler.dispatch at import, but dispatch looks _dispatch up on a
    # fresh instance per request, so wrapping _dispatch covers every call.
    lock = threading.RLock()
    dispatch = DynamoHandler._dispatch

    def locked_dispatch(self, *args, **kwargs):
        with lock:
            return dispatch(self, *args, **kwargs)

    DynamoHandler._dispatch = locked_dispatch

    # 2. transact_write_items deep-copies each table it names so that it can
    # put the copy back on failure. Hand it the live table instead (the
    # "restore" then assigns a table to itself) and restore the touched
    # items ourselves. models.copy is used only for that and for one item
    # copy in update_item, which keeps the real deepcopy.
    class _TableCopyIsIdentity:
        @staticmethod
        def deepcopy(x, *args, **kwargs):
            if isinstance(x, Table):
                return x
            return copy.deepcopy(x, *args, **kwargs)

    models.copy = _TableCopyIsIdentity
    transact = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        saved = _snapshot(self, transact_items)
        try:
            return transact(self, transact_items)
        except Exception:
            _restore(saved)
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items

    _patch_cross_account_trust()
    _patch_sqs_attributes()
    _patch_kinesis_create_tags()
    _patch_ecs_service_fields()
    _patch_resource_level_auth()
    _patch_ssm_parameter_arns()
    _patch_test_event_pattern()
    _patch_jsonpath_cache()
    _patch_full_collections()


def _patch_full_collections():
    import gc

    def freeze_survivors(phase, info):
        # Called by the collector when a collection ends: freezing then
        # takes exactly what this full collection kept.
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    gc.callbacks.append(freeze_survivors)


def _patch_jsonpath_cache():
    import functools

    import jsonpath_ng.ext

    # moto.events.utils imports parse inside the function, at each call,
    # so replacing the module's attribute covers every delivery. A compiled
    # expression is not changed by find: sharing one is safe.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)


def _patch_test_event_pattern():
    from moto.events.models import EventPattern
    from moto.events.responses import EventsHandler

    def test_event_pattern(self):
        pattern = EventPattern.load(self._get_param("EventPattern"))
        event = json.loads(self._get_param("Event"))
        return json.dumps({"Result": pattern.matches_event(event)}), self.response_headers

    EventsHandler.test_event_pattern = test_event_pattern


def _patch_ssm_parameter_arns():
    from moto.ssm.models import SimpleSystemManagerBackend

    get_parameters = SimpleSystemManagerBackend.get_parameters

    def name_of(ref):
        if not ref.startswith("arn:") or ":parameter/" not in ref:
            return ref
        name = ref.split(":parameter/", 1)[1]
        return "/" + name if "/" in name else name

    def by_arn(self, names):
        asked = {name_of(n): n for n in names}
        found = get_parameters(self, list(asked))
        return {asked.get(name, name): param for name, param in found.items()}

    SimpleSystemManagerBackend.get_parameters = by_arn


def _patch_resource_level_auth():
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse
    from moto.iam.access_control import IAMRequest

    original = BaseResponse._authenticate_and_authorize_normal_action

    def as_action(self, action, check):
        self._get_action = lambda: action  # shadows the method for this check
        try:
            check()
        finally:
            del self._get_action

    def authorize(self, resource="*"):
        checks = _auth_checks(self, resource)
        if not checks:
            return original(self, resource)
        enforcing = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
        (action, first), rest = checks[0], checks[1:]
        as_action(self, action, lambda: original(self, first))  # counts the request while auth is off
        if enforcing:
            for action, res in rest:
                as_action(self, action, lambda res=res: self._authenticate_and_authorize_action(IAMRequest, res))

    BaseResponse._authenticate_and_authorize_normal_action = authorize

    from moto.iam.access_control import IAMRequestBase

    create_request = IAMRequestBase._create_aws_request

    def create_aws_request(self):
        request = create_request(self)
        if not self._body and self._method in ("GET", "HEAD", "DELETE"):
            request.data = b""
        return request

    IAMRequestBase._create_aws_request = create_aws_request


_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_DYNAMODB_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


def _auth_checks(self, resource):
    """[(action, resource ARN)] the request is authorized as, or None for
    moto's own single check."""
    from moto.utilities.utils import get_partition

    service = getattr(self, "service_name", None)
    try:
        action = self._get_action()
        params = getattr(self, "params", None) or {}
        if not params and getattr(self, "body", None):
            params = json.loads(self.body) if isinstance(self.body, (str, bytes)) else self.body
        region, account = self.region, self.current_account
    except Exception:
        return None
    partition = get_partition(region)

    def table(name, index=None):
        arn = name if name.startswith("arn:") else "arn:%s:dynamodb:%s:%s:table/%s" % (partition, region, account, name)
        return arn + ("/index/%s" % index if index else "")

    if service == "dynamodb":
        if action == "TransactWriteItems":
            return [
                (_DYNAMODB_ITEM_ACTIONS[op], table(body["TableName"]))
                for item in params.get("TransactItems") or []
                for op, body in item.items()
                if op in _DYNAMODB_ITEM_ACTIONS
            ] or None
        if action == "TransactGetItems":
            return [("GetItem", table(item["Get"]["TableName"])) for item in params.get("TransactItems") or [] if "Get" in item] or None
        if params.get("TableName"):
            return [(action, table(params["TableName"], params.get("IndexName")))]
        return None
    if service == "iam":
        backend = self.backend
        for param, lookup, kind in (("GroupName", backend.get_group, "group"), ("RoleName", backend.get_role, "role"), ("UserName", backend.get_user, "user")):
            name = self._get_param(param)
            if name:
                try:
                    return [(action, lookup(name).arn)]
                except Exception:  # none: its ARN without a path, as IAM authorizes a name it does not know
                    return [(action, "arn:%s:iam::%s:%s/%s" % (partition, account, kind, name))]
        if self._get_param("PolicyArn"):
            return [(action, self._get_param("PolicyArn"))]
        return None
    if service == "sqs" and action in _SQS_BATCH:
        return [(_SQS_BATCH[action], resource)]
    if service == "events" and action == "PutEvents":
        buses = []
        for entry in params.get("Entries") or []:
            bus = entry.get("EventBusName") or "default"
            arn = bus if bus.startswith("arn:") else "arn:%s:events:%s:%s:event-bus/%s" % (partition, region, account, bus)
            if arn not in buses:
                buses.append(arn)
        return [(action, arn) for arn in buses] or None
    if service == "ssm" and action in ("GetParameter", "GetParameters"):
        names = params.get("Names") or ([params["Name"]] if params.get("Name") else [])
        return [
            (action, n if n.startswith("arn:") else "arn:%s:ssm:%s:%s:parameter/%s" % (partition, region, account, n.lstrip("/")))
            for n in names
        ] or None
    if service == "secretsmanager" and action == "GetSecretValue":
        secret = params.get("SecretId") or ""
        return [(action, secret)] if secret.startswith("arn:") else None
    if service == "scheduler":
        return _scheduler_checks(self, action, params, partition, region, account)
    return None


def _scheduler_checks(self, action, params, partition, region, account):
    """EventBridge Scheduler authorizes a schedule group call on the group
    and a schedule call on arn:…:schedule/<group>/<name> (the group from
    the query's groupName or the body's GroupName, else default); ListSchedules
    takes no resource. moto checks "*" for all of them."""
    from urllib.parse import parse_qs, urlparse

    url = urlparse(self.uri)
    parts = [p for p in url.path.split("/") if p]
    prefix = "arn:%s:scheduler:%s:%s:" % (partition, region, account)
    if len(parts) == 2 and parts[0] == "schedule-groups":
        return [(action, prefix + "schedule-group/" + parts[1])]
    if len(parts) == 2 and parts[0] == "schedules":
        group = (parse_qs(url.query).get("groupName") or [None])[0] or params.get("GroupName") or "default"
        return [(action, prefix + "schedule/%s/%s" % (group, parts[1]))]
    return None


def _patch_sqs_attributes():
    from moto.sqs.models import Queue

    # 4. RedriveAllowPolicy: a base attribute (valid in GetQueueAttributes,
    # listed by "All" while set), None until set, "" clears it.
    if "RedriveAllowPolicy" not in Queue.BASE_ATTRIBUTES:
        Queue.BASE_ATTRIBUTES.append("RedriveAllowPolicy")
    Queue.redrive_allow_policy = None
    set_attributes = Queue._set_attributes

    def _set_attributes(self, attributes, now=None):
        attributes = dict(attributes)
        if attributes.get("RedriveAllowPolicy") == "":
            attributes["RedriveAllowPolicy"] = None
        named_policy = "Policy" in attributes
        policy = getattr(self, "policy", None)
        set_attributes(self, attributes, now)
        if not named_policy:
            self.policy = policy

    Queue._set_attributes = _set_attributes

    # 5. RedrivePolicy as SQS returns it: compact JSON.
    attributes_of = Queue.attributes.fget

    def attributes(self):
        result = attributes_of(self)
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    Queue.attributes = property(attributes)


def _patch_kinesis_create_tags():
    from moto.kinesis.responses import KinesisResponse

    create = KinesisResponse.create_stream

    def create_stream(self):
        result = create(self)
        tags = self._get_param("Tags")
        if tags:
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), tags)
        return result

    KinesisResponse.create_stream = create_stream


def _patch_ecs_service_fields():
    from moto.ecs.models import Service
    from moto.ecs.responses import EC2ContainerServiceResponse

    Service.enable_ecs_managed_tags = False
    Service.availability_zone_rebalancing = "DISABLED"
    fields = {"enableECSManagedTags": "enable_ecs_managed_tags", "availabilityZoneRebalancing": "availability_zone_rebalancing"}

    def keep(handler, service_param):
        def wrapped(self):
            result = handler(self)
            service = self.ecs_backend.describe_services(
                self._get_param("cluster", "default"), [self._get_param(service_param)]
            )[0]
            for svc in service:
                for param, attr in fields.items():
                    value = self._get_param(param)
                    if value is not None:
                        setattr(svc, attr, value)
            return result

        return wrapped

    EC2ContainerServiceResponse.create_service = keep(EC2ContainerServiceResponse.create_service, "serviceName")
    EC2ContainerServiceResponse.update_service = keep(EC2ContainerServiceResponse.update_service, "service")


def _patch_cross_account_trust():
    from moto.iam import access_control
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    def role_backend(self, role_arn):
        parts = role_arn.split(":")
        account = parts[4] if len(parts) > 4 and parts[4] else self.account_id
        return iam_backends[account][get_partition(self._region)]

    def is_assuming_role_operation(self, resource_arn):
        if ":role" not in resource_arn.lower():
            return False
        try:
            role_backend(self, resource_arn).get_role_by_arn(resource_arn)
        except NotFoundException:
            return False
        return self._action in access_control.REQUIRE_RESOURCE_ACCESS_POLICIES_CHECK

    def check_role_trust_relationship(self, role_arn):
        role = role_backend(self, role_arn).get_role_by_arn(role_arn)
        result = IAMPolicy(role.assume_role_policy_document).is_action_permitted(
            self._action,
            role_arn,
            self._access_key.arn,
            access_control.format_incoming_conditional_values(self._data),
        )
        return result == PermissionResult.PERMITTED

    def principal_matches(expected, caller):
        if expected == "*" or expected == caller:
            return True
        c = caller.split(":")
        e = expected.split(":")
        if len(c) < 6:
            return False
        caller_account, caller_resource = c[4], c[5]
        if len(e) == 1:  # a bare account id
            return expected == caller_account
        if len(e) < 6 or e[4] != caller_account:
            return False
        if e[5] == "root":
            return True
        if e[2] == "iam" and e[5].startswith("role/") and c[2] == "sts" and caller_resource.startswith("assumed-role/"):
            return e[5].split("/")[-1] == caller_resource.split("/")[1]
        return False

    def check_principal(self, principal):
        expected = self._statement.get("Principal")
        if not expected:
            return True
        aws = expected.get("AWS") if isinstance(expected, dict) else None
        if aws is None:
            return False
        if isinstance(aws, str):
            aws = [aws]
        return any(principal_matches(p, principal) for p in aws)

    access_control.IAMPolicyStatement._check_principal = check_principal
    check_conditions = access_control.IAMPolicyStatement._check_conditions

    def check_conditions_with_absent_keys(self, incoming):
        for operator, values in (self._statement.get("Condition") or {}).items():
            if operator.endswith("IfExists") or not isinstance(values, dict):
                continue
            if any(k.lower() == "sts:externalid" for k in values) and not (incoming or {}).get("sts:ExternalId"):
                return False
        return check_conditions(self, incoming)

    access_control.IAMPolicyStatement._check_conditions = check_conditions_with_absent_keys

    from xmltodict import unparse
    from moto.core.exceptions import AccessDeniedError

    class QueryAccessDenied(AccessDeniedError):
        def __init__(self, user_arn, action):
            super().__init__(user_arn, action)
            self.description = unparse(
                {"ErrorResponse": {"Error": {"Type": "Sender", "Code": "AccessDenied", "Message": self.message}}},
                full_document=True,
            )

    raise_denied = access_control.IAMRequest._raise_access_denied

    def raise_access_denied(self):
        if self._service in ("iam", "sts"):
            raise QueryAccessDenied(user_arn=self._access_key.arn, action=self._action)
        raise_denied(self)

    access_control.IAMRequest._raise_access_denied = raise_access_denied
    access_control.IAMRequestBase._is_assuming_role_operation = is_assuming_role_operation
    access_control.IAMRequestBase._check_role_trust_relationship = check_role_trust_relationship


def _snapshot(backend, transact_items):
    """(table, hash, range, copy of the item or None) for every item the
    transaction names; an op whose key cannot be read writes nothing."""
    saved = []
    for entry in transact_items or []:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            keys = op["Item"] if op_type == "Put" else op["Key"]
            hash_key, range_key = backend.get_keys_value(table, keys)
        except Exception:
            continue
        item = table.get_item(hash_key, range_key)
        saved.append((table, hash_key, range_key, copy.deepcopy(item)))
    return saved


def _restore(saved):
    # Reverse order: if an op named an item twice (moto rejects that, but
    # only after the first op ran), the first snapshot is the one that wins.
    for table, hash_key, range_key, item in reversed(saved):
        if range_key is not None:
            if item is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = item
        elif item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item


if __name__ == "__main__":
    main()
