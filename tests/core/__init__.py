"""Unit tests of is_core: fast, no Prefect, no Great Expectations."""
