"""Duijie service: the three lists in a database, the match endpoints, keys and roles, the review page."""
