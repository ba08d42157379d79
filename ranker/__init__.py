"""Ranking: scorers, features and ranking-quality metrics shared by training and serving."""
