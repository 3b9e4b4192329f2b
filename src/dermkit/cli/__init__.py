"""dermkit.cli."""
