"""Kantata OX: the Subscribed Events feed, its time-entry normaliser and the poll use case."""
