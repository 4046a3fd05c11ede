"""Rate limiting, the pure part: the two algorithms as state transitions, and the response
header fields they produce. Which requests they apply to, and what is answered, is the
stage's business (``stages/rate_limit.py``); where counters live, the state store's."""
