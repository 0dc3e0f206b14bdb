"""Training: optimizer partition and schedules (the step, loop and checkpoints come next)."""
