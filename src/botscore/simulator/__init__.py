"""Edge traffic simulator: seeded humans and bots producing ``WebLog`` messages.

``spec`` holds a simulation's parameters with their defaults and limits, ``profiles`` how
each kind of visitor behaves, ``population`` who visits, ``traffic`` turns that into
requests in simulated time, ``stats`` counts what the edge did to them, ``labels`` keeps
the ground truth out of the messages, ``status`` reports a run's progress, ``run``
paces the requests onto Kafka, and ``sends`` sends again what Kafka did not confirm.
"""
