"""Training/serving skew: online lookups compared with the offline point-in-time values (`fsql skew`)."""
