"""``python -m hashmatch.cli``: the ``hashmatch`` command."""

from hashmatch.cli import main

raise SystemExit(main())
