"""Thin HTTP edges: parse, call dispatch, serialise. No provider names here."""
