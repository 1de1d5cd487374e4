"""Per-sample metrics and their aggregation into results tables."""
