"""qbsync token-manager: QuickBooks connections: OAuth connect flow, encrypted tokens, single-flight refresh."""
