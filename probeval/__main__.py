"""`python -m probeval`: the same entry point as the `probeval` console script."""

from probeval.cli import main

raise SystemExit(main())
