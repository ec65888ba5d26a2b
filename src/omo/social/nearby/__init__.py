"""People Nearby, Places nearby and Shake."""
