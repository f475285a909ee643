"""Dictionaries and demo lists shipped with Duijie (installed as the package duijie_data)."""
