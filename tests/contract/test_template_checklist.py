"""Security-checklist items that template.yaml alone must hold (IDs from SECURITY-CHECKLIST.md).

Each test pins one item's intent on the translated template, so a change that weakens it fails
here and has to be argued for in review rather than slipping through.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def target_of(value: Any) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            attribute = value["Fn::GetAtt"]
            return str(attribute[0] if isinstance(attribute, list) else attribute.split(".")[0])
    return None


def role_statements(translated: dict[str, Any], role: str) -> list[dict[str, Any]]:
    policies = translated["Resources"][role]["Properties"].get("Policies", [])
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


# --- SSM-07: what a server's instance role may read ----------------------------------------------


def test_servers_read_only_their_profiles_bundles_and_passphrases(translated):
    """SSM-07: the instance policy reads bundles under one prefix, passphrases under the stack's
    export path, both only when tagged for the host's own profile, and decrypts each with its own
    key only through the service that stores it. Exactly these four statements, each
    conditioned."""
    document = translated["Resources"]["ServerInstallPolicy"]["Properties"]["PolicyDocument"]
    own_profile = "${aws:PrincipalTag/certrelay:profile}"
    assert all(s["Effect"] == "Allow" and s.get("Condition") for s in document["Statement"])
    reads = {
        frozenset(as_list(s["Action"])): s
        for s in document["Statement"]
        if s["Action"] != "kms:Decrypt"
    }
    assert set(reads) == {
        frozenset({"s3:GetObject", "s3:GetObjectVersion"}),
        frozenset({"secretsmanager:GetSecretValue"}),
    }

    bundles = reads[frozenset({"s3:GetObject", "s3:GetObjectVersion"})]
    assert bundles["Resource"] == {"Fn::Sub": "${CertificateBucket.Arn}/certificates/*"}
    assert bundles["Condition"] == {
        "StringEquals": {"s3:ExistingObjectTag/certrelay:profile": own_profile}
    }

    passphrases = reads[frozenset({"secretsmanager:GetSecretValue"})]
    (resource,) = as_list(passphrases["Resource"])
    assert resource["Fn::Sub"].endswith(":secret:${AWS::StackName}/export/*")
    assert passphrases["Condition"] == {
        "StringEquals": {"secretsmanager:ResourceTag/certrelay:profile": own_profile}
    }

    decrypts = {}
    for statement in document["Statement"]:
        if statement["Action"] != "kms:Decrypt":
            continue
        assert list(statement["Condition"]) == ["StringEquals"]
        (via,) = as_list(statement["Condition"]["StringEquals"]["kms:ViaService"])
        decrypts[target_of(statement["Resource"])] = via["Fn::Sub"]
    assert decrypts == {
        "BundleKey": "s3.${AWS::Region}.amazonaws.com",
        "PassphraseKey": "secretsmanager.${AWS::Region}.amazonaws.com",
    }


# --- REL-02: events that cannot start the workflow are kept, encrypted, from this rule only ----


def test_events_that_cannot_start_the_workflow_land_in_an_encrypted_queue_only_the_rule_feeds(
    translated,
):
    """REL-02: the rule's target retries with a bounded event age and dead-letters into an
    encrypted queue whose policy lets EventBridge send only on behalf of this rule, over TLS."""
    resources = translated["Resources"]
    (target,) = resources["CertificateEventsRule"]["Properties"]["Targets"]
    queue = target_of(target["DeadLetterConfig"]["Arn"])
    assert queue is not None
    properties = resources[queue]["Properties"]
    (policy,) = [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::QueuePolicy"
        and queue in {target_of(q) for q in r["Properties"]["Queues"]}
    ]
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    denials = [s for s in policy["Statement"] if s["Effect"] == "Deny"]

    assert resources[queue]["Type"] == "AWS::SQS::Queue"
    assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties
    assert 0 < target["RetryPolicy"]["MaximumRetryAttempts"] <= 185
    assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    (allow,) = allows
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert as_list(allow["Action"]) == ["sqs:SendMessage"]
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["CertificateEventsRule", "Arn"]}}
    }
    assert any(
        d["Principal"] == "*" and d["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for d in denials
    )


# --- SNS-02: who may use the notification key ----------------------------------------------------


def test_notification_key_lets_publishers_and_alarms_encrypt_and_no_one_else(translated):
    """SNS-02: CloudWatch (alarms to the ops topic) and every role that publishes to a topic this
    key encrypts may GenerateDataKey*/Decrypt; the publishers only through SNS in this account.
    No EventBridge rule targets SNS, so events.amazonaws.com gets nothing."""
    resources = translated["Resources"]
    statements = resources["NotificationKey"]["Properties"]["KeyPolicy"]["Statement"]
    needed = {"kms:GenerateDataKey*", "kms:Decrypt"}
    services = {
        service: s
        for s in statements
        for service in as_list(s["Principal"].get("Service", []))
        if s["Effect"] == "Allow"
    }

    assert set(services) == {"cloudwatch.amazonaws.com"}
    alarms = services["cloudwatch.amazonaws.com"]
    assert set(as_list(alarms["Action"])) == needed
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}

    (publishers,) = [s for s in statements if s.get("Sid") == "PublishersEncryptThroughSns"]
    assert set(as_list(publishers["Action"])) == needed
    assert publishers["Condition"]["StringEquals"] == {
        "kms:ViaService": {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"},
        "kms:CallerAccount": {"Ref": "AWS::AccountId"},
    }

    topics = {
        name
        for name, r in resources.items()
        if r["Type"] == "AWS::SNS::Topic"
        and target_of(r["Properties"].get("KmsMasterKeyId")) == "NotificationKey"
    }
    assert {"NotificationTopic", "OpsTopic"} <= topics
    publishing_roles = {
        role
        for role, r in resources.items()
        if r["Type"] == "AWS::IAM::Role"
        for s in role_statements(translated, role)
        if "sns:Publish" in as_list(s.get("Action", []))
        and {target_of(t) for t in as_list(s.get("Resource", []))} & topics
    }
    assert publishing_roles
    for role in publishing_roles:
        grants = [
            s
            for s in role_statements(translated, role)
            if s["Effect"] == "Allow" and target_of(s.get("Resource")) == "NotificationKey"
        ]
        granted = {a for s in grants for a in as_list(s["Action"])}
        assert needed <= granted, role
        for s in grants:
            via = s["Condition"]["StringEquals"]["kms:ViaService"]
            assert via == {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}, role


# --- SNS-03: every topic refuses plain HTTP and lets no one in at large --------------------------


def test_every_topic_has_a_policy_that_denies_plain_http_and_allows_no_anonymous_publisher(
    translated,
):
    """SNS-03: each topic is named by a topic policy that denies sns:Publish to everyone when
    aws:SecureTransport is false; no Allow names Principal "*"; a service principal is allowed only
    for this account's resources; and the alarms' topics let CloudWatch publish, so the policy
    locks no alarm out."""
    resources = translated["Resources"]
    topics = {name for name, r in resources.items() if r["Type"] == "AWS::SNS::Topic"}
    policies = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    statements_of: dict[str, list[dict[str, Any]]] = {topic: [] for topic in topics}
    for policy in policies:
        for topic in {target_of(t) for t in policy["Topics"]}:
            assert topic in topics, topic
            statements_of[topic] += as_list(policy["PolicyDocument"]["Statement"])
    alarmed = {
        target_of(action)
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for action in r["Properties"].get("AlarmActions", [])
    }

    assert {"NotificationTopic", "OpsTopic"} <= topics
    assert "OpsTopic" in alarmed
    for topic, statements in statements_of.items():
        assert any(
            s["Effect"] == "Deny"
            and s["Principal"] in ("*", {"AWS": "*"})
            and {"sns:Publish", "sns:*", "*"} & set(as_list(s["Action"]))
            and {target_of(r) for r in as_list(s["Resource"])} == {topic}
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ), f"{topic} has no TLS-only Deny"
        allows = [s for s in statements if s["Effect"] == "Allow"]
        for s in allows:
            principal = s["Principal"]
            assert principal != "*", topic
            assert isinstance(principal, dict), topic
            assert "*" not in as_list(principal.get("AWS", [])), topic
            if "Service" in principal:
                keys = {key for test in s["Condition"].values() for key in test}
                assert {"aws:SourceArn", "aws:SourceAccount"} & keys, topic
        if topic in alarmed:
            assert any(
                "cloudwatch.amazonaws.com" in as_list(s["Principal"].get("Service", []))
                and "sns:Publish" in as_list(s["Action"])
                for s in allows
            ), f"{topic} is an alarm action but CloudWatch may not publish to it"


# --- APR-14: the approval API's stage -----------------------------------------------------------


def test_approval_api_logs_each_request_without_the_link_and_throttles(translated):
    """APR-14: the HTTP API stage writes an access log (to a group with a retention) that has who,
    from where and the answer but never the path, which holds the approval link id; every route is
    throttled; data tracing (a REST/WebSocket feature that logs bodies) is never switched on."""
    resources = translated["Resources"]
    stages = {k: r for k, r in resources.items() if r["Type"] == "AWS::ApiGatewayV2::Stage"}
    (stage,) = stages.values()
    properties = stage["Properties"]
    access = properties["AccessLogSettings"]
    log_group = resources[target_of(access["DestinationArn"]) or ""]
    fields = set(re.findall(r"\$context\.[\w.]+", access["Format"]))

    assert target_of(properties["ApiId"]) == "ApprovalApi"
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"]
    assert {
        "$context.requestId",
        "$context.identity.sourceIp",
        "$context.status",
        "$context.identity.userAgent",
    } <= fields
    assert not {f for f in fields if f.startswith(("$context.path", "$context.authorizer"))}
    settings = [properties["DefaultRouteSettings"], *properties.get("RouteSettings", {}).values()]
    for route_settings in settings:
        assert route_settings["ThrottlingBurstLimit"] > 0
        assert route_settings["ThrottlingRateLimit"] > 0
        assert route_settings.get("DataTraceEnabled", False) is False
    for name, resource in resources.items():
        if resource["Type"] == "AWS::ApiGateway::Stage":  # a REST API, should one be added
            for method in resource["Properties"].get("MethodSettings", []):
                assert method.get("DataTraceEnabled", False) is False, name
        if resource["Type"] == "AWS::ApiGatewayV2::Route":
            method = resource["Properties"]["RouteKey"].split(" ")[0]
            assert method in {"GET", "HEAD", "POST"}, f"{name}: no catch-all or ANY route"


# --- APR-12: no function logs below INFO ---------------------------------------------------------


def test_no_function_logs_below_info_where_wire_logs_would_print_stored_items(translated):
    """APR-12: at DEBUG, botocore prints whole request and response bodies (the approval table's
    items with them); every function logs JSON at INFO or above, Powertools' level included, which
    is what lets tests/functional/test_approval_checklist.py scan only the handlers' own DEBUG."""
    functions = {
        k: r["Properties"]
        for k, r in translated["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    quiet = {None, "INFO", "WARN", "ERROR", "FATAL"}

    assert functions
    for name, function in functions.items():
        logging = function["LoggingConfig"]
        variables = function.get("Environment", {}).get("Variables", {})
        assert logging["LogFormat"] == "JSON", name  # so ApplicationLogLevel applies
        assert logging.get("ApplicationLogLevel") in quiet, name
        assert logging.get("SystemLogLevel") in {None, "INFO", "WARN"}, name
        assert variables.get("POWERTOOLS_LOG_LEVEL") in quiet - {None}, name


# --- S3-06: no Object Lock on key bundles -------------------------------------------------------


def test_no_bucket_locks_its_objects_so_superseded_keys_can_be_deleted(translated):
    """S3-06: key bundles must be deletable once replaced (docs/adr/0001); versioning with a
    noncurrent expiry is the recovery path, not Object Lock."""
    buckets = {k: r for k, r in translated["Resources"].items() if r["Type"] == "AWS::S3::Bucket"}
    adr = ROOT / "docs" / "adr" / "0001-no-object-lock-on-key-bundles.md"

    assert "CertificateBucket" in buckets
    for name, bucket in buckets.items():
        properties = bucket.get("Properties", {})
        assert "ObjectLockEnabled" not in properties, name
        assert "ObjectLockConfiguration" not in properties, name
    assert "Object Lock" in adr.read_text(encoding="utf-8")
