"""Template filters of the approval pages."""
