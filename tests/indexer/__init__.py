"""Tests for `indexer`."""
