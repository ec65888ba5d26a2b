"""Identity: people, devices, sessions, QR web login, per-app pseudonymous ids."""
