"""Read template.yaml as CloudFormation would see it: through the SAM translator, offline.

Local `CodeUri` / `ContentUri` paths become `s3://certrelay-local-code/<path>` placeholders, a
nested stack's local `Location` / `TemplateURL` an https URL in that bucket (the key keeps the
path, so the engine can find the code and the nested template again), and a state machine's
`DefinitionUri` (SAM) or `DefinitionS3Location` (plain CloudFormation) is inlined, as
`sam package` would do.
The translator runs with a region-only boto3 session and no managed policy lookups, so nothing
here talks to AWS. A translation is kept on disk (certrelay.local.cache) keyed by the template's
text, the parameters, the region, the translator's version and this module's code, with the
digest of every definition file it inlined, so the next engine skips the translator until one
of them changes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from certrelay.local import cache
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
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateError(f"cannot read {path}: {error.strerror}") from None
    return _parse_sam(text, path)


def _parse_sam(text: str, path: Path) -> dict[str, Any]:
    # lazy: the SAM translator (0.25 s of imports) is imported only when a template is parsed
    # or translated, not when the translation comes from the disk cache (the demo's start).
    from samtranslator.yaml_helper import yaml_parse

    parsed = yaml_parse(text)
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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateError(f"cannot read {path}: {error.strerror}") from None
    digest = cache.key(
        "template",
        text,
        json.dumps(parameters, sort_keys=True),
        region,
        str(inline_definitions),
        cache.version("aws-sam-translator"),
        Path(__file__).read_bytes(),
    )
    kept: Any = cache.load("template", digest)
    if _still_current(kept, root):
        return Template(root=root, sam=kept["sam"], cloudformation=kept["cloudformation"])
    inlined: dict[str, str] = {}  # definition file (relative to root) -> its SHA-256
    template = _translate(path, text, parameters, region, inline_definitions, inlined)
    cache.store(
        "template",
        digest,
        {"sam": template.sam, "cloudformation": template.cloudformation, "inlined": inlined},
    )
    return template


def _still_current(kept: Any, root: Path) -> bool:
    """A kept translation whose inlined definition files still hold what they held then."""
    if not isinstance(kept, dict) or not {"sam", "cloudformation", "inlined"} <= kept.keys():
        return False
    try:
        return all(
            hashlib.sha256((root / name).read_bytes()).hexdigest() == sha
            for name, sha in kept["inlined"].items()
        )
    except (OSError, TypeError, AttributeError):
        return False


def _translate(
    path: Path,
    text: str,
    parameters: dict[str, str],
    region: str,
    inline_definitions: bool,
    inlined: dict[str, str],
) -> Template:
    # lazy: the translator only on a cache miss (see _parse_sam), as the lines below
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.model.exceptions import InvalidDocumentException  # lazy: as above
    from samtranslator.parser.parser import Parser  # lazy: as above
    from samtranslator.translator.translator import Translator  # lazy: as above

    root = path.resolve().parent
    sam = _parse_sam(text, path)
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
            relative = properties.pop(definition_property)
            definition_path = root / relative
            try:
                source = definition_path.read_bytes()
                properties["Definition"] = json.loads(source.decode("utf-8"))
            except (OSError, ValueError) as error:
                raise TemplateError(f"cannot load {definition_path}: {error}") from None
            inlined[relative] = hashlib.sha256(source).hexdigest()
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
