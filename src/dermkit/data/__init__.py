"""dermkit.data."""
