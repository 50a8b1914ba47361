"""Client-side helpers that produce the credentials authsvc verifies (optional extras)."""
