"""``token-manager`` console entry point."""

from qbsync.service import serve
from token_manager.app import definition


def main() -> None:
    serve(definition)


if __name__ == "__main__":
    main()
