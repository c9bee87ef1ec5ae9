"""Unit tests of is_core.ctr."""
