"""Maintenance scripts (``python -m scripts.<name>``): recipes that regenerate shipped files."""
