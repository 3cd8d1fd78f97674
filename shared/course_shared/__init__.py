"""Code that several lessons use but do not teach."""
