"""Example code locations for hookbus."""
