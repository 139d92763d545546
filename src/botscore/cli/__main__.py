"""``python -m botscore.cli``: what ``bin/botscore`` runs."""

from botscore.cli.main import main

raise SystemExit(main())
