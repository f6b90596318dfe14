"""Test support kept out of the product (scratch PostgreSQL databases, ...)."""
