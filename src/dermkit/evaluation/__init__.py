"""dermkit.evaluation."""
