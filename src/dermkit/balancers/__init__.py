"""dermkit.balancers."""
