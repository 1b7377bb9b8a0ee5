"""The patterns of the identifiers certrelay reads: certificate ARNs, account ids, Regions.

Their own module, free of the event models: the functions that only check an ARN or an account
(the accounts' sessions, the organisation's settings) do not import pydantic for them.
"""

from __future__ import annotations

import re

# Matched with fullmatch and \Z: Python's `$` also matches before a final newline. The
# certificate's id names its bundles' folder (certrelay.bundles).
CERTIFICATE_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):acm:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2}):"
    r"(?P<account>\d{12}):certificate/(?P<id>[A-Za-z0-9-]{1,128})\Z"
)
ACCOUNT_ID = re.compile(r"\d{12}\Z")
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}\Z")
