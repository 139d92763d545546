"""A real edge: nginx asks the gate about each request and logs it for the shipper.

``identity`` names a request's user and checks the edge's script ran, ``gate`` answers
nginx's ``auth_request`` from the decisions in Redis, ``access_log`` reads nginx's lines,
``log_tail`` follows the file and ``log_shipper`` sends them to the web-logs topic.
"""
