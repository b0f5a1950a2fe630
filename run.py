"""python run.py [--config FILE] [--set key=value ...]: the same as `livematte run`."""

import sys

from livematte.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
