"""Unit tests of is_core.report."""
