"""`python -m tools.node up|down|status`: the test node's command line (`make node`, `make node-down`)."""

from __future__ import annotations

import argparse
import sys

from tools.node.daemons import NodeError
from tools.node.node import LocalNode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.node", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the node (idempotent) and wait until it is Ready")
    down = commands.add_parser("down", help="stop every component and pod, remove the node's state")
    down.add_argument("--purge", action="store_true", help="also forget the imported images")
    commands.add_parser("status", help="which components run")
    args = parser.parse_args(argv)
    node = LocalNode()
    try:
        if args.command == "up":
            node.up()
        elif args.command == "down":
            node.down(purge_images=args.purge)
        else:
            for name, running in node.status().items():
                print(f"{name:<24} {'running' if running else 'stopped'}")
    except NodeError as exc:
        print(f"node: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
