"""Scoring with a trained model: the score job, its checks (compatibility, drift), scoring
inside dbt and scoring compiled to SQL."""
