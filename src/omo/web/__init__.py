"""The consumer web app, the brand console and the mini program host (templates + static)."""
