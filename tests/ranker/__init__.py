"""Tests for `ranker`."""
