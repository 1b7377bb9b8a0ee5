"""The functions' clients are made from cut service models (certrelay.clients); cutting must
never drop what the code calls, and the cut must be the installed botocore's own text.

GIVEN the Lambda code (src/certrelay without local/, cli/, console/; functions/) WHEN every
attribute name it uses and every paginator or waiter it asks for is read THEN each one that is an
operation of a service in certrelay.clients.OPERATIONS is in that service's cut model; and the
committed botocore_data/ is exactly what the generator writes from the installed botocore.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import boto3
import botocore
import pytest
from botocore import xform_name
from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape

from certrelay import botocore_models, clients

ROOT = Path(__file__).resolve().parents[2]
NOT_LAMBDA = {"local", "cli", "console"}


def lambda_sources() -> list[Path]:
    package = ROOT / "src" / "certrelay"
    code = [p for p in package.rglob("*.py") if not NOT_LAMBDA & set(p.relative_to(package).parts)]
    return sorted([*code, *(ROOT / "functions").glob("*/app.py")])


def names_used(path: Path) -> set[str]:
    """Attribute names (`acm.describe_certificate`, called or passed on) and the string
    argument of get_paginator / get_waiter / can_paginate."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get_paginator", "get_waiter", "can_paginate")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


@pytest.fixture(scope="module")
def loader() -> Loader:
    return botocore_models.botocore_loader()


@pytest.fixture(scope="module")
def used() -> set[str]:
    return set().union(*(names_used(p) for p in lambda_sources()))


def test_every_operation_the_code_calls_is_in_the_cut_models(loader, used):
    # GIVEN every service's whole model, and the names the Lambda code uses
    # WHEN a used name is one of a service's operations (as boto3 spells its method)
    # THEN the table lists it, so the cut model has it
    missing = {}
    for service, listed in clients.OPERATIONS.items():
        whole = botocore_models.full_model(service, loader)["operations"]
        called = {op for op in whole if xform_name(op) in used}
        if called - listed:
            missing[service] = sorted(called - listed)
    assert missing == {}, f"add these to certrelay.clients.OPERATIONS and --write: {missing}"


def test_the_scan_sees_calls_made_through_a_passed_method(used):
    # GIVEN findings.py passes securityhub.get_findings to a retrying helper
    # THEN the scan still counts it (a method reference is a use)
    assert {"get_findings", "batch_import_findings", "describe_certificate"} <= used
    assert "list_certificates" in used  # sweep's get_paginator("list_certificates")


def test_the_committed_models_are_what_the_installed_botocore_generates():
    # GIVEN the installed botocore WHEN the generator runs THEN botocore_data/ is its output,
    # byte for byte (a botocore upgrade or a new operation shows here, never silently)
    assert clients.VERSION_FILE.read_text(encoding="utf-8").strip() == botocore.__version__
    assert botocore_models.committed() == botocore_models.generated(), (
        "run: PYTHONPATH=src python -m certrelay.botocore_models --write"
    )


def _walk(shape: Shape | None, seen: set[str]) -> None:
    """Resolve every member of `shape` (a missing shape raises)."""
    if shape is None or shape.name in seen:
        return
    seen.add(shape.name)
    for member in getattr(shape, "members", {}).values():
        _walk(member, seen)
    for attr in ("member", "key", "value"):
        _walk(getattr(shape, attr, None), seen)


@pytest.mark.parametrize("service", sorted(clients.OPERATIONS))
def test_a_cut_model_serves_its_operations_as_the_whole_one_does(service, loader):
    # GIVEN the cut model of a service, and botocore's whole one, each read afresh (botocore
    # edits a model it has loaded when it makes a client: S3's request URIs)
    version = botocore_models.api_version(service, loader)
    path = clients.DATA / service / version / "service-2.json"
    cut = ServiceModel(json.loads(path.read_text(encoding="utf-8")), service)
    whole = ServiceModel(botocore_models.full_model(service, loader), service)
    # THEN the functions' session reads the cut one
    found = clients.session().get_component("data_loader")
    assert found.load_data_with_path(f"{service}/{version}/service-2")[1] == str(path)[:-5]
    # AND it has the listed operations (and an endpoint-discovery one) and no others
    listed = clients.OPERATIONS[service]
    kept = botocore_models.kept_operations(whole._service_description, listed)
    assert set(cut.operation_names) == set(kept) >= listed
    assert len(cut.operation_names) < len(whole.operation_names)
    # AND what the client is built from is the same: metadata, protocol, signing, discovery,
    # every exception, and each operation's wire form
    assert list(cut.metadata.items()) == list(whole.metadata.items())
    assert cut.endpoint_discovery_required == whole.endpoint_discovery_required
    assert cut.client_context_parameters == whole.client_context_parameters
    assert {s.name for s in cut.error_shapes} == {s.name for s in whole.error_shapes}
    for name in cut.operation_names:
        mine, theirs = cut.operation_model(name), whole.operation_model(name)
        assert json.dumps(_wire(mine)) == json.dumps(_wire(theirs)), name  # order too
        for shape in (mine.input_shape, mine.output_shape):
            _walk(shape, set())
    shapes = whole._service_description["shapes"]
    for name, shape in cut._service_description["shapes"].items():
        assert json.dumps(shape) == json.dumps(botocore_models._without_documentation(shapes[name]))


def _wire(operation: OperationModel) -> dict[str, object]:
    """An operation's model without its documentation."""
    return botocore_models._without_documentation(operation._operation_model)  # type: ignore[no-any-return]


def test_clients_are_made_from_the_cut_models():
    # GIVEN the installed botocore is the release the models were cut from
    assert clients.cut_models_apply()
    # WHEN the functions' factory makes an S3 client
    s3 = clients.client("s3", region_name="us-east-1")
    # THEN it has the listed operations' methods, not the rest (nor boto3's own S3 transfer
    # additions: the functions' clients are botocore's, and certrelay calls none of those)
    assert hasattr(s3, "put_object")
    assert not hasattr(s3, "upload_fileobj")
    assert not hasattr(s3, "put_bucket_policy")
    # AND boto3's own clients (the local engine's, the tests') keep the whole model
    assert hasattr(boto3.client("s3", region_name="us-east-1"), "put_bucket_policy")


def test_another_botocore_release_gets_the_whole_models(monkeypatch):
    # GIVEN a botocore release other than the one the models were cut from
    monkeypatch.setattr(botocore, "__version__", "0.0.0")
    # WHEN a session is made THEN it reads botocore's own models only (the cut ones could
    # disagree with that release's code)
    assert not clients.cut_models_apply()
    fresh = clients.session.__wrapped__()
    assert str(clients.DATA) not in fresh.get_component("data_loader").search_paths
    assert hasattr(fresh.create_client("s3", region_name="us-east-1"), "put_bucket_policy")


def test_the_layer_and_the_project_pin_the_release_the_models_were_cut_from():
    # GIVEN the release botocore_data/ was cut from
    release = clients.VERSION_FILE.read_text(encoding="utf-8").strip()
    # THEN the Lambda layer ships that botocore (the runtime's own may be any release), and the
    # project installs it, so a fresh clone's tests cut the same models
    layer = (ROOT / "src" / "requirements.txt").read_text(encoding="utf-8").split()
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for package in ("boto3", "botocore"):
        assert f"{package}=={release}" in layer
        assert f'"{package}=={release}"' in project
