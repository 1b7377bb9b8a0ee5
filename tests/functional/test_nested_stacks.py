"""The local engine deploys nested templates as CloudFormation does, and template.yaml's two.

GIVEN a parent that includes a template with `AWS::Serverless::Application` WHEN the engine
deploys it THEN the child's resources exist in the embedded AWS under the child's stack name,
built from what the parent passed (and the child's defaults), and the parent reads the child's
Outputs through `!GetAtt Child.Outputs.Name`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from certrelay.local.intrinsics import TemplateError
from certrelay.local.lambdas import LambdaRuntime
from certrelay.local.stack import Stack, deploy
from certrelay.local.template import translate

REGION, ACCOUNT = "eu-west-1", "123456789012"

CHILD = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  TopicArn:
    Type: String
  Label:
    Type: String
    Default: spare
Conditions:
  Labelled: !Not [!Equals [!Ref Label, ""]]
Resources:
  Inbox:
    Type: AWS::SQS::Queue
  Subscription:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref TopicArn
      Protocol: sqs
      Endpoint: !GetAtt Inbox.Arn
  Labelled:
    Type: AWS::SQS::Queue
    Condition: Labelled
    Properties:
      QueueName: !Sub "${AWS::StackName}-${Label}"
Outputs:
  InboxArn:
    Value: !GetAtt Inbox.Arn
  Where:
    Value: !Sub "${AWS::StackName}/${Label}"
"""

PARENT = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Child:
    Type: AWS::Serverless::Application
    Properties:
      Location: nested/child.yaml
      Parameters:
        TopicArn: !Ref Topic
  Reader:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: !GetAtt Child.Outputs.Where
Outputs:
  ChildInbox:
    Value: !GetAtt Child.Outputs.InboxArn
"""


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def deployed(root: Path, parent: str = PARENT, child: str = CHILD) -> Stack:
    (root / "nested").mkdir()
    (root / "nested" / "child.yaml").write_text(child, encoding="utf-8")
    (root / "template.yaml").write_text(parent, encoding="utf-8")
    return deploy(
        translate(root / "template.yaml", {}, REGION),
        name="parent",
        region=REGION,
        account=ACCOUNT,
        parameters={},
        runtime=LambdaRuntime(REGION, ACCOUNT),
    )


def test_a_nested_templates_resources_are_created_with_what_the_parent_passed(aws, tmp_path):
    stack = deployed(tmp_path)

    child = stack.nested["Child"]
    topic = stack.ref("Topic")
    (subscription,) = boto3.client("sns").list_subscriptions_by_topic(TopicArn=topic)[
        "Subscriptions"
    ]
    queues = boto3.client("sqs").list_queues()["QueueUrls"]
    assert child.name == "parent-Child"
    assert child.parameters == {"TopicArn": topic, "Label": "spare"}
    assert subscription["Endpoint"] == child.resources["Inbox"].attributes["Arn"]
    assert sorted(url.rsplit("/", 1)[1] for url in queues) == [
        "parent-Child-Inbox",
        "parent-Child-spare",
    ]


def test_the_parent_reads_the_childs_outputs(aws, tmp_path):
    stack = deployed(tmp_path)

    reader = boto3.client("sns").get_topic_attributes(TopicArn=stack.ref("Reader"))
    inbox = stack.nested["Child"].resources["Inbox"].attributes["Arn"]
    assert reader["Attributes"]["DisplayName"] == "parent-Child/spare"
    assert stack.resources["Child"].attributes == {
        "Outputs.InboxArn": inbox,
        "Outputs.Where": "parent-Child/spare",
    }
    assert stack.resources["Child"].ref.endswith(":stack/parent-Child/local")
    assert stack.outputs == {"ChildInbox": inbox}


def test_a_child_parameter_without_a_value_stops_the_deploy(aws, tmp_path):
    parent = PARENT.replace("      Parameters:\n        TopicArn: !Ref Topic\n", "")

    with pytest.raises(TemplateError, match="template parameter TopicArn needs a value"):
        deployed(tmp_path, parent=parent)


def test_the_engine_deploys_the_stacks_install_document_and_operations():
    """template.yaml's nested stacks: the document the distribute function sends exists, the
    install callback's rule matches that name, and the alarms are recorded as not emulated."""
    from certrelay.local.engine import LocalEngine

    with LocalEngine() as engine:
        stack = engine.stack
        assert stack is not None
        region = stack.region
        document = stack.resources["InstallDocumentStack"].attributes["Outputs.DocumentName"]
        function = engine.runtime.functions[stack.ref("DistributeFunction")]
        described = boto3.client("ssm", region_name=region).describe_document(Name=document)
        events = boto3.client("events", region_name=region)
        patterns = [r.get("EventPattern", "") for r in events.list_rules()["Rules"]]
        operations = stack.nested["OperationsStack"]

    assert function.environment["INSTALL_DOCUMENT"] == document
    assert described["Document"]["DocumentType"] == "Command"
    assert sum(document in pattern for pattern in patterns) == 1
    assert operations.parameters["OpsTopicArn"] == stack.ref("OpsTopic")
    assert "OperationsStack/OperationsDashboard (AWS::CloudWatch::Dashboard)" in stack.not_emulated
    alarms = [e for e in stack.not_emulated if e.startswith("OperationsStack/")]
    assert (
        len(alarms) == 32
    )  # 31 alarms (ExportCapReached, the digest function's two) and the dashboard
