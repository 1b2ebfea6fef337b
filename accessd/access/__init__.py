"""The access decision: the pure policy, its shell component and the upstream controller."""
