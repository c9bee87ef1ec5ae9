"""Unit tests of is_core.benchmark."""
