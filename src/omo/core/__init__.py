"""Shared kernel: configuration, storage, ids, clock, errors, auth, money, events, broker."""
