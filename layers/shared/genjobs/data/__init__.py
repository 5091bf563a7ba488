"""Data access: all SQL lives here, as parameterized statements."""
