"""Thin Faust agents: decode -> twin core -> commit to the store -> send alerts."""
