"""The four stages (plan -> mask -> edit -> score), their cache and the run driver."""
