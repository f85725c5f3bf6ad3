"""Duplicate cards: the nightly finder, "not a duplicate" decisions, merge by source priority."""
