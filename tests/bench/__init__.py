"""Benchmarks of qbsync against QuickBooks' ceiling, the seed's own design and a sequential client (issue 10).

``python -m tests.bench`` (``make bench``; ``make bench-smoke`` for reduced sizes) runs every scenario in one process
tree, one after the other, against the real platform: the embedded broker, the QBO emulator and the services as
separate processes, exactly as ``qbsync up`` runs them. It writes a JSON report and prints the table that
``docs/performance.md`` records. Nothing here is shipped: the baselines (``tests.bench.baselines``) exist only to be
compared with.
"""
