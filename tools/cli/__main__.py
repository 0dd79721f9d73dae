"""`python -m tools.cli` is the `gonka` command."""

from tools.cli import main

raise SystemExit(main())
