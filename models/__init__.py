"""Scoring model versions shipped with Duijie (installed as the package duijie_models)."""
