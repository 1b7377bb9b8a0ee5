"""template.yaml reads in the order of the flow; operations and the install document are nested.

A reader walks template.yaml from the events that come in to the outputs; the alarms, the
dashboard and the generated SSM document live in templates/*.yaml, each included once with
`AWS::Serverless::Application`.
"""

from __future__ import annotations

from pathlib import Path

from tests.templates import read_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
NESTED = ROOT / "templates"

# One resource per step, in the order the flow meets them (each section's first or main one).
FLOW = [
    "CertificateEventsRule",  # events in
    "SweepFunction",  # the sweep's reminders, through the same rule
    "CertificateLifecycleStateMachine",
    "TriageFunction",
    "EventTable",  # record
    "NotificationTopic",  # notify
    "RequestApprovalFunction",  # approval
    "CertificateBucket",  # export
    "ExportFunction",
    "DistributeFunction",  # distribute and install
    "InstallCallbackFunction",
    "FindingsFunction",
    "OperationsStack",
    "InstallDocumentStack",
]
MOVED_OUT = {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::SSM::Document"}


def _nested(resources: dict) -> dict[str, Path]:
    return {
        logical_id: ROOT / r["Properties"]["Location"]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Serverless::Application"
    }


def test_resources_come_in_the_order_of_the_flow():
    order = list(read_template(TEMPLATE)["Resources"])

    positions = [order.index(name) for name in FLOW]

    assert positions == sorted(positions), [order[p] for p in sorted(positions)]


def test_alarms_dashboard_and_document_are_in_nested_templates_not_in_the_parent():
    parent = read_template(TEMPLATE)["Resources"]
    nested_types = {
        r["Type"]
        for path in NESTED.glob("*.yaml")
        for r in read_template(path)["Resources"].values()
    }

    assert not {r["Type"] for r in parent.values()} & MOVED_OUT
    assert nested_types == MOVED_OUT


def test_every_nested_template_is_included_once_from_the_project():
    included = _nested(read_template(TEMPLATE)["Resources"])

    assert sorted(included.values()) == sorted(NESTED.glob("*.yaml"))
    assert set(included) == {"OperationsStack", "InstallDocumentStack"}


def test_the_install_document_deploys_alone_and_names_its_document():
    """Organisation mode will deploy the same document in member accounts: no parameter to
    pass, and its name as an output."""
    template = read_template(NESTED / "install-document.yaml")

    assert not [p for p in template.get("Parameters", {}).values() if "Default" not in p]
    assert template["Outputs"]["DocumentName"]["Value"] == {"Ref": "InstallDocument"}
