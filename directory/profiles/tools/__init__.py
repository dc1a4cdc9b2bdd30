"""Developer tools that rebuild the vendored definition data (never run at install or run time)."""
