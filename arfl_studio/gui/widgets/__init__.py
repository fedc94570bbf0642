"""Reusable widgets: throttled plots, the mammogram view with overlays, forms, tables."""
