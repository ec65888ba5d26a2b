"""Messaging: contacts, conversations, messages, the realtime gateway, sync and receipts."""
