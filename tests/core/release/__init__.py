"""Unit tests of is_core.release."""
