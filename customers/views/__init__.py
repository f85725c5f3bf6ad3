"""Web pages of the customer base: `listing` (the list, leads, export, bulk) and `card` (one
customer, and the new card); `common` holds what both share."""
