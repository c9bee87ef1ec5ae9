"""End-to-end tests: the CLI, a real Prefect server, headless Chromium (some slow)."""
