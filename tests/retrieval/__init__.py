"""Tests for `retrieval`."""
