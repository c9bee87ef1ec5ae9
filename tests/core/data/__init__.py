"""Unit tests of is_core.data."""
