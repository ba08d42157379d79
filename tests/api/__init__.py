"""Tests for `api`."""
