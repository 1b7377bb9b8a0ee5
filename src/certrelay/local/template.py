"""Read template.yaml as CloudFormation would see it: through the SAM translator, offline.

Local `CodeUri` / `ContentUri` paths become `s3://certrelay-local-code/<path>` placeholders, a
nested stack's local `Location` / `TemplateURL` an https URL in that bucket (the key keeps the
path, so the engine can find the code and the nested template again), and a state machine's
`DefinitionUri` (SAM) or `DefinitionS3Location` (plain CloudFormation) is inlined, as
`sam package` would do.
The translator runs with a region-only boto3 session and no managed policy lookups, so nothing
here talks to AWS.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from certrelay.local.intrinsics import TemplateError

CODE_BUCKET = "certrelay-local-code"
_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}
# A nested template at a local path: `sam package` uploads it and leaves an https URL.
_TEMPLATE_PROPERTIES = {
    "AWS::Serverless::Application": "Location",
    "AWS::CloudFormation::Stack": "TemplateURL",
}
TEMPLATE_URL = f"https://{CODE_BUCKET}.s3.amazonaws.com/"
_DEFINITION_PROPERTIES = {
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::StepFunctions::StateMachine": "DefinitionS3Location",
}


@dataclass(frozen=True)
class Template:
    """A translated (plain CloudFormation) template and where it came from."""

    root: Path
    sam: dict[str, Any]
    cloudformation: dict[str, Any]

    def code_path(self, location: Any) -> Path | None:
        """The local directory behind a translated Code / Content location, if it is one of ours."""
        if isinstance(location, dict) and location.get("S3Bucket") == CODE_BUCKET:
            return self.root / str(location["S3Key"])
        return None

    def template_path(self, url: Any) -> Path | None:
        """The local file behind a nested stack's translated TemplateURL, if it is one of ours."""
        if isinstance(url, str) and url.startswith(TEMPLATE_URL):
            return self.root / url.removeprefix(TEMPLATE_URL)
        return None


def load_sam(path: Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML file, short-form intrinsic tags included."""
    try:
        parsed = yaml_parse(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TemplateError(f"cannot read {path}: {error.strerror}") from None
    if not isinstance(parsed, dict) or "Resources" not in parsed:
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return dict(parsed)


def translate(
    path: Path, parameters: dict[str, str], region: str, *, inline_definitions: bool = True
) -> Template:
    """Translate the SAM template at `path` into plain CloudFormation, offline.

    With `inline_definitions=False` a definition path becomes an S3 location, as `sam package`
    leaves it (what CloudFormation receives); the engine needs it inlined to create the machine.
    """
    root = path.resolve().parent
    sam = load_sam(path)
    packaged = copy.deepcopy(sam)
    for resource in packaged["Resources"].values():
        properties = resource.get("Properties", {})
        code_property = _CODE_PROPERTIES.get(resource.get("Type", ""))
        if code_property and isinstance(properties.get(code_property), str):
            properties[code_property] = {"Bucket": CODE_BUCKET, "Key": properties[code_property]}
        template_property = _TEMPLATE_PROPERTIES.get(resource.get("Type", ""), "")
        if isinstance(properties.get(template_property), str) and "://" not in str(
            properties[template_property]
        ):
            properties[template_property] = TEMPLATE_URL + properties[template_property]
        # SAM's DefinitionUri, or a plain state machine's DefinitionS3Location: both local paths
        definition_property = _DEFINITION_PROPERTIES.get(resource.get("Type", ""), "")
        if isinstance(properties.get(definition_property), str) and not inline_definitions:
            properties[definition_property] = {
                "Bucket": CODE_BUCKET,
                "Key": properties[definition_property],
            }
        elif isinstance(properties.get(definition_property), str):
            definition_path = root / properties.pop(definition_property)
            try:
                properties["Definition"] = json.loads(definition_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise TemplateError(f"cannot load {definition_path}: {error}") from None
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.Session(region_name=region),
        metrics=Metrics("certrelay-local", DummyMetricsPublisher()),
    )
    try:
        cloudformation = translator.translate(
            packaged, parameter_values=dict(parameters), get_managed_policy_map=dict
        )
    except InvalidDocumentException as error:
        causes = "; ".join(str(cause) for cause in error.causes)
        raise TemplateError(f"{path.name} does not translate: {causes}") from None
    finally:
        translator.metrics.publish()  # offline: the dummy publisher drops them
    return Template(root=root, sam=sam, cloudformation=cloudformation)
