"""Every AWS error name the ASL retries or catches is one the service integration can raise.

A Retry on a misspelt name never fires, and nothing says so: `SNS.KmsThrottlingException` sat in
three Retry lists while SNS answers `KMSThrottling`. The reference lists below are copied from
AWS's API references (URLs beside each); a name outside them fails this test.

How Step Functions names a service integration's error: `<Service>.<ErrorName>`, and "if the
error name doesn't include the Exception suffix, add it" (S3's `BucketAlreadyExists` is caught
as `S3.BucketAlreadyExistsException`):
https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
The optimized SNS integration follows that rule (moto's interpreter, ported from LocalStack's
AWS-parity tests, raises `SNS.<Code>Exception` as well); DynamoDB's codes are kept as the API
reference spells them (`DynamoDB.RequestLimitExceeded`), which is also what the engine raises.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from certrelay.local.asl import all_states

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachines" / "certificate_lifecycle.asl.json"

# SNS Publish's errors: https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors
# (error codes, each named `<Code>Exception` by Step Functions) and the errors common to every SNS
# action: https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html
SNS_PUBLISH_CODES = (
    "AuthorizationError",
    "EndpointDisabled",
    "InternalError",
    "InvalidParameter",
    "ParameterValueInvalid",
    "InvalidSecurity",
    "KMSAccessDenied",
    "KMSDisabled",
    "KMSInvalidState",
    "KMSNotFound",
    "KMSOptInRequired",
    "KMSThrottling",
    "NotFound",
    "PlatformApplicationDisabled",
    "ValidationException",
)
SNS_COMMON_CODES = (
    "AccessDeniedException",
    "IncompleteSignature",
    "InternalFailure",
    "InvalidAction",
    "InvalidClientTokenId",
    "NotAuthorized",
    "OptInRequired",
    "RequestExpired",
    "ServiceUnavailable",
    "ThrottlingException",
    "ValidationError",
)
# DynamoDB PutItem / DeleteItem errors (the two calls the ASL makes):
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html#API_PutItem_Errors
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DeleteItem.html#API_DeleteItem_Errors
# and the common errors: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/CommonErrors.html
DYNAMODB_ITEM_CODES = (
    "ConditionalCheckFailedException",
    "InternalServerError",
    "ItemCollectionSizeLimitExceededException",
    "ProvisionedThroughputExceededException",
    "ReplicatedWriteConflictException",
    "RequestLimitExceeded",
    "ResourceNotFoundException",
    "ThrottlingException",
    "TransactionConflictException",
)
DYNAMODB_COMMON_CODES = ("AccessDeniedException", "ServiceUnavailable", "ValidationException")
# Lambda errors as Step Functions reports them for lambda:invoke:
# https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
# and Invoke's own errors: https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors
LAMBDA_NAMES = (
    "ClientExecutionTimeoutException",
    "ServiceException",
    "AWSLambdaException",
    "SdkClientException",
    "TooManyRequestsException",
    "Unknown",
    "EC2ThrottledException",
    "ResourceNotReadyException",
    "ResourceConflictException",
    "ResourceNotFoundException",
    "RequestTooLargeException",
    "InvalidRequestContentException",
)


def _exception_suffixed(code: str) -> str:
    return code if code.endswith("Exception") else code + "Exception"


REFERENCE = frozenset(
    {f"SNS.{_exception_suffixed(c)}" for c in (*SNS_PUBLISH_CODES, *SNS_COMMON_CODES)}
    | {f"DynamoDB.{c}" for c in (*DYNAMODB_ITEM_CODES, *DYNAMODB_COMMON_CODES)}
    | {f"Lambda.{n}" for n in LAMBDA_NAMES}
)
# Transient: worth a Retry. The rest (KMS key disabled, no permission, bad input) will not pass
# by waiting, so a Retry on them only delays the report.
SNS_TRANSIENT = frozenset(
    {
        "SNS.ThrottlingException",
        "SNS.KMSThrottlingException",
        "SNS.InternalErrorException",
        "SNS.InternalFailureException",
        "SNS.ServiceUnavailableException",
    }
)


def _rules(kind: str) -> list[tuple[str, str]]:
    asl = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    return [
        (state_name, error)
        for state_name, state in all_states(asl["States"])
        for rule in state.get(kind, [])
        for error in rule["ErrorEquals"]
    ]


@pytest.mark.parametrize("kind", ["Retry", "Catch"])
def test_every_sns_dynamodb_and_lambda_error_name_is_one_aws_documents(kind: str):
    named = [(s, e) for s, e in _rules(kind) if e.startswith(("SNS.", "DynamoDB.", "Lambda."))]

    assert named, f"the ASL should name AWS errors in {kind}"
    unknown = sorted({f"{state}: {error}" for state, error in named if error not in REFERENCE})
    assert not unknown, f"not an error the integration raises: {unknown}"


def test_sns_publish_retries_exactly_the_transient_errors():
    retried: dict[str, set[str]] = {}
    for state, error in _rules("Retry"):
        if error.startswith("SNS."):
            retried.setdefault(state, set()).add(error)

    assert set(retried) == {
        "Send Email",
        "Report Rejected Event",
        "Report Inconsistent Event",
        "Report Export Cap",
        "Report Failure",
    }
    for state, errors in retried.items():
        assert errors == SNS_TRANSIENT, state


def test_the_reference_lists_hold_the_names_the_review_found_misspelt():
    # the finding: KMS throttling is `KMSThrottling`, so Step Functions says KMSThrottlingException
    assert "SNS.KMSThrottlingException" in REFERENCE
    assert "SNS.KmsThrottlingException" not in REFERENCE
    assert "SNS.ThrottledException" not in REFERENCE, "Publish does not answer Throttled"


def test_the_publish_and_dynamodb_lists_agree_with_the_sdks_service_models():
    # botocore ships AWS's own API models: each code copied above is one the operation declares
    import botocore.session

    session = botocore.session.get_session()
    publish = session.get_service_model("sns").operation_model("Publish")
    sns_codes = {e.metadata.get("error", {}).get("code", e.name) for e in publish.error_shapes}
    dynamodb = session.get_service_model("dynamodb")
    dynamodb_codes = {
        e.name
        for operation in ("PutItem", "DeleteItem")
        for e in dynamodb.operation_model(operation).error_shapes
    }

    assert set(SNS_PUBLISH_CODES) <= sns_codes
    assert "Throttled" not in sns_codes
    assert set(DYNAMODB_ITEM_CODES) <= dynamodb_codes
