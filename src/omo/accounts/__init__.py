"""Brand official accounts: follow = consent, broadcasts, automation, developer API."""
