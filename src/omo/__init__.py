"""OMO — online merges offline: an open, self-hostable super-app platform."""
