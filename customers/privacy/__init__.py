"""Personal-data rights under 152-FZ: consent to processing, subject access, erasure, retention.

Models live in `customers.privacy.models` (registered through `customers.models`); writes in
`services`, reads in `selectors`, the subject-access file in `subject_access`.
"""
