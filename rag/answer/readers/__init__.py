"""Readers: the default one fitted to news questions, and one around a user's own extractive-QA model."""
