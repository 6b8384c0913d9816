"""Getting a shop's files into the warehouse: the contract, mappings, encodings, line endings."""
