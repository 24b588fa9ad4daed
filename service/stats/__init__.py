"""Anonymized statistics: the fixed catalogue, counted in the database, published under
disclosure control."""
