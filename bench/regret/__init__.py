"""Regret benchmark: how far each suggestion rule lands from the best one-cycle LR (issue 6)."""
