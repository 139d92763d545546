"""Edge traffic simulator: seeded humans and bots producing ``WebLog`` messages.

``spec`` holds a simulation's parameters with their defaults and limits, ``population``
says who visits and how each kind behaves, ``traffic`` turns that into requests in
simulated time, ``labels`` keeps the ground truth out of the messages, and ``run`` paces
the requests onto Kafka.
"""
