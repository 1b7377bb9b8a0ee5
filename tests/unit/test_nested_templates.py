"""`whole_stack`: a parent and its nested templates read as the one template they deploy as."""

from __future__ import annotations

from pathlib import Path

import pytest

from certrelay.local.intrinsics import TemplateError
from certrelay.local.nested import substitute, whole_stack

CHILD = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  TopicArn:
    Type: String
  QueueName:
    Type: String
  Label:
    Type: String
    Default: spare
Resources:
  Watch:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions:
        - Name: QueueName
          Value: !Ref QueueName
      AlarmDescription: !Sub "${QueueName} in ${AWS::Region} (${Label})"
      AlarmActions: [!Ref TopicArn]
      Statistic: Maximum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
Outputs:
  AlarmName:
    Value: !Ref Watch
"""

PARENT = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Queue:
    Type: AWS::SQS::Queue
  Operations:
    Type: AWS::Serverless::Application
    Properties:
      Location: nested/child.yaml
      Parameters:
        TopicArn: !Ref Topic
        QueueName: !GetAtt Queue.QueueName
  Reader:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: !GetAtt Operations.Outputs.AlarmName
      TopicName: !Sub "reads-${Operations.Outputs.AlarmName}"
"""


def write(root: Path, parent: str = PARENT, child: str = CHILD) -> Path:
    (root / "nested").mkdir()
    (root / "nested" / "child.yaml").write_text(child, encoding="utf-8")
    (root / "template.yaml").write_text(parent, encoding="utf-8")
    return root / "template.yaml"


def test_the_child_resources_take_what_the_parent_passes_and_its_own_defaults(tmp_path):
    """GIVEN a parent passing a Ref and a GetAtt to a nested template with a defaulted parameter
    WHEN read as one template THEN the child's alarm names the parent's resources directly."""
    stack = whole_stack(write(tmp_path), {}, "us-east-1")

    watch = stack["Resources"]["Watch"]["Properties"]
    assert "Operations" not in stack["Resources"]
    assert watch["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["Queue", "QueueName"]}}
    ]
    assert watch["AlarmActions"] == [{"Ref": "Topic"}]
    assert watch["AlarmDescription"] == {"Fn::Sub": "${Queue.QueueName} in ${AWS::Region} (spare)"}


def test_the_parents_reads_of_nested_outputs_become_the_output_values(tmp_path):
    stack = whole_stack(write(tmp_path), {}, "us-east-1")

    reader = stack["Resources"]["Reader"]["Properties"]
    assert reader["DisplayName"] == {"Ref": "Watch"}
    assert reader["TopicName"] == {"Fn::Sub": "reads-${Watch}"}


def test_a_parameter_the_child_does_not_declare_is_refused(tmp_path):
    parent = PARENT.replace("        QueueName:", "        Colour: blue\n        QueueName:")

    with pytest.raises(TemplateError, match=r"Operations passes undeclared parameter.*Colour"):
        whole_stack(write(tmp_path, parent=parent), {}, "us-east-1")


def test_a_required_child_parameter_left_out_is_refused(tmp_path):
    parent = PARENT.replace("        TopicArn: !Ref Topic\n", "")

    with pytest.raises(TemplateError, match="passes no value for its parameter TopicArn"):
        whole_stack(write(tmp_path, parent=parent), {}, "us-east-1")


def test_an_output_the_child_does_not_declare_is_refused(tmp_path):
    parent = PARENT.replace(
        "!GetAtt Operations.Outputs.AlarmName", "!GetAtt Operations.Outputs.Nope"
    )

    with pytest.raises(
        TemplateError, match=r"no such nested stack output: Operations\.Outputs\.Nope"
    ):
        whole_stack(write(tmp_path, parent=parent), {}, "us-east-1")


def test_a_logical_id_in_both_templates_is_refused(tmp_path):
    child = CHILD.replace("  Watch:", "  Queue:").replace("!Ref Watch", "!Ref Queue")

    with pytest.raises(TemplateError, match=r"names in both templates: \['Queue'\]"):
        whole_stack(write(tmp_path, child=child), {}, "us-east-1")


def test_a_nested_template_outside_the_project_is_refused(tmp_path):
    parent = PARENT.replace(
        "Location: nested/child.yaml", "Location: https://example.com/child.yaml"
    )

    with pytest.raises(TemplateError, match="nested templates from the project only"):
        whole_stack(write(tmp_path, parent=parent), {}, "us-east-1")


def test_a_sub_variable_bound_to_an_expression_goes_through_the_variable_map():
    joined = {"Fn::Join": [",", ["a", "b"]]}

    result = substitute({"Fn::Sub": "x-${Names}-${Other}"}, {"Names": joined})

    assert result == {"Fn::Sub": ["x-${Names}-${Other}", {"Names": joined}]}


def test_a_sub_variable_bound_to_a_literal_is_written_in_and_stays_literal():
    result = substitute({"Fn::Sub": "${Name}/x"}, {"Name": "a-${b}"})

    assert result == {"Fn::Sub": "a-${!b}/x"}
