"""Entry point: `python main.py train|predict|evaluate ...` (the same CLI as the `churn` command)."""

import sys

from churn.cli import main

if __name__ == "__main__":
    sys.exit(main())
