"""The sample directory (fixtures/sample-directory.json): its estate, builders and driver."""
