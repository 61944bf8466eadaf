"""``python -m autograder``: see ``cli.py``."""
from .cli import main

raise SystemExit(main())
