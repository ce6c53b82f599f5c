"""Realtime-synchronised documents outside the query engine: their edit history."""
