"""Business metrics for the dashboard: CloudWatch embedded metric format through Powertools.

Each call prints one EMF document to the function's log; CloudWatch turns it into a metric in
the `certrelay` namespace with these dimensions (plus `service`), at no API call's cost.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "certrelay"


def count(name: str, dimensions: Mapping[str, str], value: float = 1) -> None:
    """Add `value` to metric `name` under exactly these dimensions."""
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as m:
        for key, dimension in dimensions.items():
            m.add_dimension(name=key, value=dimension)


def expiry_bucket(days: int | None) -> str:
    """Days to expiry as the dashboard groups certificates: expired, ≤7, ≤15, ≤30, ≤45, later."""
    if days is None:
        return "unknown"
    if days < 0:
        return "expired"
    for limit in (7, 15, 30, 45):
        if days <= limit:
            return f"<={limit}"
    return ">45"
