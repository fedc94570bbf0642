"""The built-in synthetic phantom dataset and the two-moon data."""
