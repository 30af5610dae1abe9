"""A real-time streams runtime on Trio."""
