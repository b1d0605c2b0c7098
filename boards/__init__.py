"""Board top-levels, the host link and the synthesis / place-and-route flows (issue 3)."""
