"""Tests of the tasks layer (the Great Expectations adapter, caching)."""
