"""Profiles: a day's mapped rows staged, one row per identity, merged into each account's store."""
