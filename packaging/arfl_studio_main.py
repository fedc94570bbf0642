"""Entry point of the frozen app: the same ``arfl-studio`` command (GUI, subcommands, headless demo)."""

import sys

from arfl_studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
