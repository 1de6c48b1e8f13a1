"""Population register (folkbokföring) mappings."""
