"""``python -m arfl_studio`` (also what ``torchrun -m arfl_studio`` starts)."""

import sys

from arfl_studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
