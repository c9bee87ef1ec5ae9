"""Unit tests of is_core.weights."""
