"""Unit tests of is_core.simulate."""
