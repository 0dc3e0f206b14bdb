"""Alpha sweeps of Speech-FT's merge: K merged encoders' features from one compiled program, per-alpha
probes, the table and plot (`python -m speechft_jax.sweep --config ...`)."""
