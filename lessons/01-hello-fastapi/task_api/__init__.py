"""The Task API."""
