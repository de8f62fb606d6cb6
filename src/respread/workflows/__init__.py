"""Workflows: the runs that combine measuring, restoring and reporting, and the only writers of md and html."""
