"""Test and benchmark helpers for tfgames (references, not part of the user API)."""
