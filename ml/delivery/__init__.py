"""What leaves the warehouse: BI copies, audience files and the right to be forgotten."""
