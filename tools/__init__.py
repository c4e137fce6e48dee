"""Operator tools: ``make preflight`` and the prepared-responses CLI."""
