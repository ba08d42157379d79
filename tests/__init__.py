"""searchrec tests."""
