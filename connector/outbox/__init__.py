"""The outbox of a destination account: full profile rows as batch files (``build``)."""
