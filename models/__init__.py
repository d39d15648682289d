"""Shipped model artifacts and their cards (installed as the package data `alliance_nlp.models`)."""
