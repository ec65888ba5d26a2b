"""Pay: wallets on a double-entry ledger, payment codes, merchant QR codes, refunds."""
