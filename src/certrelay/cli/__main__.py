"""`python -m certrelay.cli …` is the `certrelay` command."""

import sys

from certrelay.cli.main import main

sys.exit(main())
