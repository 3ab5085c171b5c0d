"""``customer-sync`` console entry point."""

from customer_sync.app import definition
from qbsync.service import serve


def main() -> None:
    serve(definition)


if __name__ == "__main__":
    main()
