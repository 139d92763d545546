"""botscore: score web users as bots or humans from aggregated request features.

The package holds everything the Storm components and the ``botscore`` command share;
spouts and bolts under ``src/`` are thin adapters from Storm's protocol to it.
"""

__version__ = "0.1.0"
