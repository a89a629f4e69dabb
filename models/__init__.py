"""Shipped model bundles, one folder each; found with importlib.resources."""
