"""End-to-end recipes: one command that goes from raw data to a saved, evaluated model."""
