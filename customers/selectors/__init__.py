"""Reads of customers for the web app, by page: `search`, `listing` (the filtered list and its
cursors), `card` and `today` (Today and leads). Duplicate candidates of a new card are in
`customers.duplicates.selectors`."""
