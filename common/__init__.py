"""Low-level helpers every app may import and none owns (README, "Architecture")."""
