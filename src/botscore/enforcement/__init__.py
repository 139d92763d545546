"""The edge's side of the loop: threat scores become allow/challenge/block decisions.

``decisions`` merges scores into Redis, ``edge`` is what an edge asks per request, and
``consumer`` is the Kafka loop (``botscore enforce``) that feeds the merge.
"""
