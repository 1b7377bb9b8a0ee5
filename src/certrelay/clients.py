"""AWS clients for certrelay's functions, made from service models cut to what they call.

Creating a client parses its service's model, the whole API with its documentation (S3's is
about 1 MB of JSON); most of that parse is for operations certrelay never calls. `botocore_data/`
holds, for each service in OPERATIONS, botocore's own model cut to those operations (with every
shape they reach and every exception of the service), written by `python -m
certrelay.botocore_models --write` from the installed botocore. botocore's loader reads that
folder before its own data, so a service not listed keeps its whole model.

The cut models are used only with the botocore release they were cut from (BOTOCORE_VERSION);
under any other release every client gets botocore's own models. tests/contract/
test_botocore_models.py fails if the code calls an operation the table does not list, or if the
folder differs from what the generator writes from the installed botocore.

The clients are botocore's, as boto3.client makes them (boto3.client is botocore's create_client
on a session that also adds boto3's S3 transfer methods and resource classes, which certrelay
does not use), from the same credential, Region and retry settings. Not importing boto3 saves a
function's cold start its import: boto3's package imports s3transfer and with it
concurrent.futures and multiprocessing (tests/unit/test_function_imports.py keeps it out).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import botocore
import botocore.session

DATA = Path(__file__).with_name("botocore_data")
VERSION_FILE = DATA / "BOTOCORE_VERSION"

# Every operation certrelay's functions call, by service (API names); the contract test keeps
# it a superset of the code's calls. A few are botocore's own calls, marked. The test matches
# method names, not the client they are called on: export's secretsmanager.put_resource_policy
# puts PutResourcePolicy in every listed service that has such an operation.
OPERATIONS: dict[str, frozenset[str]] = {
    "acm": frozenset(
        {"DescribeCertificate", "ExportCertificate", "ListCertificates", "ListTagsForCertificate"}
    ),
    "dynamodb": frozenset(
        {
            "DeleteItem",
            "GetItem",
            "PutItem",
            "PutResourcePolicy",
            "Query",
            "TransactWriteItems",
            "UpdateItem",
        }
    ),
    "events": frozenset({"PutEvents"}),
    "kms": frozenset({"Decrypt", "Encrypt"}),
    "lambda": frozenset({"Invoke", "PutResourcePolicy"}),
    # HeadBucket: botocore's own region redirect; CreateSession: its S3 Express sign-in
    "organizations": frozenset({"DescribeOrganization", "ListAccounts", "PutResourcePolicy"}),
    "s3": frozenset({"CopyObject", "CreateSession", "GetObject", "HeadBucket", "PutObject"}),
    "secretsmanager": frozenset(
        {"CreateSecret", "GetSecretValue", "PutResourcePolicy", "PutSecretValue"}
    ),
    "securityhub": frozenset({"BatchImportFindings", "GetFindings"}),
    "sns": frozenset({"Publish"}),
    "ssm": frozenset(
        {
            "CancelCommand",
            "ListCommandInvocations",
            "ListCommands",
            "PutResourcePolicy",
            "SendCommand",
        }
    ),
    "stepfunctions": frozenset({"SendTaskFailure", "SendTaskSuccess"}),
    "sts": frozenset({"AssumeRole", "GetCallerIdentity"}),
}


def cut_models_apply() -> bool:
    """The running botocore is the release botocore_data/ was cut from."""
    try:
        return VERSION_FILE.read_text(encoding="utf-8").strip() == botocore.__version__
    except OSError:
        return False


@cache
def session() -> botocore.session.Session:
    """One session per process, as boto3.client's default one, reading the cut models first."""
    core = botocore.session.get_session()
    if cut_models_apply():  # before the loader is made: it reads data_path once, when made
        given = core.get_config_variable("data_path")  # AWS_DATA_PATH, read after ours
        core.set_config_variable("data_path", os.pathsep.join(filter(None, [str(DATA), given])))
    return core


def client(service: str, **kwargs: Any) -> Any:
    """A client as boto3.client(service, **kwargs) makes it, for certrelay's functions."""
    return session().create_client(service, **kwargs)
