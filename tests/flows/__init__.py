"""Flow tests: real daily_retrain runs under the session's prefect_test_harness."""
